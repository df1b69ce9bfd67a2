// CORS with --cors-origins https://app.example, and no CORS by default.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError } from './harness.mjs';

const ORIGIN = 'https://app.example';
let s;
before(async () => { s = await startSouq({ args: ['--cors-origins', ORIGIN] }); });
after(async () => { await s?.stop(); });

const tokens = (v) => (v ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);

function assertAllowed(res, origin = ORIGIN) {
  const h = res.headers;
  assert.equal(h['access-control-allow-origin'], origin, JSON.stringify(h));
  assert.ok(tokens(h.vary).includes('origin'), `Vary: ${h.vary}`);
}

test('allowed origin: Allow-Origin, Vary: Origin, Expose-Headers on success and error responses', async () => {
  for (const res of [
    await s.get('/healthz', { headers: { Origin: ORIGIN } }),
    await s.get('/api/v1/nope', { headers: { Origin: ORIGIN } }),
    await s.post('/api/v1/dev/echo', { a: 1 }, { headers: { Origin: ORIGIN } }),
  ]) {
    assertAllowed(res);
    const expose = tokens(res.headers['access-control-expose-headers']);
    assert.ok(expose.includes('x-request-id') && expose.includes('retry-after'),
      `Expose-Headers: ${res.headers['access-control-expose-headers']}`);
  }
});

test('origin not allowed: no Access-Control-Allow-Origin (request still served)', async () => {
  for (const origin of ['https://evil.example', 'http://app.example', 'https://app.example.evil.com', 'null']) {
    const res = await s.get('/healthz', { headers: { Origin: origin } });
    assertSuccess(res);
    assert.equal(res.headers['access-control-allow-origin'], undefined, `${origin}: ${JSON.stringify(res.headers)}`);
  }
  const res = await s.get('/healthz');
  assert.equal(res.headers['access-control-allow-origin'], undefined);
});

test('preflight from the allowed origin → 204 with methods, headers, max-age', async () => {
  const res = await s.request('OPTIONS', '/api/v1/dev/echo', {
    headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, x-request-id' },
  });
  assert.equal(res.status, 204, `${res.status} ${res.text}`);
  assertAllowed(res);
  assert.ok(tokens(res.headers['access-control-allow-methods']).includes('post'),
    `Allow-Methods: ${res.headers['access-control-allow-methods']}`);
  const allowHeaders = tokens(res.headers['access-control-allow-headers']);
  for (const h of ['authorization', 'content-type', 'idempotency-key', 'x-request-id']) {
    assert.ok(allowHeaders.includes(h), `Allow-Headers lacks ${h}: ${res.headers['access-control-allow-headers']}`);
  }
  assert.equal(res.headers['access-control-max-age'], '600');
  assert.equal(res.text, '', '204 with a body');
});

test('preflight from an origin not allowed gets no Access-Control-Allow-Origin', async () => {
  const res = await s.request('OPTIONS', '/api/v1/dev/echo', {
    headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(res.headers['access-control-allow-origin'], undefined, JSON.stringify(res.headers));
  assert.equal(res.headers['access-control-allow-methods'], undefined, JSON.stringify(res.headers));
});

test('without --cors-origins there are no CORS headers', async () => {
  const d = await startSouq();
  try {
    const res = await d.get('/healthz', { headers: { Origin: ORIGIN } });
    assertSuccess(res);
    assert.equal(res.headers['access-control-allow-origin'], undefined, JSON.stringify(res.headers));
    const pre = await d.request('OPTIONS', '/api/v1/dev/echo', {
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(pre.headers['access-control-allow-origin'], undefined, JSON.stringify(pre.headers));
  } finally {
    await d.stop();
  }
});

test('--cors-origins "*" allows any origin', async () => {
  const d = await startSouq({ args: ['--cors-origins', '*'] });
  try {
    const origin = 'https://anything.example';
    const res = await d.get('/healthz', { headers: { Origin: origin } });
    assertSuccess(res);
    const acao = res.headers['access-control-allow-origin'];
    assert.ok(acao === origin || acao === '*', `Access-Control-Allow-Origin: ${acao}`);
    assertError(await d.get('/nope', { headers: { Origin: origin } }), 404, 'not_found');
  } finally {
    await d.stop();
  }
});
