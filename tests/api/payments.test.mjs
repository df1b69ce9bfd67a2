// Money, end to end: wallet top-ups through the sandbox gateway (its hosted
// page and its signed webhook), the Idempotency-Key layer (replays, reuse,
// ten racing requests), negotiated deals paid from the wallet and released
// to the seller minus commission (percentage and minimum), escrowed purchases
// funded by the sandbox's webhook, webhook faults (bad and stale signatures,
// unknown payments, unhandled types, misreported amounts, ten racing
// deliveries of one event, admin replays), Stripe against a local fake of
// its API with events signed by the real `stripe` package, payouts (sandbox
// and Stripe transfers), disputes resolved by an admin, and bad input. After
// each flow the ledger verifies (hash chains and balances).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import Stripe from 'stripe';
import { startSouq, assertSuccess, assertError, sleep } from './harness.mjs';
import {
  auth, register, makeAdmin, makeSeller, postRequest, makeOffer, eventually, withKey, fundWallet,
} from './people.mjs';
import { startFakeStripe } from './fakes.mjs';

const SANDBOX_SECRET = 'whsec_sandbox_secret_for_tests';
const STRIPE_KEY = 'sk_test_x';
const STRIPE_WEBHOOK_SECRET = 'whsec_x';

let s, admin, fakeStripe;
before(async () => {
  fakeStripe = await startFakeStripe({ secretKey: STRIPE_KEY });
  // Port 0: the sandbox's page and webhook must reach the port actually bound.
  s = await startSouq({
    args: ['--payment-providers', 'wallet,sandbox,stripe', '--sandbox-secret', SANDBOX_SECRET,
      '--stripe-secret-key', STRIPE_KEY, '--stripe-webhook-secret', STRIPE_WEBHOOK_SECRET,
      '--stripe-base-url', fakeStripe.baseUrl],
  });
  admin = await makeAdmin(s);
});
after(async () => {
  await s?.stop();
  await fakeStripe?.close();
});

// ---------------------------------------------------------------- helpers

const unique = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
const PAY_ID = /^pay_[0-9a-hjkmnp-tv-z]{26}$/;

const pay = (who, body, key = crypto.randomUUID()) => s.post('/api/v1/payments', body, withKey(who, key));
const topupBody = (amount, provider = 'sandbox', currency = 'EGP') => ({ topup: { amount, currency }, provider });
const take = (id, name, who, body) => s.post(`/api/v1/transactions/${id}/transitions/${name}`, body, auth(who));
const deal = async (id, who) => assertSuccess(await s.get(`/api/v1/transactions/${id}`, auth(who)));
// The buyer pays a transaction from their wallet (money already there).
const payFromWallet = async (buyer, transactionId) =>
  assertSuccess(await pay(buyer, { transaction_id: transactionId, provider: 'wallet' }), 201);
const payment = async (id, who = admin) => assertSuccess(await s.get(`/api/v1/payments/${id}`, auth(who)));

// Someone's wallet in a currency ({balance, held, available, incoming}; zeros before it exists).
async function wallet(who, currency = 'EGP') {
  const list = assertSuccess(await s.get('/api/v1/wallets', auth(who)));
  assert.ok(Array.isArray(list));
  const w = list.find((x) => x.currency === currency);
  if (!w) return { balance: 0, held: 0, available: 0, incoming: 0 };
  assert.equal(w.available, w.balance - w.held, `available = balance − held: ${JSON.stringify(w)}`);
  return { balance: w.balance, held: w.held, available: w.available, incoming: w.incoming };
}

// Every item of an admin list (following next_cursor).
async function adminList(route, query = '', pageSize = 100) {
  const out = [];
  let cursor = null;
  for (let pages = 0; pages < 1000; pages++) {
    const res = await s.get(`${route}?limit=${pageSize}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, auth(admin));
    out.push(...assertSuccess(res));
    cursor = res.json.meta.next_cursor;
    if (!cursor) return out;
  }
  assert.fail(`${route}: the pages do not end`);
}
const paymentsOf = async (who) => (await adminList('/api/v1/admin/payments')).filter((p) => p.payer_id === who.id);
// (two a page, so that the transfers' cursors are followed too)
const transfersAbout = async (reference) => adminList('/api/v1/admin/ledger/transfers', `&reference=${encodeURIComponent(reference)}`, 2);
// The stored webhook deliveries whose body carries this text (an event id).
const deliveriesWith = async (text) => (await adminList('/api/v1/admin/payments/webhooks')).filter((d) => d.body.includes(text));

async function ledgerVerifies() {
  const report = assertSuccess(await s.get('/api/v1/admin/ledger/verify', auth(admin)));
  assert.equal(report.ok, true, `the ledger does not verify: ${JSON.stringify(report).slice(0, 2000)}`);
  return report;
}

async function revenue(currency = 'EGP') {
  const [a] = assertSuccess(await s.get(`/api/v1/admin/ledger/accounts?code=platform_revenue&ledger=${currency}`, auth(admin)));
  return a ? a.credits_posted - a.debits_posted : 0;
}

async function setCommission(category, basisPoints, minimums) {
  const body = { basis_points: basisPoints, ...(minimums ? { minimums } : {}) };
  const rule = assertSuccess(await s.request('PUT', `/api/v1/admin/commission-rules/${encodeURIComponent(category)}`, { body, ...auth(admin) }));
  assert.deepEqual([rule.category, rule.basis_points, rule.minimums], [category, basisPoints, minimums ?? {}]);
}

// Buyer, approved seller, and a deal between them at `price` (a request in `category`).
async function people(name = 'p') {
  return { buyer: await register(s, `${name}-buyer`), seller: await makeSeller(s, admin, `${name}-seller`) };
}
async function newDeal({ buyer, seller }, { price = 1_500_000, category = 'phones', process } = {}) {
  const r = await postRequest(s, buyer, { category, budget_min: Math.floor(price / 2), budget_max: price * 2, ...(process ? { process } : {}) });
  const o = await makeOffer(s, seller, r.id, { price });
  const d = assertSuccess(await s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(buyer)));
  assert.equal(d.amount, price);
  return d;
}

// A sandbox event as the sandbox gateway sends it, and its delivery signed as it signs.
function sandboxEvent(p, { type = 'payment.succeeded', data = {}, id = `evt_${crypto.randomBytes(10).toString('hex')}` } = {}) {
  return {
    id, type, created: Math.floor(Date.now() / 1000),
    data: { payment_id: p.id, provider_ref: p.provider_ref, amount: p.amount, currency: p.currency, recipient: 'souq', ...data },
  };
}
function sandboxSignature(body, { t = Math.floor(Date.now() / 1000), secret = SANDBOX_SECRET } = {}) {
  return `t=${t},v1=${crypto.createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}
function deliverSandbox(event, opts = {}) {
  const body = typeof event === 'string' ? event : JSON.stringify(event);
  return s.post('/api/v1/payments/webhooks/sandbox', body,
    { headers: { 'Souq-Signature': opts.signature ?? sandboxSignature(body, opts) } });
}
function deliverStripe(event, { secret = STRIPE_WEBHOOK_SECRET } = {}) {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  return s.post('/api/v1/payments/webhooks/stripe', payload, { headers: { 'Stripe-Signature': header } });
}

async function waitPayment(id, status, who = admin) {
  let seen;
  await eventually(`payment ${id} becoming ${status}`, async () => {
    seen = await payment(id, who);
    return seen.status === status || seen.status;
  });
  return seen;
}
async function waitState(id, who, state) {
  let seen;
  await eventually(`transaction ${id} reaching ${state}`, async () => {
    seen = await deal(id, who);
    return seen.state === state || seen.state;
  });
  return seen;
}

// A pending sandbox top-up (its hosted page not completed).
async function pendingTopup(who, amount) {
  const p = assertSuccess(await pay(who, topupBody(amount)), 201);
  assert.equal(p.status, 'pending');
  return p;
}

// ---------------------------------------------------------------- 1. top-up through the sandbox

test('a top-up through the sandbox: pending, its hosted page, the signed webhook, then the wallet is credited', async () => {
  const buyer = await register(s, 'topper');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/wallets', auth(buyer))), [], 'no wallet before money arrives');
  const p = assertSuccess(await pay(buyer, topupBody(250_000)), 201);
  assert.match(p.id, PAY_ID);
  assert.deepEqual([p.status, p.purpose, p.amount, p.currency, p.provider, p.transaction_id, p.succeeded_at],
    ['pending', 'topup', 250_000, 'EGP', 'sandbox', null, null]);
  assert.equal(p.provider_ref, `sbx_${p.id}`);
  assert.deepEqual(p.next_action, { type: 'redirect', url: `${s.url}/sandbox/checkout/${p.id}` });

  // the hosted page: an HTML page naming the amount, with a form to pay
  const page = await s.get(`/sandbox/checkout/${p.id}`);
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /^text\/html/);
  assert.ok(page.text.includes(p.id) && page.text.includes('<form'), page.text);
  assertError(await s.get('/sandbox/checkout/pay_00000000000000000000000000'), 404, 'not_found');

  // nothing moves before the gateway says so
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  const done = assertSuccess(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'succeeded' }), 202);
  assert.deepEqual([done.payment_id, done.outcome], [p.id, 'succeeded']);
  const paid = await waitPayment(p.id, 'succeeded', buyer);
  assert.equal(paid.next_action, null);
  assert.ok(paid.succeeded_at);
  assert.deepEqual(await wallet(buyer), { balance: 250_000, held: 0, available: 250_000, incoming: 0 });

  const history = assertSuccess(await s.get('/api/v1/wallets/EGP/transactions', auth(buyer)));
  assert.equal(history.length, 1);
  assert.deepEqual([history[0].direction, history[0].amount, history[0].currency, history[0].code, history[0].reference, history[0].kind],
    ['in', 250_000, 'EGP', 'topup', p.id, 'posted']);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/wallets/USD/transactions', auth(buyer))), []);
  assertError(await s.get('/api/v1/wallets/XYZ/transactions', auth(buyer)), 422, 'validation_failed');

  // the hosted page is done with: completing again is refused, and nothing more moves
  assertError(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'succeeded' }), 409, 'payment_not_pending');
  // someone else's payment is not theirs to see
  assertError(await s.get(`/api/v1/payments/${p.id}`, auth(await register(s, 'nosy'))), 404, 'not_found');
  assertError(await s.get('/api/v1/wallets'), 401, 'unauthenticated');
  await sleep(300);
  assert.equal((await wallet(buyer)).balance, 250_000);
  await ledgerVerifies();
});

