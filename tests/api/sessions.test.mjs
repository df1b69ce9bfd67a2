// Sessions are cached in memory per node; ending a session or suspending an
// account on one node must reach every other node on the same database
// (through the auth_changes feed), and this node at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, sleep } from './harness.mjs';
import { register, eventually, makeAdmin } from './people.mjs';

let a, b, admin;
const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });

before(async () => {
  a = await startSouq({ args: ['--session-feed-ms', '50'] });
  b = await startSouq({ database: a.dbUrl, args: ['--session-feed-ms', '50'] });
  admin = await makeAdmin(a);
});

after(async () => {
  await b?.stop();
  await a?.stop();
});

test('a logout on one node ends the session on the other node too', async () => {
  const u = await register(a, 'two-nodes');
  // both nodes now hold the session in memory
  for (let i = 0; i < 3; i++) {
    assertSuccess(await a.get('/api/v1/users/me', bearer(u.token)));
    assertSuccess(await b.get('/api/v1/users/me', bearer(u.token)));
  }
  assertSuccess(await a.post('/api/v1/auth/logout', undefined, bearer(u.token)));
  // the node that logged out knows at once
  assertError(await a.get('/api/v1/users/me', bearer(u.token)), 401, 'session_revoked');
  await eventually('logout reaching node b', async () => {
    const res = await b.get('/api/v1/users/me', bearer(u.token));
    return res.status === 401 && res.json.error.code === 'session_revoked' ? true : res.status;
  });
  // writes authenticate the same way
  assertError(await b.request('PUT', '/api/v1/users/me', { body: { display_name: 'still here?' }, ...bearer(u.token) }), 401, 'session_revoked');
});

test('suspension on one node stops the account on the other; unsuspension lets it back', async () => {
  const u = await register(a, 'suspended-elsewhere');
  assertSuccess(await b.get('/api/v1/users/me', bearer(u.token)));
  assertSuccess(await a.post(`/api/v1/admin/users/${u.id}/suspend`, { reason: 'fraud report' }, bearer(admin.token)));
  assertError(await a.get('/api/v1/users/me', bearer(u.token)), 403, 'account_suspended');
  await eventually('suspension reaching node b', async () => {
    const res = await b.get('/api/v1/users/me', bearer(u.token));
    return res.status === 403 || res.status;
  });
  assertSuccess(await a.post(`/api/v1/admin/users/${u.id}/unsuspend`, { reason: 'cleared' }, bearer(admin.token)));
  await eventually('unsuspension reaching node b', async () => (await b.get('/api/v1/users/me', bearer(u.token))).status === 200);
});

test('a new role reaches sessions cached on another node', async () => {
  const u = await register(a, 'new-seller');
  assert.deepEqual(assertSuccess(await b.get('/api/v1/users/me', bearer(u.token))).roles, ['buyer']);
  const profile = assertSuccess(await b.post('/api/v1/seller-profiles',
    { business_name: 'Aswan Crafts', city: 'Aswan', documents: ['file_doc'] }, bearer(u.token)), 201);
  assertSuccess(await a.post(`/api/v1/admin/seller-profiles/${profile.id}/approve`, undefined, bearer(admin.token)));
  await eventually('the seller role reaching node b', async () => {
    const roles = assertSuccess(await b.get('/api/v1/users/me', bearer(u.token))).roles;
    return roles.includes('seller') || roles;
  });
});

test('a password change elsewhere ends the other sessions on every node', async () => {
  const u = await register(a, 'changer');
  const other = assertSuccess(await a.post('/api/v1/auth/login', { email: u.email, password: 'password for tests' }));
  assertSuccess(await b.get('/api/v1/users/me', bearer(other.access_token)));
  assertSuccess(await a.post('/api/v1/auth/password',
    { current_password: 'password for tests', new_password: 'a new password 2' }, bearer(u.token)));
  await eventually('the password change reaching node b', async () => (await b.get('/api/v1/users/me', bearer(other.access_token))).status === 401);
  assertSuccess(await b.get('/api/v1/users/me', bearer(u.token)), 200);
});

test('many readers racing a logout: nothing cached afterwards lets the session back in', async () => {
  const u = await register(a, 'racer');
  const stop = { now: false };
  const readers = [a, b].flatMap((node) => Array.from({ length: 4 }, async () => {
    while (!stop.now) await node.get('/api/v1/users/me', bearer(u.token));
  }));
  await sleep(100);
  assertSuccess(await b.post('/api/v1/auth/logout', undefined, bearer(u.token)));
  await sleep(300);  // several feed intervals, with readers still hitting both nodes
  stop.now = true;
  await Promise.all(readers);
  for (const node of [a, b]) {
    for (let i = 0; i < 5; i++) assertError(await node.get('/api/v1/users/me', bearer(u.token)), 401, 'session_revoked');
  }
});

test('--session-cache-size 0 checks every request against the database', async () => {
  const c = await startSouq({ database: a.dbUrl, args: ['--session-cache-size', '0'] });
  try {
    const u = await register(c, 'uncached');
    assertSuccess(await c.get('/api/v1/users/me', bearer(u.token)));
    assertSuccess(await a.post('/api/v1/auth/logout', undefined, bearer(u.token)));
    assertError(await c.get('/api/v1/users/me', bearer(u.token)), 401, 'session_revoked');
  } finally {
    await c.stop();
  }
});
