// OpenID Connect sign-in: ID tokens signed (by jose) with RS256 and ES256 keys
// that the operator configured; issuer, audience, expiry, nonce and signature
// are checked; accounts are linked by subject, or by verified email.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { startSouq, assertSuccess, assertError } from './harness.mjs';

const GOOGLE = 'https://accounts.google.example';
const APPLE = 'https://appleid.apple.example';
let s, dir, rsa, ec, other;

before(async () => {
  rsa = await generateKeyPair('RS256');
  ec = await generateKeyPair('ES256');
  other = await generateKeyPair('RS256');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-oidc-'));
  const appleJwks = path.join(dir, 'apple.jwks');
  fs.writeFileSync(appleJwks, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'apple-1', alg: 'ES256' }] }));
  const config = {
    providers: [
      { name: 'google', issuer: GOOGLE, audiences: ['web-client', 'android-client'],
        jwks: { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'g-1', alg: 'RS256' }] } },
      { name: 'apple', issuer: APPLE, audiences: ['com.example.souq'], jwks_file: appleJwks },
    ],
  };
  fs.writeFileSync(path.join(dir, 'oidc.json'), JSON.stringify(config));
  s = await startSouq({ args: ['--oidc-config', path.join(dir, 'oidc.json')] });
});
after(async () => { await s?.stop(); fs.rmSync(dir, { recursive: true, force: true }); });

// Each token carries a fresh nonce (nonces are single use); signIn sends it back.
const nonces = new Map();
async function google(claims = {}, { key = rsa.privateKey, kid = 'g-1', alg = 'RS256', exp = '10m' } = {}) {
  const nonce = claims.nonce ?? `nonce-${crypto.randomUUID()}`;
  const token = await new SignJWT({ email_verified: true, ...claims, nonce })
    .setProtectedHeader({ alg, kid }).setIssuer(GOOGLE).setAudience('web-client')
    .setSubject(claims.sub ?? `g-${crypto.randomUUID()}`).setIssuedAt().setExpirationTime(exp).sign(key);
  nonces.set(token, nonce);
  return token;
}
const signIn = (id_token, nonce = nonces.get(id_token) ?? 'nonce-123456') => s.post('/api/v1/auth/oidc', { id_token, nonce });

test('RS256: the first sign-in creates the account, the next finds it by subject', async () => {
  const sub = `g-${crypto.randomUUID()}`;
  const email = `${sub}@gmail.example`;
  const first = assertSuccess(await signIn(await google({ sub, email, name: 'Layla' })));
  assert.equal(first.new_user, true);
  assert.equal(first.provider, 'google');
  assert.equal(first.user.display_name, 'Layla');
  assert.equal(first.user.email, email);
  const again = assertSuccess(await signIn(await google({ sub, email: 'changed@gmail.example' })));
  assert.equal(again.new_user, false);
  assert.equal(again.user.id, first.user.id);
  assertSuccess(await s.get('/api/v1/users/me', { headers: { Authorization: `Bearer ${again.access_token}` } }));
});

test('ES256 (Apple, keys from a JWKS file, nonce given as its SHA-256)', async () => {
  const raw = 'raw-nonce-from-the-app';
  const hashed = crypto.createHash('sha256').update(raw).digest('hex');
  const token = await new SignJWT({ nonce: hashed, email: 'hidden@privaterelay.example', email_verified: 'true' })
    .setProtectedHeader({ alg: 'ES256', kid: 'apple-1' }).setIssuer(APPLE).setAudience('com.example.souq')
    .setSubject(`a-${crypto.randomUUID()}`).setIssuedAt().setExpirationTime('5m').sign(ec.privateKey);
  const r = assertSuccess(await signIn(token, raw));
  assert.equal(r.provider, 'apple');
  assert.equal(r.new_user, true);
});

