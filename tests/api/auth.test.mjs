// Identity: email+password accounts, JWT access tokens (checked with jose),
// rotating refresh tokens, logout, password change, profiles.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { jwtVerify, SignJWT, decodeJwt } from 'jose';
import { startSouq, assertSuccess, assertError } from './harness.mjs';

const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
const key = new TextEncoder().encode(SECRET);
let s;
before(async () => { s = await startSouq({ args: ['--jwt-secret', SECRET] }); });
after(async () => { await s?.stop(); });

const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });
const uniqueEmail = () => `u-${crypto.randomUUID()}@example.com`;

async function register(overrides = {}) {
  const body = { email: uniqueEmail(), password: 'correct horse battery', display_name: 'Amina', ...overrides };
  const data = assertSuccess(await s.post('/api/v1/auth/register', body), 201);
  return { ...data, email: body.email, password: body.password };
}

test('register: 201 with tokens and the account; the access token is a standard HS256 JWT', async () => {
  const r = await register({ email: `Mixed.Case-${crypto.randomUUID()}@Example.COM`, locale: 'ar-EG' });
  assert.equal(r.token_type, 'Bearer');
  assert.equal(r.expires_in, 86400);
  assert.equal(r.user.email, r.email.toLowerCase());
  assert.equal(r.user.locale, 'ar-EG');
  assert.deepEqual(r.user.roles, ['buyer']);
  const { payload, protectedHeader } = await jwtVerify(r.access_token, key, { issuer: 'souq', algorithms: ['HS256'] });
  assert.equal(protectedHeader.alg, 'HS256');
  assert.equal(payload.sub, r.user.id);
  assert.match(payload.sid, /^ses_/);
  assert.deepEqual(payload.roles, ['buyer']);
  assert.equal(payload.exp - payload.iat, 86400);
});

test('register: the same email in another case is 409 email_taken', async () => {
  const r = await register();
  assertError(await s.post('/api/v1/auth/register',
    { email: r.email.toUpperCase(), password: 'another password', display_name: 'X' }), 409, 'email_taken');
});

test('register: every bad field is named in one 422, and nothing is created', async () => {
  const email = 'not-an-email';
  const res = await s.post('/api/v1/auth/register', { email, password: 'short', display_name: '', roles: ['admin'] });
  assertError(res, 422, 'validation_failed');
  assert.deepEqual(Object.keys(res.json.error.details.fields).sort(), ['display_name', 'email', 'password', 'roles']);
  assertError(await s.post('/api/v1/auth/register', { email: uniqueEmail(), password: 'long enough pw', display_name: 'a\u0007b' }),
    422, 'validation_failed');
  assertError(await s.post('/api/v1/auth/register', 'not json', { headers: { 'Content-Type': 'application/json' } }),
    400, 'invalid_json');
});

test('login: right password signs in; a wrong password and an unknown email get the same 401', async () => {
  const r = await register();
  const ok = assertSuccess(await s.post('/api/v1/auth/login', { email: r.email, password: r.password }));
  const claims = decodeJwt(ok.access_token);
  assert.equal(claims.sub, r.user.id);
  assert.notEqual(claims.sid, decodeJwt(r.access_token).sid, 'each sign-in is its own session');
  const wrong = await s.post('/api/v1/auth/login', { email: r.email, password: 'wrong password' });
  const unknown = await s.post('/api/v1/auth/login', { email: uniqueEmail(), password: 'whatever it is' });
  assertError(wrong, 401, 'invalid_credentials');
  assertError(unknown, 401, 'invalid_credentials');
  assert.equal(wrong.json.error.message, unknown.json.error.message);
});