test('a wallet\'s entries come newest first, a page at a time', async () => {
  const buyer = await register(s, 'pages');
  const made = [];
  for (const amount of [1_000, 2_000, 3_000]) made.push((await fundWallet(s, buyer, amount)).id);
  const seen = [];
  let cursor = null;
  for (let pages = 0; pages < 5; pages++) {
    const res = await s.get(`/api/v1/wallets/EGP/transactions?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, auth(buyer));
    const items = assertSuccess(res);
    assert.equal(items.length, 1, res.text);
    seen.push(items[0]);
    cursor = res.json.meta.next_cursor;
    if (!cursor) break;
  }
  assert.deepEqual(seen.map((t) => [t.reference, t.amount]), [[made[2], 3_000], [made[1], 2_000], [made[0], 1_000]]);
  assert.equal((await wallet(buyer)).balance, 6_000);
});

test('a declined sandbox payment fails and moves nothing', async () => {
  const buyer = await register(s, 'declined');
  const p = await pendingTopup(buyer, 90_000);
  assertSuccess(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'failed' }), 202);
  const failed = await waitPayment(p.id, 'failed', buyer);
  assert.deepEqual(failed.failure, { code: 'card_declined', message: 'The sandbox card was declined.' });
  assert.equal(failed.succeeded_at, null);
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assertError(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'maybe' }), 422, 'validation_failed');
  assertError(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 5 }), 422, 'validation_failed');
  assertError(await s.post(`/sandbox/checkout/${p.id}/complete`, '[1]'), 400, 'invalid_body');
});

// ---------------------------------------------------------------- 2. the Idempotency-Key layer

test('Idempotency-Key: required, replayed with the same answer, refused with another body', async () => {
  const buyer = await register(s, 'idem');
  assertError(await s.post('/api/v1/payments', topupBody(10_000), auth(buyer)), 400, 'idempotency_key_required');
  assertError(await pay(buyer, topupBody(10_000), 'k'.repeat(256)), 400, 'invalid_idempotency_key');
  assert.deepEqual(await paymentsOf(buyer), [], 'refused requests create nothing');

  const key = crypto.randomUUID();
  const first = await pay(buyer, topupBody(10_000), key);
  const made = assertSuccess(first, 201);
  assert.equal(first.headers['idempotent-replayed'], undefined);
  const again = await pay(buyer, topupBody(10_000), key);
  // (assertSuccess is not used on replays: the stored envelope keeps the first
  // request's meta.request_id while X-Request-Id names this one — reported.)
  assert.equal(again.status, 201, again.text);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.deepEqual(again.json.data, made, 'the stored answer, as it was');
  assert.equal(again.json.status, 'success');
  assert.deepEqual((await paymentsOf(buyer)).map((p) => p.id), [made.id], 'still exactly one payment');

  assertError(await pay(buyer, topupBody(10_001), key), 422, 'idempotency_key_reused');
  assertError(await pay(buyer, { ...topupBody(10_000), return_url: 'https://shop.example/back' }, key), 422, 'idempotency_key_reused');
  // a key names one request: the same key on another route is refused too
  assertError(await s.post('/api/v1/payouts', { amount: 1, currency: 'EGP', reference: 'r-1', destination: 'EG00' }, withKey(buyer, key)),
    422, 'idempotency_key_reused');
  // the key is the caller's: another user's same key is another request
  const other = await register(s, 'idem-other');
  const theirs = await pay(other, topupBody(10_000), key);
  assert.equal(theirs.status, 201);
  assert.equal(theirs.headers['idempotent-replayed'], undefined);
  assert.notEqual(theirs.json.data.id, made.id);
  // a failed request keeps nothing: the same key works once the request is right
  const failKey = crypto.randomUUID();
  assertError(await pay(buyer, topupBody(10_000, 'paypal'), failKey), 422, 'unknown_provider');
  const retried = await pay(buyer, topupBody(10_000, 'paypal'), failKey);
  assertError(retried, 422, 'unknown_provider');
  assert.equal(retried.headers['idempotent-replayed'], undefined, 'errors are not replayed');
  assert.equal((await paymentsOf(buyer)).length, 1);
});

test('Idempotency-Key: ten concurrent requests with one key make exactly one payment', async () => {
  const buyer = await register(s, 'racer');
  const key = crypto.randomUUID();
  const results = await Promise.all(Array.from({ length: 10 }, () => pay(buyer, topupBody(33_000), key)));
  const fresh = results.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined);
  assert.equal(fresh.length, 1, `exactly one ran: ${results.map((r) => `${r.status}/${r.headers['idempotent-replayed'] ?? '-'}`).join(',')}`);
  const id = assertSuccess(fresh[0], 201).id;
  for (const r of results) {
    if (r === fresh[0]) continue;
    if (r.status === 409) assertError(r, 409, 'idempotency_key_in_flight');
    else {
      assert.equal(r.status, 201, r.text);
      assert.equal(r.headers['idempotent-replayed'], 'true');
      assert.equal(r.json.data.id, id, 'a replay names the same payment');
    }
  }
  const mine = await paymentsOf(buyer);
  assert.deepEqual(mine.map((p) => p.id), [id], 'one payment made');
  // and afterwards the key replays
  const later = await pay(buyer, topupBody(33_000), key);
  assert.equal(later.headers['idempotent-replayed'], 'true');
  assert.equal(later.json.data.id, id);
});

// ---------------------------------------------------------------- 3. a negotiated deal paid from the wallet

test('a negotiated deal paid from the wallet: held in escrow, released to the seller minus a percentage commission', async () => {
  const { buyer, seller } = await people('wal');
  const outsider = await register(s, 'wal-outsider');
  const category = unique('cameras');
  await setCommission(category, 1000); // 10 %
  await fundWallet(s, buyer, 1_500_000);
  const d = await newDeal({ buyer, seller }, { price: 1_500_000, category });
  const big = await newDeal({ buyer, seller }, { price: 1_800_000, category });
  assert.deepEqual([d.process.name, d.process.version, d.state], ['negotiation', 2, 'accepted']);
  assertError(await take(d.id, 'start', seller), 409, 'invalid_transition'); // no work before payment
  assertError(await take(d.id, 'pay', buyer), 403, 'forbidden'); // only the system takes the payment step

  // short of money: 409, and nothing changes
  const before = await wallet(buyer);
  const verifyBefore = await ledgerVerifies();
  assertError(await pay(buyer, { transaction_id: big.id, provider: 'wallet' }), 409, 'insufficient_funds');
  assert.equal((await deal(big.id, buyer)).state, 'accepted');
  assert.deepEqual(await wallet(buyer), before);
  assert.ok(!(await paymentsOf(buyer)).some((p) => p.transaction_id === big.id), 'no payment row is left behind');
  assert.equal((await ledgerVerifies()).transfers, verifyBefore.transfers, 'no transfer was made');

  // only the buyer pays, and only a deal that waits for payment
  assertError(await pay(seller, { transaction_id: d.id, provider: 'wallet' }), 403, 'not_the_buyer');
  assertError(await pay(outsider, { transaction_id: d.id, provider: 'wallet' }), 404, 'not_found');
  assertError(await pay(buyer, { transaction_id: d.id, provider: 'wallet', topup: { amount: 1, currency: 'EGP' } }), 422, 'validation_failed');
  assertError(await pay(buyer, topupBody(5_000, 'wallet')), 422, 'invalid_provider');

  const p = await payFromWallet(buyer, d.id);
  assert.deepEqual([p.status, p.purpose, p.transaction_id, p.amount, p.currency, p.provider],
    ['succeeded', 'transaction', d.id, 1_500_000, 'EGP', 'wallet']);
  const paid = await deal(d.id, buyer);
  assert.equal(paid.state, 'paid');
  assert.deepEqual(paid.history.at(-1).transition, 'pay');
  assert.deepEqual(paid.history.at(-1).actor.type, 'system');
  assert.deepEqual(await wallet(buyer), { balance: 1_500_000, held: 1_500_000, available: 0, incoming: 0 });
  assertError(await pay(buyer, { transaction_id: d.id, provider: 'wallet' }), 409, 'not_payable');
  const history = assertSuccess(await s.get('/api/v1/wallets/EGP/transactions', auth(buyer)));
  assert.deepEqual([history[0].kind, history[0].effect, history[0].direction, history[0].amount, history[0].code, history[0].reference],
    ['pending', 'held', 'out', 1_500_000, 'escrow_hold', d.id]);

  const revenueBefore = await revenue();
  assertSuccess(await take(d.id, 'start', seller));
  assertSuccess(await take(d.id, 'deliver', seller));
  assert.deepEqual(await wallet(seller), { balance: 0, held: 0, available: 0, incoming: 0 }, 'nothing for the seller before the buyer confirms');
  const done = assertSuccess(await take(d.id, 'confirm', buyer));
  assert.equal(done.state, 'completed');
  assert.deepEqual(await wallet(seller), { balance: 1_350_000, held: 0, available: 1_350_000, incoming: 0 }, '1 500 000 − 10 %');
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assert.equal(await revenue() - revenueBefore, 150_000);
  const sellerHistory = assertSuccess(await s.get('/api/v1/wallets/EGP/transactions', auth(seller)));
  assert.deepEqual(sellerHistory.map((t) => [t.direction, t.amount, t.code]), [['in', 1_350_000, 'escrow_release']]);

  // released once: a second confirm is refused by the process, and the ledger does not move
  const settled = { buyer: await wallet(buyer), seller: await wallet(seller), transfers: (await ledgerVerifies()).transfers };
  assertError(await take(d.id, 'confirm', buyer), 409, 'invalid_transition');
  assertError(await take(d.id, 'resolve_complete', admin, { reason: 'release it again please' }), 409, 'invalid_transition');
  assertError(await take(d.id, 'refund', seller, { reason: 'refund after release' }), 409, 'invalid_transition');
  assert.deepEqual(await wallet(buyer), settled.buyer);
  assert.deepEqual(await wallet(seller), settled.seller);
  assert.equal((await ledgerVerifies()).transfers, settled.transfers);
  const moves = await transfersAbout(d.id);
  assert.deepEqual(moves.map((t) => t.code).sort(), ['commission', 'escrow_hold', 'escrow_release', 'escrow_settle'], 'hold, post, release, commission');
  assert.equal(new Set(moves.map((t) => t.id)).size, 4);
});

test('racing payments: ten pays of one deal hold it once; pays of three deals with money for one hold one', async () => {
  const { buyer, seller } = await people('race');
  await fundWallet(s, buyer, 2_500_000);
  const d = await newDeal({ buyer, seller }, { price: 1_000_000 });
  const same = await Promise.all(Array.from({ length: 10 }, () => pay(buyer, { transaction_id: d.id, provider: 'wallet' })));
  assert.equal(same.filter((r) => r.status === 201).length, 1, same.map((r) => r.status).join(','));
  for (const r of same.filter((x) => x.status !== 201)) {
    assert.equal(r.status, 409, r.text);
    assert.ok(['not_payable', 'invalid_transition'].includes(r.json.error.code), r.text);
  }
  assert.equal((await deal(d.id, buyer)).state, 'paid');
  assert.deepEqual(await wallet(buyer), { balance: 2_500_000, held: 1_000_000, available: 1_500_000, incoming: 0 });
  assert.equal((await paymentsOf(buyer)).filter((p) => p.transaction_id === d.id).length, 1);

  // 1 500 000 left: of three deals of 1 000 000 paid at once, one is held
  const deals = [];
  for (let i = 0; i < 3; i++) deals.push(await newDeal({ buyer, seller }, { price: 1_000_000 }));
  const many = await Promise.all(deals.map((x) => pay(buyer, { transaction_id: x.id, provider: 'wallet' })));
  assert.equal(many.filter((r) => r.status === 201).length, 1, many.map((r) => r.status).join(','));
  for (const r of many.filter((x) => x.status !== 201)) assertError(r, 409, 'insufficient_funds');
  const states = await Promise.all(deals.map(async (x) => (await deal(x.id, buyer)).state));
  assert.deepEqual(states.sort(), ['accepted', 'accepted', 'paid']);
  assert.deepEqual(await wallet(buyer), { balance: 2_500_000, held: 2_000_000, available: 500_000, incoming: 0 });
  await ledgerVerifies();
});

test('a refunded deal: the hold is voided back to the buyer, and a release after it is refused', async () => {
  const { buyer, seller } = await people('ref');
  const category = unique('refunds');
  await setCommission(category, 1000);
  await fundWallet(s, buyer, 1_200_000);
  const d = await newDeal({ buyer, seller }, { price: 1_200_000, category });
  await payFromWallet(buyer, d.id);
  assertSuccess(await take(d.id, 'start', seller));
  assertError(await take(d.id, 'refund', seller), 422, 'validation_failed'); // a refund names its reason
  assert.equal(assertSuccess(await take(d.id, 'refund', seller, { reason: 'out of stock after all' })).state, 'refunded');
  assert.deepEqual(await wallet(buyer), { balance: 1_200_000, held: 0, available: 1_200_000, incoming: 0 });
  const [voided, held] = assertSuccess(await s.get('/api/v1/wallets/EGP/transactions', auth(buyer)));
  assert.deepEqual([held.kind, held.effect, held.direction, held.amount], ['pending', 'held', 'out', 1_200_000]);
  assert.deepEqual([voided.kind, voided.effect, voided.direction, voided.amount, voided.code, voided.reference],
    ['void', 'released', 'in', 1_200_000, 'escrow_refund', d.id], 'the hold comes back in');
  const settled = { buyer: await wallet(buyer), seller: await wallet(seller), transfers: (await ledgerVerifies()).transfers };
  assertError(await take(d.id, 'deliver', seller), 409, 'invalid_transition');
  assertError(await take(d.id, 'confirm', buyer), 409, 'invalid_transition');
  assertError(await take(d.id, 'resolve_complete', admin, { reason: 'release after refund' }), 409, 'invalid_transition');
  assertError(await take(d.id, 'refund', seller, { reason: 'refund it twice' }), 409, 'invalid_transition');
  assert.deepEqual(await wallet(buyer), settled.buyer);
  assert.deepEqual(await wallet(seller), settled.seller);
  assert.equal((await ledgerVerifies()).transfers, settled.transfers);
  // the money is the buyer's again: it pays the next deal
  const next = await newDeal({ buyer, seller }, { price: 1_000_000, category });
  await payFromWallet(buyer, next.id);
  assert.deepEqual(await wallet(buyer), { balance: 1_200_000, held: 1_000_000, available: 200_000, incoming: 0 });
});

test('a step that moves money, retried with its Idempotency-Key, answers as the first did', async () => {
  const { buyer, seller } = await people('stepkey');
  const d = await newDeal({ buyer, seller }, { price: 1_000_000 });
  await fundWallet(s, buyer, 1_000_000);
  await payFromWallet(buyer, d.id);
  for (const step of ['start', 'deliver']) assertSuccess(await take(d.id, step, seller));
  const key = crypto.randomUUID();
  const confirm = () => s.post(`/api/v1/transactions/${d.id}/transitions/confirm`, undefined, withKey(buyer, key));
  const done = assertSuccess(await confirm());
  assert.equal(done.state, 'completed');
  const retried = await confirm();
  assert.equal(retried.status, 200, retried.text);
  assert.equal(retried.headers['idempotent-replayed'], 'true');
  assert.deepEqual(retried.json.data, done);
  assertError(await s.post(`/api/v1/transactions/${d.id}/transitions/confirm`, { reason: 'another body' }, withKey(buyer, key)),
    422, 'idempotency_key_reused');
  assert.equal((await wallet(seller)).balance, 1_000_000, 'released once');
  await ledgerVerifies();
});

test('commission: a category rule wins over *, and the minimum applies when the percentage is less', async () => {
  const { buyer, seller } = await people('com');
  const minCat = unique('books');
  const pctCat = unique('tablets');
  await setCommission('*', 100, { EGP: 50_000 });   // 1 %, at least 500.00 EGP
  await setCommission(pctCat, 250, { EGP: 1_000 }); // 2.5 %, at least 10.00 EGP
  try {
    const rules = assertSuccess(await s.get('/api/v1/admin/commission-rules', auth(admin)));
    assert.deepEqual(rules.find((r) => r.category === '*').minimums, { EGP: 50_000 });
    assertError(await s.get('/api/v1/admin/commission-rules', auth(buyer)), 403, 'forbidden');
    assertError(await s.request('PUT', '/api/v1/admin/commission-rules/x', { body: { basis_points: 5 }, ...auth(seller) }), 403, 'forbidden');
    assertError(await s.request('PUT', '/api/v1/admin/commission-rules/x', { body: { basis_points: 10_001 }, ...auth(admin) }), 422, 'validation_failed');
    assertError(await s.request('PUT', '/api/v1/admin/commission-rules/x', { body: { basis_points: 10, minimums: { XYZ: 5 } }, ...auth(admin) }), 422, 'validation_failed');
    assertError(await s.request('PUT', '/api/v1/admin/commission-rules/x', { body: { basis_points: 10, minimums: { EGP: 1.5 } }, ...auth(admin) }), 422, 'validation_failed');

    await fundWallet(s, buyer, 2_000_000);
    const a = await newDeal({ buyer, seller }, { price: 1_000_000, category: minCat }); // * : 1 % = 10 000 < 50 000
    const b = await newDeal({ buyer, seller }, { price: 1_000_000, category: pctCat }); // 2.5 % = 25 000 > 1 000
    for (const d of [a, b]) {
      await payFromWallet(buyer, d.id);
      for (const step of ['start', 'deliver']) assertSuccess(await take(d.id, step, seller));
    }
    const revenueBefore = await revenue();
    assertSuccess(await take(a.id, 'confirm', buyer));
    assert.equal((await wallet(seller)).balance, 950_000, 'the minimum: 1 000 000 − 50 000');
    assertSuccess(await take(b.id, 'confirm', buyer));
    assert.equal((await wallet(seller)).balance, 950_000 + 975_000, 'the percentage: 1 000 000 − 25 000');
    assert.equal(await revenue() - revenueBefore, 75_000);
    await ledgerVerifies();
  } finally {
    assertSuccess(await s.request('DELETE', '/api/v1/admin/commission-rules/*', auth(admin)));
  }
  assertError(await s.request('DELETE', '/api/v1/admin/commission-rules/*', auth(admin)), 404, 'not_found');
});

// ---------------------------------------------------------------- 4. an escrowed purchase funded by the sandbox's webhook

test('an escrowed purchase is funded through the sandbox webhook, delivered and released', async () => {
  const { buyer, seller } = await people('esc');
  const category = unique('escrow');
  await setCommission(category, 500); // 5 %
  const d = await newDeal({ buyer, seller }, { price: 1_200_000, category, process: 'escrow_purchase' });
  assert.deepEqual([d.process.name, d.process.version, d.state], ['escrow_purchase', 2, 'awaiting_payment']);

  const p = assertSuccess(await pay(buyer, { transaction_id: d.id, provider: 'sandbox', return_url: 'https://shop.example/done' }), 201);
  assert.deepEqual([p.status, p.purpose, p.transaction_id, p.amount], ['pending', 'transaction', d.id, 1_200_000]);
  assert.equal(p.next_action.url, `${s.url}/sandbox/checkout/${p.id}`);
  assert.equal((await deal(d.id, buyer)).state, 'awaiting_payment', 'not funded before the gateway says so');

  // a browser's form post comes back to the return URL
  const browser = await s.request('POST', `/sandbox/checkout/${p.id}/complete`,
    { body: 'outcome=succeeded', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(browser.status, 303, browser.text);
  assert.equal(browser.headers.location, 'https://shop.example/done');

  const funded = await waitState(d.id, buyer, 'funded');
  assert.deepEqual([funded.history.at(-1).transition, funded.history.at(-1).actor.type], ['fund', 'system']);
  assert.equal((await payment(p.id, buyer)).status, 'succeeded');
  assert.deepEqual(await wallet(buyer), { balance: 1_200_000, held: 1_200_000, available: 0, incoming: 0 },
    'the gateway\'s money went through the wallet into escrow');
  assertError(await pay(buyer, { transaction_id: d.id, provider: 'sandbox' }), 409, 'not_payable');

  assertSuccess(await take(d.id, 'deliver', seller));
  assert.equal(assertSuccess(await take(d.id, 'release', buyer)).state, 'completed');
  assert.deepEqual(await wallet(seller), { balance: 1_140_000, held: 0, available: 1_140_000, incoming: 0 });
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assertError(await take(d.id, 'release', buyer), 409, 'invalid_transition');
  await ledgerVerifies();
});

test('an escrowed purchase the gateway declines stays unfunded; a payment after withdrawal stays in the wallet', async () => {
  const { buyer, seller } = await people('esc2');
  const d = await newDeal({ buyer, seller }, { price: 1_100_000, process: 'escrow_purchase' });
  const declined = assertSuccess(await pay(buyer, { transaction_id: d.id, provider: 'sandbox' }), 201);
  assertSuccess(await s.post(`/sandbox/checkout/${declined.id}/complete`, { outcome: 'failed' }), 202);
  await waitPayment(declined.id, 'failed', buyer);
  assert.equal((await deal(d.id, buyer)).state, 'awaiting_payment');
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });

  // paid at the gateway, but the buyer withdrew in between: the money is theirs, in the wallet
  const late = assertSuccess(await pay(buyer, { transaction_id: d.id, provider: 'sandbox' }), 201);
  assert.equal(assertSuccess(await take(d.id, 'withdraw', buyer, { reason: 'found it cheaper elsewhere' })).state, 'cancelled');
  assertSuccess(await s.post(`/sandbox/checkout/${late.id}/complete`, { outcome: 'succeeded' }), 202);
  await waitPayment(late.id, 'succeeded', buyer);
  assert.equal((await deal(d.id, buyer)).state, 'cancelled');
  assert.deepEqual(await wallet(buyer), { balance: 1_100_000, held: 0, available: 1_100_000, incoming: 0 });
  await ledgerVerifies();
});

// ---------------------------------------------------------------- 5. webhook faults

test('webhooks: a bad signature is refused and kept as rejected; stale, unknown and unhandled deliveries move nothing', async () => {
  const payer = await register(s, 'hooks');
  const p = await pendingTopup(payer, 70_000);

  // signed with another secret
  const forged = sandboxEvent(p);
  assertError(await deliverSandbox(forged, { secret: 'whsec_not_the_one' }), 400, 'invalid_signature');
  assertError(await deliverSandbox(sandboxEvent(p), { signature: 'not a signature' }), 400, 'invalid_signature');
  assertError(await s.post('/api/v1/payments/webhooks/sandbox', JSON.stringify(sandboxEvent(p))), 400, 'invalid_signature');
  // a body changed after signing
  const body = JSON.stringify(sandboxEvent(p));
  const tampered = body.replace('"amount":70000', '"amount":70001');
  assert.notEqual(tampered, body);
  assertError(await deliverSandbox(tampered, { signature: sandboxSignature(body) }), 400, 'invalid_signature');
  const [kept] = await deliveriesWith(forged.id);
  assert.deepEqual([kept.status, kept.reason, kept.provider], ['rejected', 'invalid_signature', 'sandbox']);
  assert.equal(kept.body, JSON.stringify(forged), 'the raw body is kept as evidence');
  assert.ok(kept.headers['souq-signature'], 'and the headers it came with');
  assert.ok((await adminList('/api/v1/admin/payments/webhooks', '&status=rejected')).some((d) => d.id === kept.id));

  // a valid signature whose timestamp is too old (or too far ahead)
  const stale = sandboxEvent(p);
  const staleRes = await deliverSandbox(stale, { t: Math.floor(Date.now() / 1000) - 301 });
  assertError(staleRes, 400, 'stale_signature');
  assertError(await deliverSandbox(sandboxEvent(p), { t: Math.floor(Date.now() / 1000) + 600 }), 400, 'stale_signature');
  assert.equal((await deliveriesWith(stale.id))[0].reason, 'stale_signature');

  // a payment nobody made
  const ghost = sandboxEvent({ ...p, id: 'pay_00000000000000000000000000' });
  assertError(await deliverSandbox(ghost), 422, 'unknown_payment');
  assert.deepEqual((await deliveriesWith(ghost.id)).map((d) => [d.status, d.reason]), [['rejected', 'unknown_payment']]);

  // a sandbox-signed event naming another provider's payment
  const viaStripe = assertSuccess(await pay(payer, topupBody(70_000, 'stripe')), 201);
  const crossed = sandboxEvent(viaStripe);
  assertError(await deliverSandbox(crossed), 422, 'unknown_payment');
  // an event type Souq does not act on: acknowledged, left alone
  const refunded = sandboxEvent(p, { type: 'payment.refunded' });
  const ignored = assertSuccess(await deliverSandbox(refunded));
  assert.deepEqual([ignored.status, ignored.event_id], ['ignored', refunded.id]);

  // an unknown provider, and a body that is no event
  assertError(await s.post('/api/v1/payments/webhooks/paypal', '{}', { headers: { 'Souq-Signature': 't=1,v1=00' } }), 404, 'unknown_provider');
  assertError(await deliverSandbox('[1,2,3]'), 400, 'invalid_event');

  await sleep(500);
  assert.equal((await payment(p.id, payer)).status, 'pending');
  assert.equal((await payment(viaStripe.id, payer)).status, 'pending');
  assert.deepEqual(await wallet(payer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assert.deepEqual(await transfersAbout(p.id), []);
  assert.deepEqual(await transfersAbout(viaStripe.id), []);
  await ledgerVerifies();
});

test('webhooks: a gateway that misreports the amount, currency or recipient gets the payment flagged, not credited', async () => {
  const payer = await register(s, 'flagged');
  const cases = [[{ amount: 59_999 }, /amount 59999/], [{ currency: 'USD' }, /currency USD/], [{ recipient: 'someone-else' }, /recipient someone-else/]];
  for (const [override, why] of cases) {
    const p = await pendingTopup(payer, 60_000);
    assertSuccess(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'succeeded', ...override }), 202);
    const flagged = await waitPayment(p.id, 'flagged', payer);
    assert.match(flagged.flag_reason, why);
    assert.equal(flagged.succeeded_at, null);
    assert.deepEqual(await transfersAbout(p.id), [], `nothing moved for ${JSON.stringify(override)}`);
    let delivery;
    await eventually('the delivery marked flagged', async () => {
      [delivery] = await deliveriesWith(p.id);
      return delivery?.status === 'flagged' || delivery?.status;
    });
    const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${p.id}`, auth(admin)));
    assert.deepEqual(log.map((e) => [e.action, e.target_type]), [['payment.flag', 'payment']]);
    // a correct event afterwards does not unflag it: a person looks first
    assertSuccess(await deliverSandbox(sandboxEvent(p)));
    await sleep(300);
    assert.equal((await payment(p.id, payer)).status, 'flagged');
  }
  assert.deepEqual(await wallet(payer), { balance: 0, held: 0, available: 0, incoming: 0 });

  // paying for an escrowed purchase: flagged, and the purchase is not funded
  const { buyer, seller } = await people('flag-deal');
  const d = await newDeal({ buyer, seller }, { price: 1_300_000, process: 'escrow_purchase' });
  const p = assertSuccess(await pay(buyer, { transaction_id: d.id, provider: 'sandbox' }), 201);
  assertSuccess(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'succeeded', amount: 1_000 }), 202);
  assert.match((await waitPayment(p.id, 'flagged', buyer)).flag_reason, /amount 1000/);
  await sleep(300);
  assert.equal((await deal(d.id, buyer)).state, 'awaiting_payment');
  assert.deepEqual(await wallet(buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assert.deepEqual(await transfersAbout(d.id), []);
  await ledgerVerifies();

  // An admin reviews it: accepted, the purchase is funded as if the event had matched.
  const review = (id, body, who = admin) => s.post(`/api/v1/admin/payments/${id}/review`, body, auth(who));
  assertError(await review(p.id, { decision: 'accept', reason: 'checked' }, buyer), 403, 'forbidden');
  assertError(await review(p.id, { decision: 'maybe', reason: 'checked' }), 422, 'validation_failed');
  assertError(await review(p.id, { decision: 'accept' }), 422, 'validation_failed');
  const accepted = assertSuccess(await review(p.id, { decision: 'accept', reason: 'the gateway dashboard shows the full amount' }));
  assert.deepEqual([accepted.status, accepted.payer_id], ['succeeded', buyer.id]);
  assert.equal((await deal(d.id, buyer)).state, 'funded');
  assert.deepEqual(await wallet(buyer), { balance: 1_300_000, held: 1_300_000, available: 0, incoming: 0 });
  assertError(await review(p.id, { decision: 'reject', reason: 'again' }), 409, 'payment_not_flagged');
  // Rejected: it fails, nothing moves.
  const q = await pendingTopup(buyer, 70_000);
  assertSuccess(await s.post(`/sandbox/checkout/${q.id}/complete`, { outcome: 'succeeded', amount: 7 }), 202);
  await waitPayment(q.id, 'flagged', buyer);
  const rejected = assertSuccess(await review(q.id, { decision: 'reject', reason: 'the gateway took 7, refunded there' }));
  assert.deepEqual([rejected.status, rejected.failure.code], ['failed', 'rejected_in_review']);
  assert.deepEqual(await transfersAbout(q.id), []);
  const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${q.id}`, auth(admin)));
  assert.deepEqual(log.map((e) => [e.action, e.details.decision ?? null]), [['payment.review', 'reject'], ['payment.flag', null]]);
  await ledgerVerifies();
});

test('webhooks: ten concurrent deliveries of one event move the money once; replays move nothing more', async () => {
  const payer = await register(s, 'dupes');
  const p = await pendingTopup(payer, 45_000);
  const event = sandboxEvent(p);
  const body = JSON.stringify(event);
  const signature = sandboxSignature(body);
  const results = await Promise.all(Array.from({ length: 10 }, () => deliverSandbox(body, { signature })));
  const statuses = results.map((r) => assertSuccess(r).status);
  assert.equal(statuses.filter((x) => x === 'accepted').length, 1, statuses.join(','));
  assert.equal(statuses.filter((x) => x === 'duplicate').length, 9, statuses.join(','));
  await waitPayment(p.id, 'succeeded', payer);
  await sleep(500);
  assert.deepEqual(await wallet(payer), { balance: 45_000, held: 0, available: 45_000, incoming: 0 });
  assert.equal((await transfersAbout(p.id)).length, 1, 'one capture');

  // the same event again later, and another event saying the same thing
  assert.equal(assertSuccess(await deliverSandbox(event)).status, 'duplicate');
  assert.equal(assertSuccess(await deliverSandbox(sandboxEvent(p))).status, 'accepted');

  const deliveries = await deliveriesWith(event.id);
  assert.equal(deliveries.length, 11, 'every delivery is kept');
  let accepted;
  await eventually('the accepted delivery processed', async () => {
    accepted = (await deliveriesWith(event.id)).find((d) => d.status !== 'duplicate');
    return accepted?.status === 'processed' || accepted?.status;
  });
  assert.equal(accepted.payment_id, p.id);

  // an admin's replay of a processed delivery: checked again, moves nothing more
  const replayed = assertSuccess(await s.post(`/api/v1/admin/payments/webhooks/${accepted.id}/replay`, undefined, auth(admin)));
  assert.deepEqual([replayed.status, replayed.replays], ['processed', 1]);
  assertError(await s.post(`/api/v1/admin/payments/webhooks/${accepted.id}/replay`, undefined, auth(payer)), 403, 'forbidden');
  assertError(await s.post('/api/v1/admin/payments/webhooks/whd_00000000000000000000000000/replay', undefined, auth(admin)), 404, 'not_found');
  await sleep(300);
  assert.deepEqual(await wallet(payer), { balance: 45_000, held: 0, available: 45_000, incoming: 0 });
  assert.equal((await transfersAbout(p.id)).length, 1, 'still one capture');

  // a rejected delivery replayed stays rejected
  const forged = sandboxEvent(p);
  assertError(await deliverSandbox(forged, { secret: 'whsec_wrong' }), 400, 'invalid_signature');
  const [bad] = await deliveriesWith(forged.id);
  assertError(await s.post(`/api/v1/admin/payments/webhooks/${bad.id}/replay`, undefined, auth(admin)), 400, 'invalid_signature');
  const [still] = await deliveriesWith(forged.id);
  assert.deepEqual([still.status, still.reason, still.replays], ['rejected', 'invalid_signature', 1]);
  const audit = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${accepted.id}`, auth(admin)));
  assert.deepEqual(audit.map((e) => e.action), ['payment_webhook.replay']);
  assert.equal((await wallet(payer)).balance, 45_000);
  await ledgerVerifies();
});

