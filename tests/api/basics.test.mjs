// Envelopes, routing (404/405/typed params), health/readiness/status, security headers,
// request ids, and 500s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startSouq, assertSuccess, assertError, ENGINE, RFC3339_UTC, sleep, psqlAdmin,
} from './harness.mjs';

let s;
before(async () => { s = await startSouq(); });
after(async () => { await s?.stop(); });

const allowList = (res) => (res.headers.allow ?? '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean);

test('GET /healthz → 200 success envelope, data {"status":"ok"}', async () => {
  const res = await s.get('/healthz');
  assert.deepEqual(assertSuccess(res, 200), { status: 'ok' });
});

test('GET /healthz with a query string still routes to /healthz', async () => {
  const res = await s.get('/healthz?probe=1');
  assert.deepEqual(assertSuccess(res, 200), { status: 'ok' });
});

test('GET /readyz → 200 with database and migrations checks ok', async () => {
  const res = await s.get('/readyz');
  assert.deepEqual(assertSuccess(res, 200), { status: 'ready', checks: { database: 'ok', migrations: 'ok' } });
});

test(`GET /api/v1/status reports database "${ENGINE}"`, async () => {
  const before = Date.now();
  const data = assertSuccess(await s.get('/api/v1/status'), 200);
  assert.equal(data.database, ENGINE);
  assert.equal(typeof data.version, 'string');
  assert.ok(data.version.length > 0, 'version is empty');
  assert.ok(Number.isInteger(data.migrations) && data.migrations >= 1, `migrations: ${JSON.stringify(data.migrations)}`);
  assert.match(data.started_at, RFC3339_UTC);
  const started = Date.parse(data.started_at);
  assert.ok(started <= before + 2000, `started_at ${data.started_at} is in the future`);
  assert.ok(started > before - 10 * 60_000, `started_at ${data.started_at} is too old`);
});

test('success envelope: each response gets its own request id; timestamp is RFC 3339 UTC', async () => {
  const a = await s.get('/api/v1/dev/items/1');
  const b = await s.get('/api/v1/dev/items/1');
  assertSuccess(a);
  assertSuccess(b);
  assert.notEqual(a.json.meta.request_id, b.json.meta.request_id);
  assert.match(a.json.meta.timestamp, RFC3339_UTC);
});

test('unknown paths → 404 not_found error envelope', async () => {
  assertError(await s.get('/nope'), 404, 'not_found');
  assertError(await s.get('/api/v1/nope'), 404, 'not_found');
  assertError(await s.get('/api/v1/dev/items'), 404, 'not_found');
  assertError(await s.post('/api/v1/nope', { a: 1 }), 404, 'not_found');
  assertError(await s.request('DELETE', '/nope/deeper/still'), 404, 'not_found');
});

test('known path, wrong method → 405 method_not_allowed with Allow', async () => {
  let res = await s.post('/healthz', { a: 1 });
  assertError(res, 405, 'method_not_allowed');
  assert.ok(allowList(res).includes('GET'), `Allow: ${res.headers.allow}`);
  assert.ok(!allowList(res).includes('POST'), `Allow: ${res.headers.allow}`);

  res = await s.get('/api/v1/dev/echo');
  assertError(res, 405, 'method_not_allowed');
  assert.ok(allowList(res).includes('POST'), `Allow: ${res.headers.allow}`);
  assert.ok(!allowList(res).includes('GET'), `Allow: ${res.headers.allow}`);

  res = await s.request('DELETE', '/api/v1/dev/items/5');
  assertError(res, 405, 'method_not_allowed');
  assert.ok(allowList(res).includes('GET'), `Allow: ${res.headers.allow}`);
  assert.ok(!allowList(res).includes('DELETE'), `Allow: ${res.headers.allow}`);
});

test('typed path parameter {id:int}: integers match, anything else is 404', async () => {
  assert.deepEqual(assertSuccess(await s.get('/api/v1/dev/items/42')), { id: 42 });
  assert.deepEqual(assertSuccess(await s.get('/api/v1/dev/items/0')), { id: 0 });
  for (const bad of ['abc', '42abc', '4.2', '0x10', '%20']) {
    assertError(await s.get(`/api/v1/dev/items/${bad}`), 404, 'not_found');
  }
});

test('security headers on success, error and metrics responses', async () => {
  const responses = {
    '/healthz': await s.get('/healthz'),
    '/api/v1/status': await s.get('/api/v1/status'),
    '404 /api/v1/nope': await s.get('/api/v1/nope'),
    '405 POST /healthz': await s.post('/healthz', {}),
    '400 POST /api/v1/dev/echo': await s.post('/api/v1/dev/echo', '{bad'),
    '500 /api/v1/dev/fail': await s.get('/api/v1/dev/fail'),
    '/metrics': await s.get('/metrics'),
  };
  for (const [what, res] of Object.entries(responses)) {
    const h = res.headers;
    assert.equal(h['x-content-type-options'], 'nosniff', `${what}: ${JSON.stringify(h)}`);
    assert.equal(h['x-frame-options'], 'DENY', `${what}: ${JSON.stringify(h)}`);
    assert.equal(h['referrer-policy'], 'no-referrer', `${what}: ${JSON.stringify(h)}`);
    assert.equal(h['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", `${what}: ${JSON.stringify(h)}`);
    assert.ok(h['x-request-id'], `${what}: no X-Request-Id: ${JSON.stringify(h)}`);
    if (what.includes('/api/')) assert.equal(h['cache-control'], 'no-store', `${what}: ${JSON.stringify(h)}`);
  }
});

test('a valid incoming X-Request-Id is echoed in the header, meta and the access log line', async () => {
  const id = 'req-Abc.123:xyz';
  const from = s.logs.length;
  const res = await s.get('/api/v1/dev/items/7', { headers: { 'X-Request-Id': id } });
  assertSuccess(res);
  assert.equal(res.headers['x-request-id'], id);
  assert.equal(res.json.meta.request_id, id);
  const line = await s.waitForLog((l) => l.msg === 'request' && l.request_id === id, { from });
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/api/v1/dev/items/7');
  assert.equal(line.route, '/api/v1/dev/items/{id}');
  assert.equal(line.status, 200);
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.duration_ms >= 0);
});

test('an X-Request-Id of exactly 128 allowed characters is kept', async () => {
  const id = 'a1._:-'.repeat(22).slice(0, 128);
  assert.equal(id.length, 128);
  const res = await s.get('/healthz', { headers: { 'X-Request-Id': id } });
  assertSuccess(res);
  assert.equal(res.headers['x-request-id'], id);
});

test('an invalid X-Request-Id (spaces, 129 or 300 chars, other characters) is replaced', async () => {
  for (const bad of ['has space', 'x'.repeat(129), 'y'.repeat(300), 'semi;colon', 'slash/id', 'ümlaut']) {
    const from = s.logs.length;
    const headers = { 'X-Request-Id': bad === 'ümlaut' ? Buffer.from(bad).toString('latin1') : bad };
    const res = await s.get('/api/v1/dev/items/3', { headers });
    assertSuccess(res);
    const got = res.headers['x-request-id'];
    assert.ok(got && got.length > 0 && got.length <= 128, `for ${JSON.stringify(bad)} got ${JSON.stringify(got)}`);
    assert.notEqual(got, bad);
    assert.ok(!/\s/.test(got), `generated id has whitespace: ${JSON.stringify(got)}`);
    assert.equal(res.json.meta.request_id, got);
    // the access log line carries the generated id
    const line = await s.waitForLog((l) => l.msg === 'request' && l.request_id === got, { from });
    assert.equal(line.path, '/api/v1/dev/items/3');
  }
});

test('500 internal_error from /api/v1/dev/fail carries the request id; the server keeps serving', async () => {
  for (let i = 0; i < 3; i++) {
    const id = `fail-${i}`;
    const res = await s.get('/api/v1/dev/fail', { headers: { 'X-Request-Id': id } });
    assertError(res, 500, 'internal_error');
    assert.equal(res.json.meta.request_id, id);
    assert.equal(res.headers['x-request-id'], id);
    const line = await s.waitForLog((l) => l.msg === 'request' && l.request_id === id);
    assert.equal(line.status, 500);
    assert.equal(line.route, '/api/v1/dev/fail');
  }
  assertSuccess(await s.get('/healthz'));
  assert.deepEqual(assertSuccess(await s.get('/api/v1/dev/items/5')), { id: 5 });
  assert.equal(s.exitInfo, null, 'server exited');
});

test('every log line written while handling a request carries its request id', async () => {
  // A quiet server (no job workers) so that every line logged during the request is the request's.
  const q = await startSouq({ args: ['--workers', '0'] });
  try {
    await sleep(300);
    for (const [path, id] of [['/api/v1/dev/fail', 'trace-fail-1'], ['/api/v1/dev/items/9', 'trace-ok-1']]) {
      const from = q.logs.length;
      await q.get(path, { headers: { 'X-Request-Id': id } });
      await q.waitForLog((l) => l.msg === 'request' && l.request_id === id, { from });
      await sleep(200);
      const lines = q.logs.slice(from);
      assert.ok(lines.length >= 1);
      for (const l of lines) {
        assert.equal(l.request_id, id, `log line without the request id: ${JSON.stringify(l)}\nall: ${lines.map((x) => JSON.stringify(x)).join('\n')}`);
      }
    }
  } finally {
    await q.stop();
  }
});

test('error responses get an access log line too (404, 405, 400)', async () => {
  const cases = [
    ['GET', '/nope/log', undefined, 404],
    ['POST', '/healthz', {}, 405],
    ['POST', '/api/v1/dev/echo', '{oops', 400],
  ];
  for (const [method, path, body, status] of cases) {
    const id = `log-${status}`;
    const from = s.logs.length;
    const res = await s.request(method, path, { body, headers: { 'X-Request-Id': id } });
    assert.equal(res.status, status);
    const line = await s.waitForLog((l) => l.msg === 'request' && l.request_id === id, { from });
    assert.equal(line.status, status);
    assert.equal(line.method, method);
    assert.equal(line.path, path);
    assert.equal(typeof line.route, 'string');
    assert.equal(typeof line.duration_ms, 'number');
  }
});

test('every stdout line is a JSON object with a "msg"', async () => {
  assert.ok(s.logs.length > 5);
  for (const l of s.logs) {
    assert.ok(!l._notJson && !l._notObject, `not a JSON object: ${l._raw}`);
    assert.equal(typeof l.msg, 'string', JSON.stringify(l));
  }
});

test('/readyz → 503 not_ready with details.checks when the database is gone (postgres only)', { skip: ENGINE !== 'postgres' && 'needs SOUQ_TEST_DB=postgres' }, async () => {
  const d = await startSouq();
  try {
    assertSuccess(await d.get('/readyz'));
    await psqlAdmin(`DROP DATABASE "${d.pgDb}" WITH (FORCE)`);
    let res;
    const deadline = Date.now() + 10_000;
    do {
      res = await d.get('/readyz');
      if (res.status === 503) break;
      await sleep(200);
    } while (Date.now() < deadline);
    const err = assertError(res, 503, 'not_ready');
    assert.equal(typeof err.details?.checks, 'object', JSON.stringify(res.json));
    assert.notEqual(err.details.checks.database, 'ok', JSON.stringify(res.json));
    // liveness is not readiness: /healthz still answers
    assertSuccess(await d.get('/healthz'));
  } finally {
    await d.stop();
  }
});
