// Rate limiting per client IP: --rate-limit 2 --rate-burst 3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, sleep } from './harness.mjs';

let s;
before(async () => { s = await startSouq({ args: ['--rate-limit', '2', '--rate-burst', '3'] }); });
after(async () => { await s?.stop(); });

test('burst of 3 then 429 rate_limited with Retry-After; /healthz never limited; allowed again after Retry-After', async () => {
  await sleep(2000); // let the bucket refill completely (start-up probes may have used tokens)

  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: 6 }, () => s.get('/api/v1/dev/items/1')));
  const elapsed = Date.now() - t0;
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status !== 200);
  // 3 tokens in the bucket, refilled at 2/s: during `elapsed` ms at most floor(elapsed/500) more.
  const maxOk = 3 + Math.floor(elapsed / 500);
  assert.ok(ok.length >= 3 && ok.length <= maxOk,
    `expected 3..${maxOk} successes in ${elapsed} ms, got ${results.map((r) => r.status).join(',')}`);
  assert.ok(limited.length >= 1, `no request was limited: ${results.map((r) => r.status).join(',')}`);
  let retryAfter = 0;
  for (const r of limited) {
    assertError(r, 429, 'rate_limited');
    assert.match(r.headers['retry-after'] ?? '', /^[1-9]\d*$/, `Retry-After: ${r.headers['retry-after']}`);
    retryAfter = Math.max(retryAfter, Number(r.headers['retry-after']));
  }
  assert.ok(retryAfter <= 5, `Retry-After ${retryAfter} s is far more than one token takes (0.5 s)`);

  // still limited right now, but /healthz is never limited
  assertError(await s.get('/api/v1/dev/items/1'), 429, 'rate_limited');
  for (let i = 0; i < 20; i++) assertSuccess(await s.get('/healthz'));

  // after Retry-After seconds, a request is allowed again
  await sleep(retryAfter * 1000 + 100);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/dev/items/1')), { id: 1 });
});

test('429 responses are logged with status 429 and their request id', async () => {
  await sleep(2000);
  const from = s.logs.length;
  let limited = null;
  for (let i = 0; i < 10 && !limited; i++) {
    const r = await s.get('/api/v1/dev/items/2', { headers: { 'X-Request-Id': `rl-${i}` } });
    if (r.status === 429) limited = r;
  }
  assert.ok(limited, '10 quick requests were never limited');
  const id = limited.headers['x-request-id'];
  assert.match(id, /^rl-\d$/);
  const line = await s.waitForLog((l) => l.msg === 'request' && l.request_id === id, { from });
  assert.equal(line.status, 429);
});

test('--trust-proxy: clients are told apart by X-Forwarded-For; without it the header is ignored', async () => {
  const trusting = await startSouq({ args: ['--rate-limit', '1', '--rate-burst', '1', '--trust-proxy'] });
  const plain = await startSouq({ args: ['--rate-limit', '1', '--rate-burst', '1'] });
  try {
    await sleep(1500);
    const get = (srv, ip) => srv.get('/api/v1/dev/items/1', { headers: { 'X-Forwarded-For': ip } });

    assertSuccess(await get(trusting, '203.0.113.1'));
    assertError(await get(trusting, '203.0.113.1'), 429, 'rate_limited');
    assertSuccess(await get(trusting, '203.0.113.2'));

    assertSuccess(await get(plain, '203.0.113.1'));
    assertError(await get(plain, '203.0.113.2'), 429, 'rate_limited');
  } finally {
    await Promise.all([trusting.stop(), plain.stop()]);
  }
});