// ---------------------------------------------------------------- 6. Stripe (against a local fake of its API)

function stripeEvent(type, intent, over = {}) {
  return {
    id: `evt_${crypto.randomBytes(12).toString('hex')}`, object: 'event', api_version: '2024-06-20',
    created: Math.floor(Date.now() / 1000), livemode: false, pending_webhooks: 1, type,
    data: { object: { ...intent, ...over } },
  };
}

test('Stripe: a PaymentIntent made through the API, confirmed by a signed payment_intent.succeeded', async () => {
  const payer = await register(s, 'stripe');
  const before = fakeStripe.requestsTo('/v1/payment_intents').length;
  const p = assertSuccess(await pay(payer, topupBody(250_000, 'stripe')), 201);
  const calls = fakeStripe.requestsTo('/v1/payment_intents');
  assert.equal(calls.length, before + 1);
  const call = calls.at(-1);
  assert.deepEqual([call.authorization, call.idempotencyKey, call.status], [`Bearer ${STRIPE_KEY}`, `souq-${p.id}`, 200]);
  assert.match(call.contentType, /^application\/x-www-form-urlencoded/);
  assert.deepEqual([call.form.amount, call.form.currency, call.form.metadata], ['250000', 'egp', { souq_payment_id: p.id, souq_recipient: 'souq' }]);
  const intent = fakeStripe.intents.get(call.body.id);
  assert.deepEqual([p.status, p.provider, p.provider_ref], ['pending', 'stripe', intent.id]);
  assert.deepEqual(p.next_action, { type: 'stripe_client_secret', client_secret: intent.client_secret });

  assertError(await s.post(`/sandbox/checkout/${p.id}/complete`, { outcome: 'succeeded' }), 404, 'not_found');
  // signed with another secret: refused
  assertError(await deliverStripe(stripeEvent('payment_intent.succeeded', intent, { status: 'succeeded', amount_received: 250_000 }),
    { secret: 'whsec_other' }), 400, 'invalid_signature');
  const ok = stripeEvent('payment_intent.succeeded', intent, { status: 'succeeded', amount_received: 250_000 });
  assert.equal(assertSuccess(await deliverStripe(ok)).status, 'accepted');
  await waitPayment(p.id, 'succeeded', payer);
  assert.deepEqual(await wallet(payer), { balance: 250_000, held: 0, available: 250_000, incoming: 0 });
  assert.equal(assertSuccess(await deliverStripe(ok)).status, 'duplicate', 'Stripe retries the same event');

  // events about intents Souq did not make, and types it does not act on, are acknowledged
  const foreign = stripeEvent('payment_intent.succeeded', { id: 'pi_someone_elses', object: 'payment_intent', amount: 5, currency: 'egp', metadata: {} });
  assert.equal(assertSuccess(await deliverStripe(foreign)).status, 'ignored');
  assert.equal(assertSuccess(await deliverStripe(stripeEvent('charge.refunded', intent))).status, 'ignored');
  await sleep(300);
  assert.equal((await wallet(payer)).balance, 250_000);
  await ledgerVerifies();
});

