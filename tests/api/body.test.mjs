// Request bodies: echo, 413 payload_too_large (Content-Length and chunked), 400 invalid_json,
// 415 unsupported_media_type. The server runs with --max-body 1024.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, RawClient } from './harness.mjs';

const MAX = 1024;
let s;
before(async () => { s = await startSouq({ args: ['--max-body', String(MAX)] }); });
after(async () => { await s?.stop(); });

/** A JSON document of exactly n bytes: {"s":"xxxx…"} */
function jsonOfSize(n) {
  const doc = `{"s":"${'x'.repeat(n - 8)}"}`;
  assert.equal(Buffer.byteLength(doc), n);
  return doc;
}

const nested = (depth) => '['.repeat(depth) + ']'.repeat(depth);

async function healthy() {
  assertSuccess(await s.get('/healthz'));
}

test('POST /api/v1/dev/echo returns the parsed body', async () => {
  const body = { a: 1, b: [true, false, null, 'x'], c: { d: 1.5, e: -3, f: 'héllo ✓ 😀 "q" \\ \n' }, g: [] };
  assert.deepEqual(assertSuccess(await s.post('/api/v1/dev/echo', body)), body);
  assert.deepEqual(assertSuccess(await s.post('/api/v1/dev/echo', [1, 'two', { three: 3 }])), [1, 'two', { three: 3 }]);
  assert.equal(assertSuccess(await s.post('/api/v1/dev/echo', '"just a string"')), 'just a string');
});

test('Content-Type application/json with a charset parameter is accepted', async () => {
  const res = await s.post('/api/v1/dev/echo', '{"k":"v"}', { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
  assert.deepEqual(assertSuccess(res), { k: 'v' });
});

test(`a body of exactly --max-body (${MAX}) bytes is accepted`, async () => {
  const doc = jsonOfSize(MAX);
  assert.deepEqual(assertSuccess(await s.post('/api/v1/dev/echo', doc)), JSON.parse(doc));
});

test('Content-Length body over --max-body → 413 payload_too_large, connection closed', async () => {
  assertError(await s.post('/api/v1/dev/echo', jsonOfSize(MAX + 1)), 413, 'payload_too_large');
  // (20 kB fits in the socket buffers, so the client has written it all before the 413 comes)
  assertError(await s.post('/api/v1/dev/echo', jsonOfSize(20_000)), 413, 'payload_too_large');

  // On a raw keep-alive connection: the response is 413 and the server closes the connection.
  const c = await RawClient.connect(s.port);
  try {
    const doc = jsonOfSize(MAX + 100);
    await c.write(`POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${doc.length}\r\n\r\n${doc}`);
    const res = await c.readResponse();
    assert.ok(res, `connection closed without a response (error: ${c.error?.code})`);
    assert.equal(res.status, 413, res.text);
    assert.equal(res.json?.error?.code, 'payload_too_large', res.text);
    assert.ok(await c.waitClose(3000), 'connection not closed after 413');
  } finally {
    c.destroy();
  }
  await healthy();
});

async function chunkedPost(chunks) {
  const c = await RawClient.connect(s.port);
  try {
    // One write for the whole request: a client still writing after the server has answered
    // 413 and closed would get EPIPE and might never read the answer.
    await c.write('POST /api/v1/dev/echo HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n' +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
      chunks.map((ch) => `${Buffer.byteLength(ch).toString(16)}\r\n${ch}\r\n`).join('') +
      '0\r\n\r\n');
    const res = await c.readResponse();
    const closed = res ? await c.waitClose(res.status === 413 ? 3000 : 300) : true;
    return { res, closed, error: c.error };
  } finally {
    c.destroy();
  }
}

test('chunked body under --max-body is decoded and echoed', async () => {
  const { res, closed } = await chunkedPost(['{"parts":', '[1,2,', '3],"s":"', 'y'.repeat(300), '"}']);
  assert.ok(res, 'no response');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.data, { parts: [1, 2, 3], s: 'y'.repeat(300) });
  assert.equal(closed, false, 'keep-alive connection closed after a good chunked request');
});

test('chunked body over --max-body → 413 payload_too_large, connection closed', async () => {
  const chunks = ['{"s":"'];
  for (let i = 0; i < 6; i++) chunks.push('z'.repeat(400));
  chunks.push('"}');
  const { res, closed, error } = await chunkedPost(chunks);
  assert.ok(res, `connection closed without a response (error: ${error?.code})`);
  assert.equal(res.status, 413, res.text);
  assert.equal(res.json?.error?.code, 'payload_too_large', res.text);
  assert.ok(closed, 'connection not closed after 413');
  await healthy();
});

test('malformed JSON → 400 invalid_json', async () => {
  for (const bad of ['{"a":', '{a:1}', "{'a':1}", '[1,2,]', '{"a":1} trailing', '{"a":01}', 'nul', '{"a":"\u0001"}', '{"amount":1e400}']) {
    assertError(await s.post('/api/v1/dev/echo', bad), 400, 'invalid_json');
  }
});

test('invalid UTF-8 in the body → 400 invalid_json', async () => {
  const cases = [
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"a":"\xff\xfe"}
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), // overlong '/'
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0x22, 0x7d]), // truncated sequence
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // UTF-16 surrogate
  ];
  for (const buf of cases) {
    assertError(await s.post('/api/v1/dev/echo', buf), 400, 'invalid_json');
  }
});

test('nesting: 64 levels accepted, 65 and 100 levels → 400 invalid_json', async () => {
  assert.deepEqual(assertSuccess(await s.post('/api/v1/dev/echo', nested(64))), JSON.parse(nested(64)));
  assertError(await s.post('/api/v1/dev/echo', nested(65)), 400, 'invalid_json');
  assertError(await s.post('/api/v1/dev/echo', nested(100)), 400, 'invalid_json');
  const objs = (d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);
  assertError(await s.post('/api/v1/dev/echo', objs(100)), 400, 'invalid_json');
  await healthy();
});

test('a body with a Content-Type other than application/json → 415 unsupported_media_type', async () => {
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
    assertError(await s.post('/api/v1/dev/echo', '{"a":1}', { headers: { 'Content-Type': ct } }), 415, 'unsupported_media_type');
  }
  assertError(await s.post('/api/v1/dev/jobs', 'kind=dev.record', { headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
});