test('linking by email: a second provider joins a provider-made account; a password account is never taken over', async () => {
  const email = `link-${crypto.randomUUID()}@example.com`;
  const viaGoogle = assertSuccess(await signIn(await google({ email })));
  const appleNonce = `nonce-${crypto.randomUUID()}`;
  const appleToken = await new SignJWT({ nonce: appleNonce, email, email_verified: true })
    .setProtectedHeader({ alg: 'ES256', kid: 'apple-1' }).setIssuer(APPLE).setAudience('com.example.souq')
    .setSubject(`a-${crypto.randomUUID()}`).setIssuedAt().setExpirationTime('5m').sign(ec.privateKey);
  const viaApple = assertSuccess(await signIn(appleToken, appleNonce));
  assert.equal(viaApple.user.id, viaGoogle.user.id, 'the same verified email at a second provider is the same person');
  // Pre-hijacking: someone registers the victim's email with a password first.
  const victim = `victim-${crypto.randomUUID()}@example.com`;
  assertSuccess(await s.post('/api/v1/auth/register', { email: victim, password: 'attacker password', display_name: 'A' }), 201);
  assertError(await signIn(await google({ email: victim })), 409, 'account_exists');
  const unverified = assertSuccess(await signIn(await google({ email: victim, email_verified: false })));
  assert.equal(unverified.user.email, null, 'an unverified email is not stored');
  assert.doesNotMatch(unverified.user.display_name, /victim/, 'public names never carry the email');
});

test('an ID token signs in once: replaying it (its nonce) is refused', async () => {
  const token = await google();
  assertSuccess(await signIn(token));
  assertError(await signIn(token), 401, 'invalid_id_token');
});

test('forged, foreign, expired and mismatched tokens are refused with 401 invalid_id_token', async () => {
  const cases = {
    'wrong key': await google({}, { key: other.privateKey }),
    'unknown kid': await google({}, { kid: 'g-unknown' }),
    expired: await google({}, { exp: Math.floor(Date.now() / 1000) - 300 }),
    'wrong audience': await new SignJWT({ nonce: 'nonce-123456' }).setProtectedHeader({ alg: 'RS256', kid: 'g-1' })
      .setIssuer(GOOGLE).setAudience('someone-else').setSubject('x').setIssuedAt().setExpirationTime('5m').sign(rsa.privateKey),
    'unknown issuer': await new SignJWT({ nonce: 'nonce-123456' }).setProtectedHeader({ alg: 'RS256', kid: 'g-1' })
      .setIssuer('https://evil.example').setAudience('web-client').setSubject('x').setIssuedAt().setExpirationTime('5m')
      .sign(rsa.privateKey),
    'wrong nonce': await google({ nonce: 'another-nonce' }),
    'alg of the wrong type': ['eyJhbGciOjF9', 'e30', 'AAAA'].join('.'),
    // The classic confusion: HS256 "signed" with the RSA public key as the secret.
    'alg HS256 with the public key': await new SignJWT({ nonce: 'nonce-123456' }).setProtectedHeader({ alg: 'HS256', kid: 'g-1' })
      .setIssuer(GOOGLE).setAudience('web-client').setSubject('x').setIssuedAt().setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(await exportJWK(rsa.publicKey)))),
  };
  const good = await google();
  const parts = good.split('.');
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  cases.tampered = [parts[0], Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url'), parts[2]].join('.');
  cases['alg none'] = [Buffer.from('{"alg":"none","kid":"g-1"}').toString('base64url'), parts[1], ''].join('.');
  for (const [name, token] of Object.entries(cases)) {
    const res = await signIn(token, 'the-nonce-this-app-sent');  // every case fails before or at the nonce
    assert.equal(res.status, 401, `${name}: ${res.status} ${res.text}`);
    assert.equal(res.json.error.code, 'invalid_id_token', name);
  }
  assertError(await s.post('/api/v1/auth/oidc', { id_token: good }), 422, 'validation_failed');
  assertSuccess(await signIn(good), 200, 'the untouched token still signs in');
  assertError(await s.post('/api/v1/auth/oidc', { id_token: await google({ nonce: 'never-given-back' }), nonce: 'another-one' }),
    401, 'invalid_id_token');
});

test('without --oidc-config the route answers 503 oidc_unavailable', async () => {
  const plain = await startSouq();
  try {
    assertError(await plain.post('/api/v1/auth/oidc', { id_token: await google(), nonce: 'nonce-123456' }), 503, 'oidc_unavailable');
  } finally {
    await plain.stop();
  }
});