test('Stripe: payment_intent.payment_failed fails the payment; a Stripe that is down is a 502 and the key may be retried', async () => {
  const payer = await register(s, 'stripe-fail');
  const p = assertSuccess(await pay(payer, topupBody(80_000, 'stripe')), 201);
  const intent = fakeStripe.intents.get(p.provider_ref);
  assert.ok(intent, 'the intent was made at Stripe');
  const failed = stripeEvent('payment_intent.payment_failed', intent, {
    status: 'requires_payment_method',
    last_payment_error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' },
  });
  assert.equal(assertSuccess(await deliverStripe(failed)).status, 'accepted');
  const seen = await waitPayment(p.id, 'failed', payer);
  assert.deepEqual(seen.failure, { code: 'card_declined', message: 'Your card was declined.' });
  assert.deepEqual(await wallet(payer), { balance: 0, held: 0, available: 0, incoming: 0 });

  // Stripe answers 500
  fakeStripe.fail('/v1/payment_intents', { status: 500 });
  const key = crypto.randomUUID();
  try {
    const down = assertError(await pay(payer, topupBody(80_000, 'stripe'), key), 502, 'gateway_error');
    assert.match(down.message, /Stripe/);
  } finally {
    fakeStripe.fail('/v1/payment_intents', null);
  }
  // Stripe unreachable (connections dropped)
  fakeStripe.down(true);
  try {
    assertError(await pay(payer, topupBody(80_000, 'stripe'), key), 502, 'gateway_error');
  } finally {
    fakeStripe.down(false);
  }
  const gaveUp = (await paymentsOf(payer)).filter((x) => x.status === 'failed' && x.failure?.code === 'gateway_error');
  assert.equal(gaveUp.length, 2, 'each attempt is recorded as failed');
  // the failures were not stored under the key: once Stripe is back, the same key goes through
  const back = await pay(payer, topupBody(80_000, 'stripe'), key);
  assertSuccess(back, 201);
  assert.equal(back.headers['idempotent-replayed'], undefined);
  assert.equal(back.json.data.status, 'pending');
  assert.deepEqual(await wallet(payer), { balance: 0, held: 0, available: 0, incoming: 0 });
  await ledgerVerifies();
});

