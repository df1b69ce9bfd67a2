// Without --dev the dev routes do not exist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, ENGINE } from './harness.mjs';

let s;
before(async () => { s = await startSouq({ dev: false }); });
after(async () => { await s?.stop(); });

test('dev routes are 404 not_found without --dev', async () => {
  assert.ok(!s.args.includes('--dev'));
  const cases = [
    ['POST', '/api/v1/dev/echo', { a: 1 }],
    ['GET', '/api/v1/dev/sleep?ms=10'],
    ['GET', '/api/v1/dev/fail'],
    ['GET', '/api/v1/dev/items/42'],
    ['POST', '/api/v1/dev/jobs', { kind: 'dev.record', payload: { x: 1 }, delay_ms: 0 }],
    ['GET', '/api/v1/dev/records'],
  ];
  for (const [method, path, body] of cases) {
    const res = await s.request(method, path, body === undefined ? {} : { body });
    assertError(res, 404, 'not_found');
  }
});

test('non-dev routes still work without --dev', async () => {
  assert.deepEqual(assertSuccess(await s.get('/healthz')), { status: 'ok' });
  assert.equal(assertSuccess(await s.get('/api/v1/status')).database, ENGINE);
  assert.equal((await s.get('/metrics')).status, 200);
});