test('access tokens: missing, malformed, alg none, forged, expired and foreign tokens are refused', async () => {
  const r = await register();
  const claims = decodeJwt(r.access_token);
  assertError(await s.get('/api/v1/users/me'), 401, 'unauthenticated');
  assertError(await s.get('/api/v1/users/me', bearer('garbage')), 401, 'invalid_token');
  assertError(await s.get('/api/v1/users/me', { headers: { Authorization: `Basic ${r.access_token}` } }), 401, 'invalid_token');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: claims.exp + 10 })}.`;
  assertError(await s.get('/api/v1/users/me', bearer(none)), 401, 'invalid_token');
  // A header whose alg is not a string is a refusal, not a server error.
  const oddHeader = `${b64({ alg: 1 })}.${b64(claims)}.AAAA`;
  assertError(await s.get('/api/v1/users/me', bearer(oddHeader)), 401, 'invalid_token');
  const forged = await new SignJWT({ ...claims, roles: ['admin'] }).setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('some-other-secret-that-is-long-enough-000000'));
  assertError(await s.get('/api/v1/users/me', bearer(forged)), 401, 'invalid_token');
  const tampered = r.access_token.split('.');
  tampered[1] = b64({ ...claims, roles: ['admin'] });
  assertError(await s.get('/api/v1/users/me', bearer(tampered.join('.'))), 401, 'invalid_token');
  const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 5 })
    .setProtectedHeader({ alg: 'HS256' }).sign(key);
  assertError(await s.get('/api/v1/users/me', bearer(expired)), 401, 'token_expired');
  const foreign = await new SignJWT({ ...claims, iss: 'someone-else' }).setProtectedHeader({ alg: 'HS256' }).sign(key);
  assertError(await s.get('/api/v1/users/me', bearer(foreign)), 401, 'invalid_token');
  // The genuine token still works.
  assert.equal(assertSuccess(await s.get('/api/v1/users/me', bearer(r.access_token))).id, r.user.id);
});

test('refresh: rotates; reusing a rotated token ends the whole session', async () => {
  const r = await register();
  const next = assertSuccess(await s.post('/api/v1/auth/refresh', { refresh_token: r.refresh_token }));
  assert.notEqual(next.refresh_token, r.refresh_token);
  assert.equal(decodeJwt(next.access_token).sid, decodeJwt(r.access_token).sid, 'same session');
  assertSuccess(await s.get('/api/v1/users/me', bearer(next.access_token)));
  assertError(await s.post('/api/v1/auth/refresh', { refresh_token: r.refresh_token }), 401, 'refresh_token_reused');
  assertError(await s.post('/api/v1/auth/refresh', { refresh_token: next.refresh_token }), 401, 'invalid_refresh_token');
  assertError(await s.get('/api/v1/users/me', bearer(next.access_token)), 401, 'session_revoked');
  assertError(await s.post('/api/v1/auth/refresh', { refresh_token: 'made-up' }), 401, 'invalid_refresh_token');
});

test('refresh: ten clients racing with one token get exactly one new pair', async () => {
  const r = await register();
  const results = await Promise.all(Array.from({ length: 10 },
    () => s.post('/api/v1/auth/refresh', { refresh_token: r.refresh_token })));
  const statuses = results.map((x) => x.status);
  assert.equal(statuses.filter((x) => x === 200).length, 1, `statuses: ${statuses}`);
  assert.equal(statuses.filter((x) => x === 401).length, 9, `statuses: ${statuses}`);
});

test('logout ends this session only; logout-all ends every session', async () => {
  const r = await register();
  const second = assertSuccess(await s.post('/api/v1/auth/login', { email: r.email, password: r.password }));
  const third = assertSuccess(await s.post('/api/v1/auth/login', { email: r.email, password: r.password }));
  assertSuccess(await s.post('/api/v1/auth/logout', undefined, bearer(r.access_token)));
  assertError(await s.get('/api/v1/users/me', bearer(r.access_token)), 401, 'session_revoked');
  assertError(await s.post('/api/v1/auth/refresh', { refresh_token: r.refresh_token }), 401, 'invalid_refresh_token');
  assertSuccess(await s.get('/api/v1/users/me', bearer(second.access_token)));
  assertSuccess(await s.post('/api/v1/auth/logout-all', undefined, bearer(second.access_token)));
  assertError(await s.get('/api/v1/users/me', bearer(second.access_token)), 401, 'session_revoked');
  assertError(await s.get('/api/v1/users/me', bearer(third.access_token)), 401, 'session_revoked');
  assertError(await s.post('/api/v1/auth/logout'), 401, 'unauthenticated');
});

test('password change: needs the current password, ends the other sessions, keeps this one', async () => {
  const r = await register();
  const other = assertSuccess(await s.post('/api/v1/auth/login', { email: r.email, password: r.password }));
  assertError(await s.post('/api/v1/auth/password', { current_password: 'not it', new_password: 'a new password' },
    bearer(r.access_token)), 403, 'wrong_password');
  assertError(await s.post('/api/v1/auth/password', { current_password: r.password, new_password: 'short' },
    bearer(r.access_token)), 422, 'validation_failed');
  assertSuccess(await s.post('/api/v1/auth/password', { current_password: r.password, new_password: 'a new password' },
    bearer(r.access_token)));
  assertSuccess(await s.get('/api/v1/users/me', bearer(r.access_token)));
  assertError(await s.get('/api/v1/users/me', bearer(other.access_token)), 401, 'session_revoked');
  assertError(await s.post('/api/v1/auth/login', { email: r.email, password: r.password }), 401, 'invalid_credentials');
  assertSuccess(await s.post('/api/v1/auth/login', { email: r.email, password: 'a new password' }));
});

test('profile: the owner changes name, locale and avatar; roles, status and email cannot be set', async () => {
  const r = await register();
  const me = assertSuccess(await s.request('PUT', '/api/v1/users/me',
    { body: { display_name: '  Amina Saleh ', locale: 'ar', avatar_url: 'https://cdn.example/a.png' }, ...bearer(r.access_token) }));
  assert.equal(me.display_name, 'Amina Saleh');
  assert.equal(me.locale, 'ar');
  assert.equal(me.avatar_url, 'https://cdn.example/a.png');
  const escalate = await s.request('PUT', '/api/v1/users/me',
    { body: { display_name: 'X', roles: ['admin', 'seller'], status: 'active', email: 'x@y.zz' }, ...bearer(r.access_token) });
  assertError(escalate, 422, 'validation_failed');
  assert.deepEqual(Object.keys(escalate.json.error.details.fields).sort(), ['email', 'roles', 'status']);
  const after = assertSuccess(await s.get('/api/v1/users/me', bearer(r.access_token)));
  assert.deepEqual(after.roles, ['buyer']);
  assert.equal(after.display_name, 'Amina Saleh', 'a refused update changes nothing');
  assertError(await s.request('PUT', '/api/v1/users/me',
    { body: { avatar_url: 'javascript:alert(1)' }, ...bearer(r.access_token) }), 422, 'validation_failed');
  const cleared = assertSuccess(await s.request('PUT', '/api/v1/users/me', { body: { avatar_url: null }, ...bearer(r.access_token) }));
  assert.equal(cleared.avatar_url, null);
});

test('public profile: no contact details; unknown and malformed ids are 404', async () => {
  const r = await register();
  const profile = assertSuccess(await s.get(`/api/v1/users/${r.user.id}`));
  assert.deepEqual(Object.keys(profile).sort(), ['avatar_url', 'display_name', 'id', 'is_seller', 'member_since', 'rating']);
  assert.deepEqual(profile.rating, { as_seller: { count: 0, average: null }, as_buyer: { count: 0, average: null } });
  assert.equal(profile.is_seller, false);
  assertError(await s.get('/api/v1/users/usr_0000000000000000000000000a'), 404, 'not_found');
  assertError(await s.get('/api/v1/users/nope'), 404, 'not_found');
});

test('password guessing is throttled per email before any hashing, even for the right password', async () => {
  const t = await startSouq({ args: ['--jwt-secret', SECRET, '--login-failures-per-email', '3'] });
  try {
    const email = uniqueEmail();
    assertSuccess(await t.post('/api/v1/auth/register', { email, password: 'the right password', display_name: 'T' }), 201);
    for (let i = 0; i < 3; i++) {
      assertError(await t.post('/api/v1/auth/login', { email, password: `guess number ${i}` }), 401, 'invalid_credentials');
    }
    const refused = await t.post('/api/v1/auth/login', { email, password: 'the right password' });
    assertError(refused, 429, 'too_many_attempts');
    assert.ok(Number(refused.headers['retry-after']) > 0);
    const other = uniqueEmail();
    assertSuccess(await t.post('/api/v1/auth/register', { email: other, password: 'the right password', display_name: 'U' }), 201);
    assertSuccess(await t.post('/api/v1/auth/login', { email: other, password: 'the right password' }),
      200, 'another account from the same address is not held back');
  } finally {
    await t.stop();
  }
});

test('a flood of sign-ups is bounded: beyond the hashing queue the answer is 503 with Retry-After, and nothing is half made', async () => {
  const t = await startSouq({ args: ['--jwt-secret', SECRET, '--hash-queue', '1', '--threads', '1', '--rate-limit', '0'] });
  try {
    const emails = Array.from({ length: 24 }, () => `flood-${crypto.randomUUID()}@example.com`);
    const results = await Promise.all(emails.map((email) =>
      t.post('/api/v1/auth/register', { email, password: 'password for tests', display_name: 'F' })));
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.every((c) => c === 201 || c === 503), statuses.join(','));
    const busy = results.filter((r) => r.status === 503);
    assert.ok(busy.length > 0, 'with room for one hash, some of 24 racing sign-ups are turned away');
    assert.ok(statuses.includes(201), 'and some get through');
    for (const r of busy) {
      assertError(r, 503, 'server_busy');
      assert.equal(r.headers['retry-after'], '1');
    }
    const refused = emails.filter((_, i) => statuses[i] === 503);
    assertError(await t.post('/api/v1/auth/login', { email: refused[0], password: 'password for tests' }), 401, 'invalid_credentials',
      'a refused sign-up made no account');
    assertSuccess(await t.post('/api/v1/auth/register', { email: refused[0], password: 'password for tests', display_name: 'F' }), 201);
  } finally {
    await t.stop();
  }
});