// ---------------------------------------------------------------- 7. payouts

const payoutBody = (over = {}) => ({
  amount: 300_000, currency: 'EGP', reference: unique('po'), destination: 'EG380019000500000000263180002', provider: 'sandbox', ...over,
});
async function waitPayout(who, id, status) {
  let seen;
  await eventually(`payout ${id} becoming ${status}`, async () => {
    seen = assertSuccess(await s.get(`/api/v1/payouts/${id}`, auth(who)));
    return seen.status === status || seen.status;
  });
  return seen;
}

test('payouts through the sandbox: paid and debited, or failed and the money back; references and balances are checked', async () => {
  const seller = await register(s, 'payout');
  await fundWallet(s, seller, 1_000_000);
  assertError(await s.post('/api/v1/payouts', payoutBody(), auth(seller)), 400, 'idempotency_key_required');

  const body = payoutBody();
  const made = assertSuccess(await s.post('/api/v1/payouts', body, withKey(seller)), 201);
  assert.deepEqual([made.status, made.amount, made.currency, made.reference, made.destination, made.provider],
    ['requested', 300_000, 'EGP', body.reference, body.destination, 'sandbox']);
  const paid = await waitPayout(seller, made.id, 'paid');
  assert.equal(paid.provider_ref, `sbx_${made.id}`);
  assert.deepEqual(await wallet(seller), { balance: 700_000, held: 0, available: 700_000, incoming: 0 });

  // the same reference: the same payout for the same fields, refused with other ones
  const same = assertSuccess(await s.post('/api/v1/payouts', body, withKey(seller)), 201);
  assert.equal(same.id, made.id);
  assertError(await s.post('/api/v1/payouts', { ...body, amount: 300_001 }, withKey(seller)), 409, 'payout_reference_reused');
  assertError(await s.post('/api/v1/payouts', { ...body, destination: 'EG000' }, withKey(seller)), 409, 'payout_reference_reused');
  assert.deepEqual(await wallet(seller), { balance: 700_000, held: 0, available: 700_000, incoming: 0 });

  // the bank refuses the destination: failed, and the hold is released
  const refused = assertSuccess(await s.post('/api/v1/payouts', payoutBody({ amount: 200_000, destination: 'fail-closed-account' }), withKey(seller)), 201);
  const failed = await waitPayout(seller, refused.id, 'failed');
  assert.ok(failed.failure_message);
  assert.deepEqual(await wallet(seller), { balance: 700_000, held: 0, available: 700_000, incoming: 0 });

  // payouts at once that together overdraw: as many as the wallet covers
  const racing = await Promise.all(Array.from({ length: 5 }, () => s.post('/api/v1/payouts', payoutBody({ amount: 300_000 }), withKey(seller))));
  const raced = racing.filter((r) => r.status === 201).map((r) => r.json.data);
  assert.equal(raced.length, 2, racing.map((r) => r.status).join(','));
  for (const r of racing.filter((x) => x.status !== 201)) assertError(r, 409, 'insufficient_funds');
  for (const x of raced) await waitPayout(seller, x.id, 'paid');
  assert.deepEqual(await wallet(seller), { balance: 100_000, held: 0, available: 100_000, incoming: 0 });

  // more than the wallet holds
  const count = assertSuccess(await s.get('/api/v1/payouts', auth(seller))).length;
  assertError(await s.post('/api/v1/payouts', payoutBody({ amount: 100_001 }), withKey(seller)), 409, 'insufficient_funds');
  assertError(await s.post('/api/v1/payouts', payoutBody({ currency: 'USD', amount: 1 }), withKey(seller)), 409, 'insufficient_funds');
  assertError(await s.post('/api/v1/payouts', payoutBody({ provider: 'wallet' }), withKey(seller)), 422, 'unknown_provider');
  assertError(await s.post('/api/v1/payouts', payoutBody({ provider: 'paypal' }), withKey(seller)), 422, 'unknown_provider');
  const list = assertSuccess(await s.get('/api/v1/payouts', auth(seller)));
  assert.equal(list.length, count, 'refused payouts leave nothing');
  assert.deepEqual(list.map((x) => x.id).sort(), [made.id, refused.id, ...raced.map((x) => x.id)].sort());
  assertError(await s.get(`/api/v1/payouts/${made.id}`, auth(await register(s, 'other'))), 404, 'not_found');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/wallets', auth(seller))).map((w) => w.currency), ['EGP'],
    'the refused USD payout opened no wallet');
  assert.deepEqual(await wallet(seller), { balance: 100_000, held: 0, available: 100_000, incoming: 0 });
  await ledgerVerifies();
});

