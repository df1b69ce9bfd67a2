// HTTP/1.1 on raw sockets: malformed requests, oversized headers, slow clients, keep-alive.
// The server runs with --header-timeout 1 --body-timeout 1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, RawClient } from './harness.mjs';

let s;
before(async () => { s = await startSouq({ args: ['--header-timeout', '1', '--body-timeout', '1'] }); });
after(async () => { await s?.stop(); });

async function stillHealthy() {
  assert.deepEqual(assertSuccess(await s.get('/healthz')), { status: 'ok' }, 'server stopped answering');
  assert.equal(s.exitInfo, null, 'server exited');
}

/** Send bytes on a fresh connection; return { res (or null if closed without one), closed, ms }. */
async function exchange(data, { closeWithin = 3000 } = {}) {
  const c = await RawClient.connect(s.port);
  try {
    const t0 = Date.now();
    await c.write(data);
    let res = null;
    try {
      res = await c.readResponse(5000);
    } catch (err) {
      if (!c.closed) throw err;
    }
    const closed = await c.waitClose(closeWithin);
    return { res, closed, ms: Date.now() - t0, error: c.error, raw: c.text };
  } finally {
    c.destroy();
  }
}

function assertRejected(r, status, code) {
  assert.ok(r.res, `no ${status} response before the connection closed: ${r.raw.slice(0, 300)}`);
  {
    assert.equal(r.res.status, status, `got ${r.raw.slice(0, 300)}`);
    if (r.res.json) assert.equal(r.res.json.error?.code, code, r.res.text);
    // every response carries X-Request-Id and the security headers, early errors included
    assert.ok(r.res.headers['x-request-id'], `no X-Request-Id: ${r.raw.slice(0, 300)}`);
    assert.equal(r.res.headers['x-content-type-options'], 'nosniff', r.raw.slice(0, 300));
  }
  assert.ok(r.closed, `connection not closed after a ${status}: ${r.raw.slice(0, 300)}`);
}

test('garbage request line → 400 bad_request, connection closed', async () => {
  assertRejected(await exchange('GARBAGE\r\n\r\n'), 400, 'bad_request');
  assertRejected(await exchange('GET /healthz HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n'), 400, 'bad_request');
  assertRejected(await exchange('\x00\x01\x02\x03 binary junk\r\n\r\n'), 400, 'bad_request');
  assertRejected(await exchange('POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}'), 400, 'bad_request');
  await stillHealthy();
});

test('headers over 16 KiB → 431 headers_too_large, connection closed', async () => {
  const big = `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
  assertRejected(await exchange(big), 431, 'headers_too_large');
  const many = `GET /healthz HTTP/1.1\r\nHost: t\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(60)}\r\n`).join('')}\r\n`;
  assertRejected(await exchange(many), 431, 'headers_too_large');
  await stillHealthy();
});

test('headers well under 16 KiB (12 000 bytes) are fine', async () => {
  const r = await exchange(`GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: ${'a'.repeat(12_000)}\r\n\r\n`);
  assert.equal(r.res?.status, 200, r.raw.slice(0, 300));
});

test('a client that sends half a header and stops is disconnected after --header-timeout 1', async () => {
  const c = await RawClient.connect(s.port);
  try {
    const t0 = Date.now();
    await c.write('GET /healthz HTTP/1.1\r\nHost: t\r\nX-Partial: ');
    assert.ok(await c.waitClose(5000), 'still connected 5 s after a half header with --header-timeout 1');
    const ms = Date.now() - t0;
    assert.ok(ms >= 500, `closed after ${ms} ms, before the timeout`);
  } finally {
    c.destroy();
  }
  await stillHealthy();
});

test('a client that sends part of the body and stops is disconnected after --body-timeout 1', async () => {
  const c = await RawClient.connect(s.port);
  try {
    const t0 = Date.now();
    await c.write('POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":');
    assert.ok(await c.waitClose(5000), 'still connected 5 s after a partial body with --body-timeout 1');
    const ms = Date.now() - t0;
    assert.ok(ms >= 500, `closed after ${ms} ms, before the timeout`);
  } finally {
    c.destroy();
  }
  await stillHealthy();
});

