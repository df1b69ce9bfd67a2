// Push device tokens: one per device, registered and updated by PUT, removed
// by DELETE; a device that signs in as someone else moves to them.
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

test('a device moves to the account that registers it last; nobody removes another user\'s device', async () => {
  const a = await user();
  const b = await user();
  const id = `inst-${crypto.randomUUID()}`;
  assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`, { body: { platform: 'ios', push_token: 'apns-token-a' }, ...a }));
  assertError(await s.request('DELETE', `/api/v1/devices/${id}`, b), 404, 'not_found');
  assertSuccess(await s.request('PUT', `/api/v1/devices/${id}`, { body: { platform: 'ios', push_token: 'apns-token-b' }, ...b }));
  assert.deepEqual(assertSuccess(await s.get('/api/v1/devices', a)), []);
  assert.equal(assertSuccess(await s.get('/api/v1/devices', b))[0].push_token, 'apns-token-b');
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
