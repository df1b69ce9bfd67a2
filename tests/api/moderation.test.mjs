// Seller approval, moderation of people, the audit log, and the
// authorization matrix: each route × anonymous / buyer / pending seller /
// seller / suspended / admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { decodeJwt } from 'jose';
import { startSouq, assertSuccess, assertError, SOUQ_BIN, sleep } from './harness.mjs';

let s;
const actors = {};
const auth = (a) => (a?.token ? { headers: { Authorization: `Bearer ${a.token}` } } : {});

async function register(name) {
  const email = `${name}-${crypto.randomUUID()}@example.com`;
  const d = assertSuccess(await s.post('/api/v1/auth/register', { email, password: 'password for tests', display_name: name }), 201);
  return { id: d.user.id, token: d.access_token, refresh: d.refresh_token, email };
}

async function apply(actor, city = 'Cairo') {
  return s.post('/api/v1/seller-profiles', { business_name: 'Nile Dates', city, documents: ['file_license_1'] }, auth(actor));
}

before(async () => {
  s = await startSouq();
  const email = `admin-${crypto.randomUUID()}@example.com`;
  const adminPhone = `+2012${String(Date.now() % 100_000_000).padStart(8, '0')}`;
  const made = spawnSync(SOUQ_BIN, ['admin', 'create', '--email', email, '--password', 'admin password 1', '--phone', adminPhone,
    '--database', s.dbUrl],
    { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(made.status, 0, made.stderr);
  const login = assertSuccess(await s.post('/api/v1/auth/login', { email, password: 'admin password 1' }));
  actors.admin = { id: decodeJwt(login.access_token).sub, token: login.access_token };
  assert.deepEqual(decodeJwt(login.access_token).roles, ['admin', 'buyer']);
  assert.equal(assertSuccess(await s.get('/api/v1/users/me', auth(actors.admin))).phone, adminPhone);
  const bad = spawnSync(SOUQ_BIN, ['admin', 'create', '--email', 'not-an-email', '--password', 'x', '--database', s.dbUrl],
    { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(bad.status, 2, 'a bad email or short password is refused before anything is written');
  assert.match(bad.stderr, /email/);
  actors.anonymous = null;
  actors.buyer = await register('buyer');
  actors.pending = await register('pending');
  actors.pending.profile = assertSuccess(await apply(actors.pending), 201);
  actors.seller = await register('seller');
  const sp = assertSuccess(await apply(actors.seller), 201);
  assertSuccess(await s.post(`/api/v1/admin/seller-profiles/${sp.id}/approve`, undefined, auth(actors.admin)));
  actors.suspended = await register('suspended');
  assertSuccess(await s.post(`/api/v1/admin/users/${actors.suspended.id}/suspend`, { reason: 'spam listings' }, auth(actors.admin)));
});
after(async () => { await s?.stop(); });

const A = ['anonymous', 'buyer', 'pending', 'seller', 'suspended', 'admin'];
// [name, method, path, body, expected status per actor in A's order (null: not checked)]
const matrix = () => [
  ['own account', 'GET', '/api/v1/users/me', undefined, [401, 200, 200, 200, 403, 200]],
  ['edit own profile', 'PUT', '/api/v1/users/me', { locale: 'ar' }, [401, 200, 200, 200, 403, 200]],
  ['own seller application', 'GET', '/api/v1/seller-profiles/me', undefined, [401, 404, 200, 200, 403, 404]],
  ['apply to sell again', 'POST', '/api/v1/seller-profiles', { business_name: 'X Co', city: 'Giza' }, [401, null, 409, 403, 403, null]],
  ['list applications', 'GET', '/api/v1/admin/seller-profiles?status=pending', undefined, [401, 403, 403, 403, 403, 200]],
  ['read the audit log', 'GET', '/api/v1/admin/audit', undefined, [401, 403, 403, 403, 403, 200]],
  ['warn a user', 'POST', `/api/v1/admin/users/${actors.buyer.id}/warn`, { reason: 'rude messages' }, [401, 403, 403, 403, 403, 200]],
  ['reject an application', 'POST', `/api/v1/admin/seller-profiles/${actors.pending.profile.id}/reject`,
    { reason: 'documents unreadable' }, [401, 403, 403, 403, 403, null]],
  ['suspend a user', 'POST', `/api/v1/admin/users/${actors.buyer.id}/suspend`, { reason: 'x' .repeat(5) }, [401, 403, 403, 403, 403, null]],
  // public, but a token sent is checked: the suspended caller is refused
  ['a public profile', 'GET', `/api/v1/users/${actors.seller.id}`, undefined, [200, 200, 200, 200, 403, 200]],
  ['a suspended account\'s profile', 'GET', `/api/v1/users/${actors.suspended.id}`, undefined, [404, 404, 404, 404, 403, 200]],
];

test('authorization matrix: each route answers each kind of caller as it should', async () => {
  const failures = [];
  for (const [name, method, path, body, expected] of matrix()) {
    for (let i = 0; i < A.length; i++) {
      if (expected[i] === null) continue;
      const res = await s.request(method, path, { body, ...auth(actors[A[i]]) });
      if (res.status !== expected[i]) failures.push(`${name} as ${A[i]}: ${res.status} (expected ${expected[i]}) ${res.text.slice(0, 120)}`);
      if (A[i] === 'suspended' && expected[i] === 403) assert.equal(res.json?.error?.code, 'account_suspended', name);
      if (A[i] === 'anonymous' && expected[i] === 401) assert.equal(res.json?.error?.code, 'unauthenticated', name);
    }
  }
  assert.deepEqual(failures, []);
});

test('seller approval: pending → approved gives the seller role; deciding twice is 409; every step is audited', async () => {
  const u = await register('applicant');
  const profile = assertSuccess(await apply(u), 201);
  assert.equal(profile.status, 'pending');
  assertError(await apply(u), 409, 'seller_profile_exists');
  const listed = assertSuccess(await s.get('/api/v1/admin/seller-profiles?status=pending&limit=200', auth(actors.admin)));
  assert.ok(listed.some((p) => p.id === profile.id));
  const res = await s.post(`/api/v1/admin/seller-profiles/${profile.id}/approve`, undefined, auth(actors.admin));
  assert.equal(assertSuccess(res).status, 'approved');
  assertError(await s.post(`/api/v1/admin/seller-profiles/${profile.id}/reject`, { reason: 'changed my mind' }, auth(actors.admin)),
    409, 'invalid_state');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/users/me', auth(u))).roles, ['buyer', 'seller']);
  const refreshed = assertSuccess(await s.post('/api/v1/auth/refresh', { refresh_token: u.refresh }));
  assert.deepEqual(decodeJwt(refreshed.access_token).roles, ['buyer', 'seller']);
  assert.equal(assertSuccess(await s.get(`/api/v1/users/${u.id}`)).is_seller, true);
  const audit = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${profile.id}`, auth(actors.admin)));
  assert.equal(audit.length, 1);
  assert.equal(audit[0].action, 'seller_profile.approve');
  assert.equal(audit[0].actor_id, actors.admin.id);
  assert.equal(audit[0].request_id, res.headers['x-request-id'], 'the audit entry names the request');
});

test('rejection needs a reason; a rejected applicant may apply again', async () => {
  const u = await register('rejected');
  const profile = assertSuccess(await apply(u), 201);
  assertError(await s.post(`/api/v1/admin/seller-profiles/${profile.id}/reject`, undefined, auth(actors.admin)), 422, 'validation_failed');
  const rejected = assertSuccess(await s.post(`/api/v1/admin/seller-profiles/${profile.id}/reject`,
    { reason: 'license expired' }, auth(actors.admin)));
  assert.equal(rejected.status, 'rejected');
  assert.equal(rejected.rejection_reason, 'license expired');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/users/me', auth(u))).roles, ['buyer']);
  const again = assertSuccess(await apply(u, 'Alexandria'), 201);
  assert.equal(again.id, profile.id);
  assert.equal(again.status, 'pending');
  assert.equal(again.city, 'Alexandria');
  assertError(await s.post('/api/v1/seller-profiles', { business_name: 'X', city: '', documents: 'nope' }, auth(u)),
    422, 'validation_failed');
});

test('suspension takes effect on the very next request and unsuspension restores the same tokens', async () => {
  const u = await register('to-suspend');
  assertSuccess(await s.get('/api/v1/users/me', auth(u)));
  assertError(await s.post(`/api/v1/admin/users/${u.id}/suspend`, {}, auth(actors.admin)), 422, 'validation_failed');
  assertSuccess(await s.post(`/api/v1/admin/users/${u.id}/suspend`, { reason: 'chargebacks' }, auth(actors.admin)));
  assertError(await s.get('/api/v1/users/me', auth(u)), 403, 'account_suspended');
  assertError(await s.post('/api/v1/auth/refresh', { refresh_token: u.refresh }), 403, 'account_suspended');
  assertError(await s.post('/api/v1/auth/login', { email: u.email, password: 'password for tests' }), 403, 'account_suspended',
    'no new session for a suspended account');
  assertError(await s.get(`/api/v1/users/${u.id}`), 404, 'not_found');
  assertError(await s.get(`/api/v1/users/${u.id}`, auth(actors.buyer)), 404, 'not_found');
  const seen = assertSuccess(await s.get(`/api/v1/users/${u.id}`, auth(actors.admin)));
  assert.equal(seen.status, 'suspended', 'an admin sees the suspended account and why it is hidden');
  assert.equal(assertSuccess(await s.get(`/api/v1/users/${actors.buyer.id}`, auth(actors.admin))).status, 'active');
  assert.equal(assertSuccess(await s.get(`/api/v1/users/${actors.buyer.id}`)).status, undefined, 'only admins see status');
  // a token on a public route is checked, not ignored
  assertError(await s.get(`/api/v1/users/${actors.buyer.id}`, { headers: { Authorization: 'Bearer not.a.token' } }), 401, 'invalid_token');
  assertError(await s.post(`/api/v1/admin/users/${u.id}/suspend`, { reason: 'again' }, auth(actors.admin)), 409, 'already_suspended');
  assertSuccess(await s.post(`/api/v1/admin/users/${u.id}/unsuspend`, { reason: 'appeal accepted' }, auth(actors.admin)));
  assertSuccess(await s.get('/api/v1/users/me', auth(u)));
  assertError(await s.post(`/api/v1/admin/users/${u.id}/unsuspend`, { reason: 'again' }, auth(actors.admin)), 409, 'not_suspended');
  assertError(await s.post(`/api/v1/admin/users/${actors.admin.id}/suspend`, { reason: 'oops' }, auth(actors.admin)),
    422, 'cannot_suspend_self');
  assertError(await s.post('/api/v1/admin/users/usr_0000000000000000000000000a/warn', { reason: 'nobody' }, auth(actors.admin)),
    404, 'not_found');
  const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${u.id}`, auth(actors.admin)));
  assert.deepEqual(log.map((e) => e.action), ['user.unsuspend', 'user.suspend']);
  assert.deepEqual(log.map((e) => e.reason), ['appeal accepted', 'chargebacks']);
});

test('admin create will not silently promote an account someone registered first', async () => {
  const squatter = await register('squatter');
  const run = (extra) => spawnSync(SOUQ_BIN, ['admin', 'create', '--email', squatter.email, '--password', 'operator password',
    '--database', s.dbUrl, ...extra], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  const refused = run([]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /--promote-existing/);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/users/me', auth(squatter))).roles, ['buyer'], 'nothing changed');
  assert.equal(run(['--promote-existing']).status, 0);
  // another process made the change: the server learns it from the session feed (200 ms by default)
  const deadline = Date.now() + 5000;
  while ((await s.get('/api/v1/users/me', auth(squatter))).status === 200 && Date.now() < deadline) await sleep(25);
  assertError(await s.get('/api/v1/users/me', auth(squatter)), 401, 'session_revoked', 'the earlier sessions are ended');
  assertError(await s.post('/api/v1/auth/login', { email: squatter.email, password: 'password for tests' }), 401, 'invalid_credentials');
  const op = assertSuccess(await s.post('/api/v1/auth/login', { email: squatter.email, password: 'operator password' }));
  assert.deepEqual(decodeJwt(op.access_token).roles, ['admin', 'buyer']);
});

test('audit log: filters and cursor pagination', async () => {
  const u = await register('warned');
  for (const reason of ['first warning', 'second warning', 'third warning']) {
    assertSuccess(await s.post(`/api/v1/admin/users/${u.id}/warn`, { reason }, auth(actors.admin)));
  }
  const seen = [];
  let cursor = '';
  for (let page = 0; page < 5; page++) {
    const res = await s.get(`/api/v1/admin/audit?action=user.warn&target_id=${u.id}&limit=2${cursor}`, auth(actors.admin));
    const items = assertSuccess(res);
    seen.push(...items.map((e) => e.reason));
    if (!res.json.meta.next_cursor) break;
    cursor = `&cursor=${res.json.meta.next_cursor}`;
  }
  assert.deepEqual(seen, ['third warning', 'second warning', 'first warning']);
  assertError(await s.get('/api/v1/admin/audit?cursor=bogus', auth(actors.admin)), 422, 'validation_failed');
});