test('keep-alive: two requests on one socket are both answered', async () => {
  const c = await RawClient.connect(s.port);
  try {
    await c.write('GET /api/v1/dev/items/1 HTTP/1.1\r\nHost: t\r\n\r\n');
    const a = await c.readResponse();
    assert.equal(a?.status, 200);
    assert.deepEqual(a.json.data, { id: 1 });
    assert.equal(c.closed, false, 'closed after the first response');
    await c.write('GET /api/v1/dev/items/2 HTTP/1.1\r\nHost: t\r\n\r\n');
    const b = await c.readResponse();
    assert.equal(b?.status, 200, 'second request on the same connection not answered');
    assert.deepEqual(b.json.data, { id: 2 });
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    // POST with a body, then a GET, on the same connection
    const body = '{"k":[1,2,3]}';
    await c.write(`POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const p = await c.readResponse();
    assert.deepEqual(p?.json?.data, { k: [1, 2, 3] });
    await c.write('GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const h = await c.readResponse();
    assert.equal(h?.status, 200);
    assert.ok(await c.waitClose(2000), 'not closed after Connection: close');
  } finally {
    c.destroy();
  }
});

test('pipelining: two requests sent at once get two responses in order', async () => {
  const c = await RawClient.connect(s.port);
  try {
    await c.write('GET /api/v1/dev/items/11 HTTP/1.1\r\nHost: t\r\n\r\nGET /api/v1/dev/items/12 HTTP/1.1\r\nHost: t\r\n\r\n');
    const a = await c.readResponse();
    const b = await c.readResponse();
    assert.deepEqual(a?.json?.data, { id: 11 });
    assert.deepEqual(b?.json?.data, { id: 12 }, `second pipelined response: ${c.text.slice(0, 600)}`);
  } finally {
    c.destroy();
  }
});

test('an idle keep-alive connection is closed after --header-timeout 1', async () => {
  const c = await RawClient.connect(s.port);
  try {
    await c.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await c.readResponse())?.status, 200);
    const t0 = Date.now();
    assert.ok(await c.waitClose(5000), 'idle keep-alive connection still open after 5 s');
    assert.ok(Date.now() - t0 >= 500, 'closed before the idle timeout');
  } finally {
    c.destroy();
  }
});

test('HTTP/1.0 request without keep-alive: answered, then closed', async () => {
  const r = await exchange('GET /healthz HTTP/1.0\r\n\r\n', { closeWithin: 2000 });
  assert.equal(r.res?.status, 200, r.raw.slice(0, 300));
  assert.deepEqual(r.res.json?.data, { status: 'ok' });
  assert.ok(r.closed, 'HTTP/1.0 connection left open');
});

test('many slow clients do not stop the server from answering others', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(s.port)));
  try {
    await Promise.all(clients.map((c) => c.write('GET /healthz HTTP/1.1\r\nHost: t\r\n')));
    const t0 = Date.now();
    await stillHealthy();
    assert.ok(Date.now() - t0 < 1000, 'slow clients delayed a healthy request');
    const closed = await Promise.all(clients.map((c) => c.waitClose(5000)));
    assert.ok(closed.every(Boolean), `${closed.filter((x) => !x).length} of 50 slow clients still connected`);
  } finally {
    for (const c of clients) c.destroy();
  }
  await stillHealthy();
});

test('a chunk-size line that never ends is refused at once, not held until the body timeout', async () => {
  // Beast does not bound a chunk-size/extension line itself; the server's read
  // buffer limit must turn it into a 400 (a timeout would close without one).
  const head = 'POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  const r = await exchange(head + '1;' + 'x'.repeat(200_000));
  assertRejected(r, 400, 'bad_request');
  await stillHealthy();
});

test('an unknown method gets 405 and is counted as OTHER, not under its own name', async () => {
  const r = await exchange('XYZ123 /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  assert.equal(r.res?.status, 405, r.raw.slice(0, 300));
  const metrics = await s.get('/metrics');
  assert.ok(!metrics.text.includes('XYZ123'), 'a client-chosen method must not become a metric label');
  assert.match(metrics.text, /souq_http_requests_total\{method="OTHER",route="\/healthz",status="405"\} 1/);
});