test('payouts through Stripe: a transfer to the connected account; a destination Stripe refuses fails the payout', async () => {
  const seller = await register(s, 'stripe-payout');
  await fundWallet(s, seller, 500_000);
  const made = assertSuccess(await s.post('/api/v1/payouts', payoutBody({ amount: 100_000, provider: 'stripe', destination: 'acct_1SouqSeller' }),
    withKey(seller)), 201);
  const paid = await waitPayout(seller, made.id, 'paid');
  const call = fakeStripe.requestsTo('/v1/transfers').find((r) => r.form?.metadata?.souq_payout_id === made.id);
  assert.ok(call, 'a transfer was asked of Stripe');
  assert.deepEqual([call.authorization, call.idempotencyKey, call.form.amount, call.form.currency, call.form.destination],
    [`Bearer ${STRIPE_KEY}`, `souq-${made.id}`, '100000', 'egp', 'acct_1SouqSeller']);
  assert.equal(paid.provider_ref, call.body.id);
  assert.ok(fakeStripe.transfers.has(paid.provider_ref));
  assert.deepEqual(await wallet(seller), { balance: 400_000, held: 0, available: 400_000, incoming: 0 });

  // Stripe answers 500 once: the payout is tried again with the same Idempotency-Key, and paid once
  fakeStripe.fail('/v1/transfers', { status: 500, times: 1 });
  const retried = assertSuccess(await s.post('/api/v1/payouts', payoutBody({ amount: 50_000, provider: 'stripe', destination: 'acct_1SouqSeller' }),
    withKey(seller)), 201);
  const paidLater = await waitPayout(seller, retried.id, 'paid');
  const tries = fakeStripe.requestsTo('/v1/transfers').filter((r) => r.idempotencyKey === `souq-${retried.id}`);
  assert.deepEqual(tries.map((r) => r.status), [500, 200]);
  assert.equal(paidLater.provider_ref, tries[1].body.id);
  assert.deepEqual(await wallet(seller), { balance: 350_000, held: 0, available: 350_000, incoming: 0 });

  const refused = assertSuccess(await s.post('/api/v1/payouts', payoutBody({ amount: 150_000, provider: 'stripe', destination: 'not-an-account' }),
    withKey(seller)), 201);
  const failed = await waitPayout(seller, refused.id, 'failed');
  assert.match(failed.failure_message, /No such destination/);
  assert.deepEqual(await wallet(seller), { balance: 350_000, held: 0, available: 350_000, incoming: 0 });
  await ledgerVerifies();
});

