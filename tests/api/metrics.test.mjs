// GET /metrics: counters by route template, histograms, gauges.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, parseMetrics, findSamples, metricValue, sleep } from './harness.mjs';

let s;
before(async () => { s = await startSouq(); });
after(async () => { await s?.stop(); });

const ITEMS = '/api/v1/dev/items/{id}';
const REQS = 'souq_http_requests_total';
const HIST = 'souq_http_request_duration_seconds';

test('GET /metrics is Prometheus text 0.0.4', async () => {
  const res = await s.get('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] ?? '', /^text\/plain; ?version=0\.0\.4/, res.headers['content-type']);
  assert.ok(parseMetrics(res.text).length > 0);
  assert.match(res.text, /^# TYPE souq_http_requests_total counter$/m);
  assert.match(res.text, /^# TYPE souq_http_request_duration_seconds histogram$/m);
});

test('N requests to a route raise souq_http_requests_total{route template, status 200} by exactly N', async () => {
  const N = 7;
  const labels = { method: 'GET', route: ITEMS, status: '200' };
  const before = await s.metrics();
  const c0 = metricValue(before, REQS, labels);
  const h0 = metricValue(before, `${HIST}_count`, { route: ITEMS });
  for (let i = 0; i < N; i++) assertSuccess(await s.get(`/api/v1/dev/items/${100 + i}`));
  const after = await s.metrics();
  assert.equal(metricValue(after, REQS, labels), c0 + N, findSamples(after, REQS).map((x) => x.line).join('\n'));
  assert.equal(findSamples(after, REQS, labels).length, 1, 'exactly one series for method+route+status');
  assert.equal(metricValue(after, `${HIST}_count`, { route: ITEMS }), h0 + N);
  // the raw path never becomes a label value
  for (const x of after) assert.ok(!/\/api\/v1\/dev\/items\/\d/.test(x.labels.route ?? ''), x.line);
});

test('histogram: buckets with le (ending +Inf = _count), _sum, _count per route', async () => {
  assertSuccess(await s.get('/api/v1/dev/items/1'));
  const m = await s.metrics();
  const buckets = findSamples(m, `${HIST}_bucket`, { route: ITEMS });
  assert.ok(buckets.length >= 2, `buckets: ${buckets.map((b) => b.line).join('\n')}`);
  const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
  assert.ok(les.every((x) => !Number.isNaN(x)), `le values: ${buckets.map((b) => b.labels.le)}`);
  assert.ok(les.includes(Infinity), 'no le="+Inf" bucket');
  const sorted = buckets.map((b, i) => [les[i], b.value]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i][1] >= sorted[i - 1][1], 'buckets are not cumulative');
  const count = metricValue(m, `${HIST}_count`, { route: ITEMS });
  assert.equal(sorted.at(-1)[1], count, '+Inf bucket ≠ _count');
  assert.ok(count >= 1);
  const sum = findSamples(m, `${HIST}_sum`, { route: ITEMS });
  assert.equal(sum.length, 1);
  assert.ok(sum[0].value >= 0 && sum[0].value < count * 10, `_sum ${sum[0].value}`);
});

test('404s are counted under route="unmatched", never under the raw path', async () => {
  const N = 3;
  const labels = { method: 'GET', route: 'unmatched', status: '404' };
  const c0 = metricValue(await s.metrics(), REQS, labels);
  for (let i = 0; i < N; i++) assertError(await s.get(`/no/such/path/${i}`), 404, 'not_found');
  const m = await s.metrics();
  assert.equal(metricValue(m, REQS, labels), c0 + N, findSamples(m, REQS).map((x) => x.line).join('\n'));
  for (const x of m) assert.ok(!(x.labels.route ?? '').startsWith('/no/such'), x.line);
});

test('500s are counted with status "500" under their route', async () => {
  const labels = { method: 'GET', route: '/api/v1/dev/fail', status: '500' };
  const c0 = metricValue(await s.metrics(), REQS, labels);
  assertError(await s.get('/api/v1/dev/fail'), 500, 'internal_error');
  assertError(await s.get('/api/v1/dev/fail'), 500, 'internal_error');
  assert.equal(metricValue(await s.metrics(), REQS, labels), c0 + 2);
});

test('gauges: in-flight requests, db pool, jobs', async () => {
  const m = await s.metrics();
  const one = (name, labels = {}) => {
    const xs = findSamples(m, name, labels);
    assert.equal(xs.length, 1, `${name}${JSON.stringify(labels)}: ${xs.map((x) => x.line).join('\n') || 'missing'}`);
    assert.ok(Number.isFinite(xs[0].value) && xs[0].value >= 0, xs[0].line);
    return xs[0].value;
  };
  one('souq_http_requests_in_flight');
  one('souq_db_pool_connections', { state: 'in_use' });
  one('souq_db_pool_connections', { state: 'idle' });
  assert.ok(one('souq_db_pool_size') >= 1);
  for (const status of ['queued', 'running', 'dead']) one('souq_jobs', { status });
  one('souq_jobs_oldest_queued_age_seconds');
});

test('souq_http_requests_in_flight counts a running request', async () => {
  const idle = metricValue(await s.metrics(), 'souq_http_requests_in_flight');
  const slow = s.get('/api/v1/dev/sleep?ms=1500');
  await sleep(500);
  const during = metricValue(await s.metrics(), 'souq_http_requests_in_flight');
  assert.ok(during >= idle + 1, `in flight idle=${idle} during a sleep=${during}`);
  assert.deepEqual(assertSuccess(await slow), { slept_ms: 1500 });
  await sleep(100);
  assert.equal(metricValue(await s.metrics(), 'souq_http_requests_in_flight'), idle);
});
