// Push device tokens: one per device, registered and updated by PUT, removed
// by DELETE; a push token belongs to one account at a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startSouq, assertSuccess, assertError } from './harness.mjs';

let s;
before(async () => { s = await startSouq(); });
after(async () => { await s?.stop(); });

async function user() {
  const d = assertSuccess(await s.post('/api/v1/auth/register',
    { email: `d-${crypto.randomUUID()}@example.com`, password: 'password for tests', display_name: 'D' }), 201);
  return { headers: { Authorization: `Bearer ${d.access_token}` } };
}

test('register, update, list and remove a device', async () => {
  const a = await user();
  const id = `inst-${crypto.randomUUID()}`;
  const first = assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`,
    { body: { platform: 'android', push_token: 'fcm-token-1', app_version: '1.2.0' }, ...a }));
  assert.equal(first.push_token, 'fcm-token-1');
  const updated = assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`,
    { body: { platform: 'android', push_token: 'fcm-token-2' }, ...a }));
  assert.equal(updated.push_token, 'fcm-token-2');
  assert.equal(updated.created_at, first.created_at, 'the same device, not a new one');
  const list = assertSuccess(await s.get('/api/v1/devices', a));
  assert.equal(list.length, 1);
  assertSuccess(await s.request('DELETE', `/api/v1/devices/${id}`, a));
  assert.deepEqual(assertSuccess(await s.get('/api/v1/devices', a)), []);
  assertError(await s.request('DELETE', `/api/v1/devices/${id}`, a), 404, 'not_found');
});

test('a push token moves to the account that registers it last; a device id is each account\'s own', async () => {
  const a = await user();
  const b = await user();
  const id = `inst-${crypto.randomUUID()}`;
  const token = `apns-${crypto.randomUUID()}`;
  assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`, { body: { platform: 'ios', push_token: token }, ...a }));
  assertError(await s.request('DELETE', `/api/v1/devices/${id}`, b), 404, 'not_found');
  // b knows a's installation id but not its push token: a keeps its device
  assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`, { body: { platform: 'ios', push_token: `apns-${crypto.randomUUID()}` }, ...b }));
  assert.equal(assertSuccess(await s.get('/api/v1/devices', a))[0].push_token, token);
  // the phone changed hands: b signs in on it and registers its push token
  assertSuccess(await s.request('PUT', `/api/v1/devices/inst-${crypto.randomUUID()}`, { body: { platform: 'ios', push_token: token }, ...b }));
  assert.deepEqual(assertSuccess(await s.get('/api/v1/devices', a)), [], 'the token left a');
  assert.ok(assertSuccess(await s.get('/api/v1/devices', b)).some((d) => d.push_token === token));
});

test('many accounts racing to register one push token leave it with exactly one', async () => {
  const users = await Promise.all(Array.from({ length: 12 }, () => user()));
  const token = `fcm-${crypto.randomUUID()}`;
  const results = await Promise.all(users.map((u) =>
    s.request('PUT', `/api/v1/devices/inst-${crypto.randomUUID()}`, { body: { platform: 'android', push_token: token }, ...u })));
  assert.deepEqual(results.map((r) => r.status), users.map(() => 200));
  const holders = (await Promise.all(users.map(async (u) => assertSuccess(await s.get('/api/v1/devices', u)))))
    .filter((list) => list.some((d) => d.push_token === token));
  assert.equal(holders.length, 1);
});

test('bad devices are 422 and anonymous callers 401', async () => {
  const a = await user();
  assertError(await s.request('PUT', '/api/v1/devices/short', { body: { platform: 'ios', push_token: 'apns-token' }, ...a }),
    422, 'validation_failed');
  assertError(await s.request('PUT', `/api/v1/devices/inst-${crypto.randomUUID()}`,
    { body: { platform: 'symbian', push_token: 'x' }, ...a }), 422, 'validation_failed');
  assertError(await s.request('PUT', `/api/v1/devices/inst-${crypto.randomUUID()}`,
    { body: { platform: 'ios', push_token: 'apns-token' } }), 401, 'unauthenticated');
});