// ---------------------------------------------------------------- 8. disputes

async function disputedDeal(name, { price = 1_000_000, category } = {}) {
  const { buyer, seller } = await people(name);
  await fundWallet(s, buyer, price);
  const d = await newDeal({ buyer, seller }, { price, category });
  await payFromWallet(buyer, d.id);
  assertSuccess(await take(d.id, 'start', seller));
  assertError(await take(d.id, 'dispute', buyer), 422, 'validation_failed'); // a dispute names its reason
  assert.equal(assertSuccess(await take(d.id, 'dispute', buyer, { reason: 'the parcel never arrived' })).state, 'disputed');
  const [dispute] = assertSuccess(await s.get(`/api/v1/transactions/${d.id}/disputes`, auth(buyer)));
  return { buyer, seller, deal: d, dispute };
}
const resolve = (id, body, who = admin) => s.post(`/api/v1/admin/disputes/${id}/resolve`, body, auth(who));

test('disputes: opened by the buyer, evidence from both sides, an admin splits the escrow', async () => {
  const category = unique('split');
  await setCommission(category, 1000);
  const { buyer, seller, deal: d, dispute } = await disputedDeal('split', { price: 1_000_000, category });
  const outsider = await register(s, 'dsp-outsider');
  assert.deepEqual([dispute.transaction_id, dispute.status, dispute.reason, dispute.opened_by, dispute.opener_role, dispute.outcome],
    [d.id, 'open', 'the parcel never arrived', buyer.id, 'buyer', null]);
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/disputes/${dispute.id}`, auth(seller))).id, dispute.id);
  assertError(await s.get(`/api/v1/disputes/${dispute.id}`, auth(outsider)), 404, 'not_found');
  assertError(await s.get(`/api/v1/transactions/${d.id}/disputes`, auth(outsider)), 404, 'not_found');
  assertError(await take(d.id, 'dispute', seller, { reason: 'a second dispute at once' }), 409, 'invalid_transition');

  const withEvidence = assertSuccess(await s.post(`/api/v1/disputes/${dispute.id}/evidence`, { text: 'Tracking shows it stuck in Giza.' }, auth(buyer)), 201);
  assert.deepEqual(withEvidence.evidence.map((e) => [e.author_id, e.text]), [[buyer.id, 'Tracking shows it stuck in Giza.']]);
  assertSuccess(await s.post(`/api/v1/disputes/${dispute.id}/evidence`, { text: 'Half of it was delivered; receipt attached.' }, auth(seller)), 201);
  assertError(await s.post(`/api/v1/disputes/${dispute.id}/evidence`, { text: 'me too' }, auth(outsider)), 404, 'not_found');
  assertError(await s.post(`/api/v1/disputes/${dispute.id}/evidence`, { text: '' }, auth(buyer)), 422, 'validation_failed');
  assert.equal(assertSuccess(await s.get(`/api/v1/disputes/${dispute.id}`, auth(buyer))).evidence.length, 2);
  assert.ok(assertSuccess(await s.get('/api/v1/admin/disputes?status=open', auth(admin))).some((x) => x.id === dispute.id));

  // only an admin resolves, with a sensible split
  assertError(await resolve(dispute.id, { outcome: 'split', buyer_amount: 400_000, reason: 'half each' }, buyer), 403, 'forbidden');
  assertError(await resolve(dispute.id, { outcome: 'split', buyer_amount: 400_000, reason: 'half each' }, seller), 403, 'forbidden');
  assertError(await resolve(dispute.id, { outcome: 'split', reason: 'no amount' }), 422, 'validation_failed');
  assertError(await resolve(dispute.id, { outcome: 'split', buyer_amount: 1_000_000, reason: 'all of it' }), 422, 'invalid_split');
  assertError(await resolve(dispute.id, { outcome: 'split', buyer_amount: 2_000_000, reason: 'more than all' }), 422, 'invalid_split');
  assertError(await resolve(dispute.id, { outcome: 'refund', buyer_amount: 5, reason: 'refund with amount' }), 422, 'validation_failed');
  assertError(await resolve(dispute.id, { outcome: 'coin_toss', reason: 'why not' }), 422, 'validation_failed');
  assert.deepEqual(await wallet(buyer), { balance: 1_000_000, held: 1_000_000, available: 0, incoming: 0 }, 'still held');

  const decision = { outcome: 'split', buyer_amount: 400_000, reason: 'only part was delivered' };
  const resolveKey = crypto.randomUUID();
  const resolved = assertSuccess(await s.post(`/api/v1/admin/disputes/${dispute.id}/resolve`, decision, withKey(admin, resolveKey)));
  const resolvedAgain = await s.post(`/api/v1/admin/disputes/${dispute.id}/resolve`, decision, withKey(admin, resolveKey));
  assert.equal(resolvedAgain.headers['idempotent-replayed'], 'true', 'a retried resolution answers as the first did');
  assert.deepEqual(resolvedAgain.json.data, resolved);
  assert.deepEqual([resolved.status, resolved.outcome, resolved.buyer_amount, resolved.resolution_reason],
    ['resolved', 'split', 400_000, 'only part was delivered']);
  const after = await deal(d.id, buyer);
  assert.deepEqual([after.state, after.history.at(-1).transition, after.history.at(-1).actor.type], ['completed', 'resolve_split', 'operator']);
  assert.deepEqual(await wallet(buyer), { balance: 400_000, held: 0, available: 400_000, incoming: 0 });
  assert.deepEqual(await wallet(seller), { balance: 540_000, held: 0, available: 540_000, incoming: 0 }, '600 000 − 10 %');
  assertError(await resolve(dispute.id, { outcome: 'release', reason: 'again' }), 409, 'dispute_resolved');
  assertError(await s.post(`/api/v1/disputes/${dispute.id}/evidence`, { text: 'too late now' }, auth(buyer)), 409, 'dispute_resolved');
  assert.deepEqual(await wallet(seller), { balance: 540_000, held: 0, available: 540_000, incoming: 0 });
  const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${dispute.id}`, auth(admin)));
  assert.deepEqual(log.map((e) => [e.action, e.reason, e.details.outcome]), [['dispute.resolve', 'only part was delivered', 'split']]);
  await ledgerVerifies();
});

