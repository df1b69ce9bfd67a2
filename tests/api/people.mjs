// The people marketplace tests need: buyers, approved and pending sellers,
// admins, suspended users — each a real account made through the API (admins
// through `souq admin create`), with a bearer token.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { decodeJwt } from 'jose';
import { assertSuccess, SOUQ_BIN } from './harness.mjs';

export const auth = (person) => (person?.token ? { headers: { Authorization: `Bearer ${person.token}` } } : {});

export async function register(s, name) {
  const email = `${name}-${crypto.randomUUID()}@example.com`;
  const d = assertSuccess(await s.post('/api/v1/auth/register', { email, password: 'password for tests', display_name: name }), 201);
  return { id: d.user.id, token: d.access_token, refresh: d.refresh_token, email, name };
}

export async function makeAdmin(s) {
  const email = `admin-${crypto.randomUUID()}@example.com`;
  const made = spawnSync(SOUQ_BIN, ['admin', 'create', '--email', email, '--password', 'admin password 1', '--database', s.dbUrl],
    { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(made.status, 0, made.stderr);
  const login = assertSuccess(await s.post('/api/v1/auth/login', { email, password: 'admin password 1' }));
  return { id: decodeJwt(login.access_token).sub, token: login.access_token, email, name: 'admin' };
}

// A seller whose application an admin approved; `categories` are the ones they serve.
export async function makeSeller(s, admin, name = 'seller', categories = []) {
  const p = await register(s, name);
  const profile = assertSuccess(await s.post('/api/v1/seller-profiles',
    { business_name: `${name} trading`, city: 'Cairo', documents: ['file_license'] }, auth(p)), 201);
  assertSuccess(await s.post(`/api/v1/admin/seller-profiles/${profile.id}/approve`, undefined, auth(admin)));
  if (categories.length) assertSuccess(await s.request('PUT', '/api/v1/seller/categories', { body: { categories }, ...auth(p) }));
  return p;
}

export async function makePendingSeller(s, name = 'pending') {
  const p = await register(s, name);
  assertSuccess(await s.post('/api/v1/seller-profiles', { business_name: `${name} co`, city: 'Giza' }, auth(p)), 201);
  return p;
}

export async function suspend(s, admin, person, reason = 'fraud reports') {
  assertSuccess(await s.post(`/api/v1/admin/users/${person.id}/suspend`, { reason }, auth(admin)));
}

// A request body with sensible defaults; `over` replaces fields.
export function requestBody(over = {}) {
  return {
    title: 'Used iPhone 13, 128 GB', description: 'Good battery, no scratches', category: 'phones', quantity: 1,
    budget_min: 1_000_000, budget_max: 2_000_000, currency: 'EGP', city: 'Cairo', ...over,
  };
}

export async function postRequest(s, buyer, over = {}) {
  return assertSuccess(await s.post('/api/v1/requests', requestBody(over), auth(buyer)), 201);
}

export function offerBody(requestId, over = {}) {
  return { request_id: requestId, price: 1_500_000, currency: 'EGP', message: 'Mint, with box', delivery_days: 2, ...over };
}

export async function makeOffer(s, seller, requestId, over = {}) {
  return assertSuccess(await s.post('/api/v1/offers', offerBody(requestId, over), auth(seller)), 201);
}

// The domain events about `subject` (dev route), types only unless `full`.
export async function events(s, subject, { type = '', full = false } = {}) {
  const list = assertSuccess(await s.get(`/api/v1/dev/events?subject=${encodeURIComponent(subject)}&type=${encodeURIComponent(type)}`));
  return full ? list : list.map((e) => e.type);
}

// Polls `check` until it returns true; fails with what it saw last.
export async function eventually(what, check, ms = 10_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last === true) return;
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${ms} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Money in `person`'s wallet: a sandbox top-up, completed on the sandbox's
// hosted page, confirmed by its signed webhook. Returns the payment.
export async function fundWallet(s, person, amount, currency = 'EGP') {
  const pay = assertSuccess(await s.post('/api/v1/payments', { provider: 'sandbox', topup: { amount, currency } },
    { headers: { ...auth(person).headers, 'Idempotency-Key': crypto.randomUUID() } }), 201);
  assertSuccess(await s.post(`/sandbox/checkout/${pay.id}/complete`, { outcome: 'succeeded' }), 202);
  let done;
  await eventually(`top-up ${pay.id} confirmed`, async () => {
    done = assertSuccess(await s.get(`/api/v1/payments/${pay.id}`, auth(person)));
    return done.status === 'succeeded' || done.status;
  });
  return done;
}

// The buyer pays a deal that waits for payment: a top-up of its amount, then
// the deal paid from the wallet (held in escrow). Returns the transaction.
export async function payDeal(s, buyer, deal) {
  await fundWallet(s, buyer, deal.amount, deal.currency);
  assertSuccess(await s.post('/api/v1/payments', { provider: 'wallet', transaction_id: deal.id },
    { headers: { ...auth(buyer).headers, 'Idempotency-Key': crypto.randomUUID() } }), 201);
  return assertSuccess(await s.get(`/api/v1/transactions/${deal.id}`, auth(buyer)));
}

// Money (the payments module). Requests that move money carry an Idempotency-Key.
export const withKey = (person, key = crypto.randomUUID()) =>
  ({ headers: { ...auth(person).headers, 'Idempotency-Key': key } });