test('disputes: resolved by refund (all back to the buyer) or by release (to the seller minus commission)', async () => {
  const category = unique('resolve');
  await setCommission(category, 500);
  const r = await disputedDeal('drefund', { price: 800_000, category });
  const refunded = assertSuccess(await resolve(r.dispute.id, { outcome: 'refund', reason: 'no proof of delivery' }));
  assert.equal(refunded.outcome, 'refund');
  assert.equal((await deal(r.deal.id, r.buyer)).state, 'refunded');
  assert.deepEqual(await wallet(r.buyer), { balance: 800_000, held: 0, available: 800_000, incoming: 0 });
  assert.deepEqual(await wallet(r.seller), { balance: 0, held: 0, available: 0, incoming: 0 });

  const g = await disputedDeal('drelease', { price: 800_000, category });
  const released = assertSuccess(await resolve(g.dispute.id, { outcome: 'release', reason: 'delivery confirmed by courier' }));
  assert.equal(released.outcome, 'release');
  assert.equal((await deal(g.deal.id, g.buyer)).state, 'completed');
  assert.deepEqual(await wallet(g.buyer), { balance: 0, held: 0, available: 0, incoming: 0 });
  assert.deepEqual(await wallet(g.seller), { balance: 760_000, held: 0, available: 760_000, incoming: 0 }, '800 000 − 5 %');
  // a split cannot be taken as a bare transition: it comes from a resolution
  const x = await disputedDeal('dbare', { price: 500_000, category });
  assertError(await take(x.deal.id, 'resolve_split', admin, { reason: 'split without an amount' }), 422, 'split_needs_resolution');
  assert.equal((await deal(x.deal.id, x.buyer)).state, 'disputed');
  assert.deepEqual(await wallet(x.buyer), { balance: 500_000, held: 500_000, available: 0, incoming: 0 });
  await ledgerVerifies();
});

// ---------------------------------------------------------------- 9. bad input

test('bad amounts, currencies and providers are refused with stable codes and create nothing', async () => {
  const buyer = await register(s, 'badinput');
  const raw = (text) => s.post('/api/v1/payments', text, withKey(buyer));
  const fieldsOf = (res) => Object.keys(assertError(res, 422, 'validation_failed').details.fields);
  for (const amount of [-1, 0, 1.5, 1e15 + 1, 1e18, '100', null, true]) {
    assert.deepEqual(fieldsOf(await pay(buyer, { topup: { amount, currency: 'EGP' }, provider: 'sandbox' })), ['topup.amount'], `amount ${amount}`);
  }
  assert.deepEqual(fieldsOf(await raw('{"topup":{"amount":99999999999999999999999,"currency":"EGP"},"provider":"sandbox"}')), ['topup.amount']);
  assert.deepEqual(fieldsOf(await raw('{"topup":{"amount":18446744073709551615,"currency":"EGP"},"provider":"sandbox"}')), ['topup.amount']);
  for (const currency of ['XYZ', 'egp', 'EGPP', '', 5]) {
    assert.deepEqual(fieldsOf(await pay(buyer, { topup: { amount: 100, currency }, provider: 'sandbox' })), ['topup.currency'], `currency ${currency}`);
  }
  assert.deepEqual(fieldsOf(await pay(buyer, { topup: { amount: 100, currency: 'EGP', tip: 5 }, provider: 'sandbox' })), ['topup.tip']);
  assert.deepEqual(fieldsOf(await pay(buyer, { topup: 100, provider: 'sandbox' })), ['topup']);
  assert.ok(fieldsOf(await pay(buyer, { provider: 'sandbox' })).includes('transaction_id'));
  assert.ok(fieldsOf(await pay(buyer, topupBody(100, ''))).includes('provider'));
  const unknown = assertError(await pay(buyer, topupBody(100, 'paypal')), 422, 'unknown_provider');
  assert.deepEqual(unknown.details.providers, ['wallet', 'sandbox', 'stripe']);
  assertError(await pay(buyer, { transaction_id: 'txn_00000000000000000000000000', provider: 'wallet' }), 404, 'not_found');

  const payouts = (body) => s.post('/api/v1/payouts', body, withKey(buyer));
  for (const amount of [-5, 0, 2.25, 1e15 + 1]) {
    assert.deepEqual(Object.keys(assertError(await payouts(payoutBody({ amount })), 422, 'validation_failed').details.fields), ['amount']);
  }
  assert.deepEqual(Object.keys(assertError(await payouts(payoutBody({ currency: 'ABC' })), 422, 'validation_failed').details.fields), ['currency']);
  assert.deepEqual(Object.keys(assertError(await payouts(payoutBody({ reference: '' })), 422, 'validation_failed').details.fields), ['reference']);

  assert.deepEqual(await paymentsOf(buyer), [], 'no payment was made');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/payouts', auth(buyer))), [], 'no payout was made');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/wallets', auth(buyer))), [], 'no wallet was opened');
});

// ---------------------------------------------------------------- after everything

test('after every flow: the ledger verifies, and its totals balance', async () => {
  const report = await ledgerVerifies();
  assert.ok(report.transfers > 0);
  assert.deepEqual(report.faults, []);
  const egp = report.ledgers.EGP;
  assert.ok(egp, JSON.stringify(report.ledgers));
  assert.equal(egp.debits_posted, egp.credits_posted);
  assert.equal(egp.debits_pending, egp.credits_pending);
  assertError(await s.get('/api/v1/admin/ledger/verify', auth(await register(s, 'curious'))), 403, 'forbidden');
});
