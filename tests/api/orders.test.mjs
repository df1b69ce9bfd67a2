// Cart, checkout and orders, end to end (seed 003): the cart re-priced and
// re-checked on read; checkout under an Idempotency-Key that claims the cart,
// prices it on the server, reserves stock and makes one order per seller on
// the `purchase` process; fifty buyers racing for the last three units; wallet
// and gateway payment; shipping, delivery, confirmation and the seller paid
// minus commission; cancellation before and after payment (stock back);
// unpaid orders lapsing (a short-timer version of the process); reviews of
// delivered lines; every bad input refused with nothing changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSouq, assertSuccess, assertError, REPO } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, eventually, withKey, fundWallet } from './people.mjs';

let s, admin, sellerA, sellerB;
const CATEGORY = `gadgets-${crypto.randomBytes(3).toString('hex')}`;

before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  assertSuccess(await s.post('/api/v1/admin/categories', { name: 'Gadgets', slug: CATEGORY, attributes: [{ key: 'color', type: 'text' }] }, auth(admin)), 201);
  sellerA = await makeSeller(s, admin, 'alpha');
  sellerB = await makeSeller(s, admin, 'beta');
});
after(async () => { await s?.stop(); });

// ---------------------------------------------------------------- helpers

async function product(seller, { price = 10_000, stock = 10, title = 'Wireless headphones', currency = 'EGP' } = {}) {
  const p = assertSuccess(await s.post('/api/v1/products', {
    title, description: 'Over-ear, 30 h battery', brand: 'Sonic', category: CATEGORY, condition: 'new', city: 'Cairo',
    skus: [{ code: 'BLK', price, currency, stock, attributes: { color: 'black' } }],
  }, auth(seller)), 201);
  return { id: p.id, sku: p.skus[0].id, price };
}
const sku = async (seller, p) => assertSuccess(await s.get(`/api/v1/products/${p.id}`, auth(seller))).skus[0];
const cart = async (who) => assertSuccess(await s.get('/api/v1/cart', auth(who)));
const add = (who, skuId, quantity) => s.post('/api/v1/cart/items', { sku_id: skuId, quantity }, auth(who));
const checkout = (who, body = {}, key = crypto.randomUUID()) => s.post('/api/v1/orders', body, withKey(who, key));
const order = async (id, who) => assertSuccess(await s.get(`/api/v1/orders/${id}`, auth(who)));
const put = (p, body, who) => s.request('PUT', p, { body, ...auth(who) });
async function wallet(who, currency = 'EGP') {
  const w = assertSuccess(await s.get('/api/v1/wallets', auth(who))).find((x) => x.currency === currency);
  return w ?? { balance: 0, held: 0, available: 0 };
}

// ---------------------------------------------------------------- cart

test('the cart adds, merges, changes, removes and clears lines, and re-prices them on read', async () => {
  const buyer = await register(s, 'cart-buyer');
  const p1 = await product(sellerA, { price: 2_500 });
  const p2 = await product(sellerB, { price: 7_000, stock: 5 });
  assertSuccess(await add(buyer, p1.sku, 1));
  let c = assertSuccess(await add(buyer, p1.sku, 2));
  assert.equal(c.items.length, 1);
  assert.equal(c.items[0].quantity, 3);
  c = assertSuccess(await add(buyer, p2.sku, 1));
  assert.equal(c.subtotal, 3 * 2_500 + 7_000);
  assert.equal(c.currency, 'EGP');
  assert.equal(c.item_count, 4);
  assert.equal(c.checkout_ready, true);
  assert.deepEqual(c.items.map((i) => i.seller.name).sort(), ['alpha trading', 'beta trading']);

  // The seller raises the price and sells most of the stock elsewhere: the cart says so.
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p2.id}/skus/${p2.sku}`, { body: { price: 8_000, stock: 0 }, ...auth(sellerB) }));
  c = await cart(buyer);
  const line = c.items.find((i) => i.sku_id === p2.sku);
  assert.equal(line.price_changed, true);
  assert.equal(line.price_seen, 7_000);
  assert.equal(line.unit_price, 8_000);
  assert.equal(line.problem, 'out_of_stock');
  assert.equal(c.checkout_ready, false);
  assert.equal(c.subtotal, 3 * 2_500, 'a line that cannot be bought is not in the subtotal');

  c = assertSuccess(await put(`/api/v1/cart/items/${p1.sku}`, { quantity: 1 }, buyer));
  assert.equal(c.items.find((i) => i.sku_id === p1.sku).quantity, 1);
  c = assertSuccess(await s.request('DELETE', `/api/v1/cart/items/${p2.sku}`, auth(buyer)));
  assert.deepEqual(c.items.map((i) => i.sku_id), [p1.sku]);
  assertError(await s.request('DELETE', `/api/v1/cart/items/${p2.sku}`, auth(buyer)), 404, 'not_found');
  c = assertSuccess(await s.request('DELETE', '/api/v1/cart', auth(buyer)));
  assert.deepEqual(c.items, []);
  assert.equal(c.checkout_ready, false);
});

test('bad cart input is refused and changes nothing', async () => {
  const buyer = await register(s, 'bad-cart');
  const p = await product(sellerA, { stock: 2 });
  for (const quantity of [0, -1, 1000, 1.5, '2'])
    assertError(await add(buyer, p.sku, quantity), 422, 'validation_failed');
  assertError(await add(buyer, 'sku_01j00000000000000000000000', 1), 422, 'unknown_sku');
  assertError(await add(buyer, 'not-a-sku', 1), 422, 'validation_failed');
  assertError(await add(sellerA, p.sku, 1), 422, 'cannot_buy_own_product');
  assertError(await add(buyer, p.sku, 3), 409, 'insufficient_stock');
  assertError(await put(`/api/v1/cart/items/${p.sku}`, { quantity: 1 }, buyer), 404, 'not_found');
  assertError(await s.post('/api/v1/cart/items', { sku_id: p.sku, quantity: 1, price: 1 }, auth(buyer)), 422, 'validation_failed');
  assert.deepEqual((await cart(buyer)).items, []);
  // An archived product cannot be added.
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'archived' }, ...auth(sellerA) }));
  assertError(await add(buyer, p.sku, 1), 409, 'product_unavailable');
});

// ---------------------------------------------------------------- checkout

test('checkout splits a two-seller cart into two orders paid from the wallet; stock is committed', async () => {
  const buyer = await register(s, 'multi');
  const pa = await product(sellerA, { price: 3_000, stock: 4 });
  const pb = await product(sellerB, { price: 5_000, stock: 4 });
  assertSuccess(await add(buyer, pa.sku, 2));
  assertSuccess(await add(buyer, pb.sku, 1));
  await fundWallet(s, buyer, 20_000);
  const before = await wallet(sellerA);
  const key = crypto.randomUUID();
  const res = await checkout(buyer, { provider: 'wallet', shipping_address: { name: 'Mona', line1: '1 Nile St', city: 'Cairo', country: 'EG' } }, key);
  const chk = assertSuccess(res, 201);
  assert.match(chk.id, /^chk_/);
  assert.equal(chk.total, 11_000);
  assert.equal(chk.orders.length, 2);
  const bySeller = Object.fromEntries(chk.orders.map((o) => [o.seller.id, o]));
  assert.equal(bySeller[sellerA.id].amount, 6_000);
  assert.equal(bySeller[sellerB.id].amount, 5_000);
  for (const o of chk.orders) {
    assert.equal(o.state, 'paid');
    assert.equal(o.process.name, 'purchase');
    assert.equal(o.stock, 'committed');
    assert.equal(o.checkout_id, chk.id);
    assert.equal(o.shipping_address.city, 'Cairo');
  }
  assert.deepEqual(bySeller[sellerA.id].items.map((i) => [i.sku_id, i.quantity, i.unit_price, i.line_total]), [[pa.sku, 2, 3_000, 6_000]]);
  assert.equal((await wallet(buyer)).available, 9_000);
  const skuA = await sku(sellerA, pa);
  assert.deepEqual([skuA.on_hand, skuA.reserved, skuA.stock], [2, 0, 2]);
  assert.deepEqual((await cart(buyer)).items, []);

  // The same key again: the same answer, replayed; no second set of orders.
  const again = await checkout(buyer, { provider: 'wallet', shipping_address: { name: 'Mona', line1: '1 Nile St', city: 'Cairo', country: 'EG' } }, key);
  assert.equal(assertSuccess(again, 201).id, chk.id);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  const mine = assertSuccess(await s.get('/api/v1/orders', auth(buyer)));
  assert.equal(mine.length, 2);
  // The same key with another body is refused.
  assertError(await checkout(buyer, { provider: 'sandbox' }, key), 422, 'idempotency_key_reused');

  // Each seller sees only their order; the buyer sees both; others see none.
  const sellerList = assertSuccess(await s.get('/api/v1/seller/orders', auth(sellerA)));
  assert.ok(sellerList.some((o) => o.id === bySeller[sellerA.id].id));
  assert.ok(!sellerList.some((o) => o.id === bySeller[sellerB.id].id));
  assertError(await s.get(`/api/v1/orders/${bySeller[sellerB.id].id}`, auth(sellerA)), 404, 'not_found');
  const stranger = await register(s, 'stranger');
  assertError(await s.get(`/api/v1/orders/${bySeller[sellerA.id].id}`, auth(stranger)), 404, 'not_found');
  assert.equal((await wallet(sellerA)).balance, before.balance, 'nothing reaches the seller before completion');
});

test('checkout refuses bad input and stale carts, and changes nothing', async () => {
  const buyer = await register(s, 'bad-checkout');
  assertError(await checkout(buyer), 422, 'cart_empty');
  const p = await product(sellerA, { price: 4_000, stock: 3 });
  assertSuccess(await add(buyer, p.sku, 2));
  assertError(await s.post('/api/v1/orders', {}, auth(buyer)), 400, 'idempotency_key_required');
  // Prices come from the server, never from the request.
  assertError(await checkout(buyer, { items: [{ sku_id: p.sku, quantity: 2, price: 1 }] }), 422, 'validation_failed');
  assertError(await checkout(buyer, { total: 1 }), 422, 'validation_failed');
  assertError(await checkout(buyer, { provider: 'cash' }), 422, 'unknown_provider');
  assertError(await checkout(buyer, { shipping_address: { line1: 'x' } }), 422, 'validation_failed');
  assertError(await checkout(buyer, { provider: 'wallet' }), 409, 'insufficient_funds');
  // The price moved since the buyer saw it.
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${p.sku}`, { body: { price: 4_500 }, ...auth(sellerA) }));
  const changed = assertError(await checkout(buyer), 409, 'cart_price_changed');
  assert.deepEqual(changed.details.items, [{ sku_id: p.sku, price_seen: 4_000, price: 4_500 }]);
  assertError(await checkout(buyer, { expected_total: 8_000 }), 409, 'cart_total_changed');
  // Nothing changed: the cart still holds the line, no stock is reserved, no order exists.
  assert.equal((await cart(buyer)).items[0].quantity, 2);
  assert.equal((await sku(sellerA, p)).reserved, 0);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/orders', auth(buyer))), []);
  // Stock sold elsewhere meanwhile; then the product is withdrawn.
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${p.sku}`, { body: { stock: 1 }, ...auth(sellerA) }));
  const short = assertError(await checkout(buyer, { expected_total: 9_000 }), 409, 'insufficient_stock');
  assert.equal(short.details.available, 1);
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'archived' }, ...auth(sellerA) }));
  assertError(await checkout(buyer, { expected_total: 9_000 }), 409, 'cart_stale');
  assert.equal((await cart(buyer)).items.length, 1);
  // With the new total acknowledged and the product back, it goes through.
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'active' }, ...auth(sellerA) }));
  assertSuccess(await put(`/api/v1/cart/items/${p.sku}`, { quantity: 1 }, buyer));
  const ok = assertSuccess(await checkout(buyer), 201);
  assert.equal(ok.total, 4_500);
  assert.equal(ok.orders[0].state, 'pending_payment');
  assert.equal((await sku(sellerA, p)).reserved, 1);
});

test('fifty buyers racing for the last three units make exactly three orders', async () => {
  const p = await product(sellerB, { price: 1_000, stock: 3 });
  const buyers = [];  // (signing up is rate-bound by password hashing: a few at a time)
  for (let i = 0; i < 50; i += 5)
    buyers.push(...await Promise.all(Array.from({ length: 5 }, (_, k) => register(s, `racer${i + k}`))));
  for (const b of buyers) assertSuccess(await add(b, p.sku, 1));
  const results = await Promise.all(buyers.map((b) => checkout(b)));
  const made = results.filter((r) => r.status === 201);
  const refused = results.filter((r) => r.status !== 201);
  assert.equal(made.length, 3, results.map((r) => r.status).join(','));
  for (const r of refused) assertError(r, 409, 'insufficient_stock');
  const after = await sku(sellerB, p);
  assert.deepEqual([after.on_hand, after.reserved, after.stock], [3, 3, 0]);
  // Losers keep their carts.
  const loser = buyers[results.findIndex((r) => r.status !== 201)];
  assert.equal((await cart(loser)).items.length, 1);
});

test('one cart, two racing checkouts with different keys: one order', async () => {
  const buyer = await register(s, 'twice');
  const p = await product(sellerA, { price: 1_500, stock: 10 });
  assertSuccess(await add(buyer, p.sku, 2));
  const results = await Promise.all(Array.from({ length: 8 }, () => checkout(buyer)));
  assert.equal(results.filter((r) => r.status === 201).length, 1, results.map((r) => r.status).join(','));
  for (const r of results.filter((x) => x.status !== 201)) assertError(r, 422, 'cart_empty');
  assert.equal((await sku(sellerA, p)).reserved, 2);
});

// ---------------------------------------------------------------- lifecycle

test('ship, deliver, confirm: the seller is paid minus commission; reviews follow delivery', async () => {
  assertSuccess(await s.request('PUT', `/api/v1/admin/commission-rules/${CATEGORY}`, { body: { basis_points: 1000 }, ...auth(admin) }));
  const buyer = await register(s, 'lifecycle');
  const p = await product(sellerA, { price: 10_000, stock: 5 });
  // Another product of the same seller, its page in memory: it shows the
  // seller's rating, which the review below changes.
  const sibling = await product(sellerA, { title: 'Wired earbuds' });
  const sellerRatingBefore = assertSuccess(await s.get(`/api/v1/products/${sibling.id}`)).seller.rating_count;
  assertSuccess(await add(buyer, p.sku, 1));
  await fundWallet(s, buyer, 10_000);
  const chk = assertSuccess(await checkout(buyer, { provider: 'wallet' }), 201);
  const id = chk.orders[0].id;
  const itemId = chk.orders[0].items[0].id;

  // Not yet delivered: no review.
  assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 5 }, auth(buyer)), 409, 'not_delivered');
  const other = await register(s, 'no-purchase');
  assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 5 }, auth(other)), 403, 'not_purchased');

  assertError(await put(`/api/v1/seller/orders/${id}/ship`, { carrier: 'Aramex', tracking_number: 'AR123456' }, sellerB), 404, 'not_found');
  assertError(await put(`/api/v1/seller/orders/${id}/ship`, { carrier: 'Aramex', tracking_number: 'AR123456' }, buyer), 403, 'not_the_seller');
  assertError(await put(`/api/v1/seller/orders/${id}/ship`, { carrier: 'Aramex' }, sellerA), 422, 'validation_failed');
  // The generic transition route cannot ship without a tracking number.
  assertError(await s.post(`/api/v1/transactions/${id}/transitions/ship`, {}, auth(sellerA)), 422, 'tracking_required');
  let o = assertSuccess(await put(`/api/v1/seller/orders/${id}/ship`, { carrier: 'Aramex', tracking_number: 'AR123456' }, sellerA));
  assert.equal(o.state, 'shipped');
  assert.equal(o.shipment.carrier, 'Aramex');
  assert.equal(o.shipment.tracking_number, 'AR123456');
  assertError(await put(`/api/v1/orders/${id}/cancel`, { reason: 'changed my mind' }, buyer), 409, 'not_cancellable');
  o = assertSuccess(await put(`/api/v1/seller/orders/${id}/deliver`, undefined, sellerA));
  assert.equal(o.state, 'delivered');
  assert.ok(o.shipment.delivered_at);
  assert.deepEqual(o.timers.map((t) => t.transition), ['auto_complete']);

  const sellerBefore = await wallet(sellerA);
  o = assertSuccess(await put(`/api/v1/orders/${id}/confirm`, undefined, buyer));
  assert.equal(o.state, 'completed');
  assert.equal((await wallet(sellerA)).balance - sellerBefore.balance, 9_000, '10 % commission kept');

  // One review per purchased line, after delivery; the aggregates follow.
  const review = assertSuccess(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 4, title: 'Good', body: 'Solid bass' }, auth(buyer)), 201);
  assert.equal(review.order_item_id, itemId);
  assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 5 }, auth(buyer)), 409, 'already_reviewed');
  assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 6 }, auth(buyer)), 422, 'validation_failed');
  const page = assertSuccess(await s.get(`/api/v1/products/${p.id}`));
  assert.deepEqual(page.rating, { average: 4, count: 1 });
  assert.equal(page.seller.rating_count, sellerRatingBefore + 1);
  assert.equal(assertSuccess(await s.get(`/api/v1/products/${sibling.id}`)).seller.rating_count, sellerRatingBefore + 1,
    "every page of the seller forgets the seller's old rating");
  const reply = assertSuccess(await s.post(`/api/v1/reviews/${review.id}/reply`, { body: 'Thank you!' }, auth(sellerA)));
  assert.equal(reply.reply.body, 'Thank you!');
  assertError(await s.post(`/api/v1/reviews/${review.id}/reply`, { body: 'Again' }, auth(sellerA)), 409, 'already_replied');
  assertError(await s.post(`/api/v1/reviews/${review.id}/reply`, { body: 'Me too' }, auth(sellerB)), 403, 'not_product_owner');
  const listed = assertSuccess(await s.get(`/api/v1/products/${p.id}/reviews`));
  assert.deepEqual(listed.map((r) => r.id), [review.id]);
  // A report on a review reaches moderation; an admin hides it and the aggregate drops.
  assertSuccess(await s.post('/api/v1/reports', { target_type: 'review', target_id: review.id, reason: 'spam' }, auth(sellerB)), 201);
  assertSuccess(await s.post(`/api/v1/admin/reviews/${review.id}/hide`, { reason: 'spam' }, auth(admin)));
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/products/${p.id}`)).rating, { average: null, count: 0 });
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/products/${p.id}/reviews`)), []);
  assertSuccess(await s.post(`/api/v1/admin/reviews/${review.id}/show`, { reason: 'not spam after all' }, auth(admin)));
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/products/${p.id}`)).rating, { average: 4, count: 1 });
  assert.equal(review.verified_purchase, true);
  assert.equal(review.sku_id, p.sku);

  const adminView = assertSuccess(await s.get(`/api/v1/admin/orders?seller=${sellerA.id}&state=completed`, auth(admin)));
  assert.ok(adminView.some((x) => x.id === id));
  assertError(await s.get('/api/v1/admin/orders', auth(buyer)), 403, 'forbidden');
});

test('cancelling: before payment releases the stock; after payment refunds and restocks', async () => {
  const buyer = await register(s, 'canceller');
  const p = await product(sellerB, { price: 2_000, stock: 4 });
  assertSuccess(await add(buyer, p.sku, 2));
  const unpaid = assertSuccess(await checkout(buyer), 201).orders[0];
  assert.equal((await sku(sellerB, p)).reserved, 2);
  let o = assertSuccess(await put(`/api/v1/orders/${unpaid.id}/cancel`, undefined, buyer));
  assert.equal(o.state, 'cancelled');
  assert.equal(o.stock, 'released');
  let now = await sku(sellerB, p);
  assert.deepEqual([now.on_hand, now.reserved], [4, 0]);

  assertSuccess(await add(buyer, p.sku, 3));
  await fundWallet(s, buyer, 6_000);
  const paid = assertSuccess(await checkout(buyer, { provider: 'wallet' }), 201).orders[0];
  now = await sku(sellerB, p);
  assert.deepEqual([now.on_hand, now.reserved], [1, 0]);
  assertError(await put(`/api/v1/orders/${paid.id}/cancel`, undefined, buyer), 422, 'validation_failed');
  o = assertSuccess(await put(`/api/v1/orders/${paid.id}/cancel`, { reason: 'ordered by mistake' }, sellerB));
  assert.equal(o.state, 'refunded');
  assert.equal(o.stock, 'returned');
  now = await sku(sellerB, p);
  assert.deepEqual([now.on_hand, now.reserved], [4, 0]);
  assert.equal((await wallet(buyer)).available, 6_000);
  assertError(await put(`/api/v1/orders/${paid.id}/cancel`, { reason: 'again please' }, buyer), 409, 'not_cancellable');
});

test('a shipped order disputed by the buyer: an admin refunds it through the purchase process', async () => {
  const buyer = await register(s, 'disputer');
  const p = await product(sellerB, { price: 3_300, stock: 2 });
  assertSuccess(await add(buyer, p.sku, 1));
  await fundWallet(s, buyer, 3_300);
  const id = assertSuccess(await checkout(buyer, { provider: 'wallet' }), 201).orders[0].id;
  assertSuccess(await put(`/api/v1/seller/orders/${id}/ship`, { carrier: 'Bosta', tracking_number: 'BS998877' }, sellerB));
  assertError(await s.post(`/api/v1/transactions/${id}/transitions/dispute`, {}, auth(buyer)), 422, 'validation_failed');
  const disputed = assertSuccess(await s.post(`/api/v1/transactions/${id}/transitions/dispute`, { reason: 'the box was empty' }, auth(buyer)));
  assert.equal(disputed.state, 'disputed');
  const [dispute] = assertSuccess(await s.get(`/api/v1/transactions/${id}/disputes`, auth(buyer)));
  assertSuccess(await s.post(`/api/v1/admin/disputes/${dispute.id}/resolve`, { outcome: 'refund', reason: 'carrier confirmed loss' }, auth(admin)));
  const o = await order(id, buyer);
  assert.equal(o.state, 'refunded');
  assert.equal((await wallet(buyer)).available, 3_300);
  // The goods left with the carrier: the stock stays sold.
  assert.equal(o.stock, 'committed');
  assert.deepEqual([(await sku(sellerB, p)).on_hand, (await sku(sellerB, p)).reserved], [1, 0]);
});

test('a paid order disputed before it ships and refunded: its stock goes back on the shelf', async () => {
  const buyer = await register(s, 'early-disputer');
  const p = await product(sellerB, { price: 1_500, stock: 2 });
  assertSuccess(await add(buyer, p.sku, 2));
  await fundWallet(s, buyer, 3_000);
  const id = assertSuccess(await checkout(buyer, { provider: 'wallet' }), 201).orders[0].id;
  assert.equal((await sku(sellerB, p)).on_hand, 0);
  assertSuccess(await s.post(`/api/v1/transactions/${id}/transitions/dispute`, { reason: 'seller went quiet' }, auth(buyer)));
  const [dispute] = assertSuccess(await s.get(`/api/v1/transactions/${id}/disputes`, auth(buyer)));
  assertSuccess(await s.post(`/api/v1/admin/disputes/${dispute.id}/resolve`, { outcome: 'refund', reason: 'never shipped' }, auth(admin)));
  const o = await order(id, buyer);
  assert.deepEqual([o.state, o.stock], ['refunded', 'returned']);
  const now = await sku(sellerB, p);
  assert.deepEqual([now.on_hand, now.reserved], [2, 0]);
  assert.equal((await wallet(buyer)).available, 3_000);
});

test('a gateway checkout: one payment for the total; when it succeeds every order is paid', async () => {
  const buyer = await register(s, 'gateway');
  const pa = await product(sellerA, { price: 1_200, stock: 2 });
  const pb = await product(sellerB, { price: 800, stock: 2 });
  assertSuccess(await add(buyer, pa.sku, 1));
  assertSuccess(await add(buyer, pb.sku, 2));
  const chk = assertSuccess(await checkout(buyer, { provider: 'sandbox' }), 201);
  assert.equal(chk.payment.amount, 2_800);
  assert.equal(chk.payment.status, 'pending');
  assert.equal(chk.payment.next_action.type, 'redirect');
  assert.ok(chk.orders.every((o) => o.state === 'pending_payment'));
  assertSuccess(await s.post(`/sandbox/checkout/${chk.payment.id}/complete`, { outcome: 'succeeded' }), 202);
  for (const o of chk.orders)
    await eventually(`order ${o.id} paid`, async () => (await order(o.id, buyer)).state === 'paid' || (await order(o.id, buyer)).state);
  assert.equal((await wallet(buyer)).available, 0);
  assert.equal((await sku(sellerB, pb)).on_hand, 0);
});

test('a checkout is paid again for what it still owes: paid later, declined, then paid; its orders follow', async () => {
  const buyer = await register(s, 'pays-later');
  const pa = await product(sellerA, { price: 1_000, stock: 3 });
  const pb = await product(sellerB, { price: 500, stock: 3 });
  assertSuccess(await add(buyer, pa.sku, 2));
  assertSuccess(await add(buyer, pb.sku, 1));
  const chk = assertSuccess(await checkout(buyer), 201); // no provider: to be paid later
  assert.equal(chk.payment, null);
  // One order is cancelled: only the other is owed.
  const [kept, dropped] = chk.orders;
  assertSuccess(await put(`/api/v1/orders/${dropped.id}/cancel`, undefined, buyer));
  const owed = kept.items.reduce((sum, i) => sum + i.line_total, 0);
  const url = `/api/v1/checkouts/${chk.id}/payments`;
  const other = await register(s, 'not-the-buyer');
  assertError(await s.post(url, { provider: 'sandbox' }, auth(buyer)), 400, 'idempotency_key_required');
  assertError(await s.post(url, { provider: 'wallet' }, withKey(buyer)), 422, 'unknown_provider');
  assertError(await s.post(url, { provider: 'paypal' }, withKey(buyer)), 422, 'unknown_provider');
  assertError(await s.post(url, {}, withKey(buyer)), 422, 'validation_failed');
  assertError(await s.post(url, { provider: 'sandbox' }, withKey(other)), 404, 'not_found');
  assertError(await s.post('/api/v1/checkouts/chk_00000000000000000000000000/payments', { provider: 'sandbox' }, withKey(buyer)), 404, 'not_found');
  assert.equal((await order(kept.id, buyer)).state, 'pending_payment', 'the refusals changed nothing');

  // Eight at once: one payment is started; the others are told one is under way.
  const racing = await Promise.all(Array.from({ length: 8 }, () => s.post(url, { provider: 'sandbox' }, withKey(buyer))));
  assert.deepEqual(racing.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
  for (const r of racing.filter((x) => x.status === 409)) assert.equal(r.json.error.code, 'payment_in_progress');
  const declined = racing.find((r) => r.status === 201).json.data;
  assert.deepEqual([declined.amount, declined.currency, declined.orders], [owed, 'EGP', [kept.id]]);
  assertSuccess(await s.post(`/sandbox/checkout/${declined.payment.id}/complete`, { outcome: 'failed' }), 202);
  await eventually('the payment is declined', async () =>
    assertSuccess(await s.get(`/api/v1/payments/${declined.payment.id}`, auth(buyer))).status === 'failed');
  assert.equal((await order(kept.id, buyer)).state, 'pending_payment');

  const paid = assertSuccess(await s.post(url, { provider: 'sandbox' }, withKey(buyer)), 201);
  assert.notEqual(paid.payment.id, declined.payment.id);
  assertSuccess(await s.post(`/sandbox/checkout/${paid.payment.id}/complete`, { outcome: 'succeeded' }), 202);
  await eventually('the order is paid', async () => (await order(kept.id, buyer)).state === 'paid' || (await order(kept.id, buyer)).state);
  assert.equal((await order(dropped.id, buyer)).state, 'cancelled');
  assert.equal((await wallet(buyer)).available, 0, 'the payment went to the order, nothing left over');
  assertError(await s.post(url, { provider: 'sandbox' }, withKey(buyer)), 409, 'nothing_to_pay');
});

test('authorization: every cart and order route wants a signed-in user', async () => {
  const id = 'order_01j00000000000000000000000';
  for (const [method, p] of [['GET', '/api/v1/cart'], ['POST', '/api/v1/cart/items'], ['PUT', '/api/v1/cart/items/sku_01j00000000000000000000000'],
    ['DELETE', '/api/v1/cart/items/sku_01j00000000000000000000000'], ['DELETE', '/api/v1/cart'], ['POST', '/api/v1/orders'],
    ['GET', '/api/v1/orders'], ['GET', `/api/v1/orders/${id}`], ['PUT', `/api/v1/orders/${id}/cancel`], ['PUT', `/api/v1/orders/${id}/confirm`],
    ['GET', '/api/v1/seller/orders'], ['PUT', `/api/v1/seller/orders/${id}/ship`], ['PUT', `/api/v1/seller/orders/${id}/deliver`],
    ['GET', '/api/v1/admin/orders'], ['POST', '/api/v1/checkouts/chk_01j00000000000000000000000/payments']])
    assertError(await s.request(method, p, { body: method === 'GET' || method === 'DELETE' ? undefined : {} }), 401, 'unauthenticated');
});

test('authorization matrix: an order and the order routes for each kind of caller', async () => {
  const buyer = await register(s, 'matrix-buyer');
  const otherBuyer = await register(s, 'matrix-other');
  const suspended = await register(s, 'matrix-suspended');
  const p = await product(sellerA, { price: 1_000, stock: 5 });
  assertSuccess(await add(buyer, p.sku, 1));
  assertSuccess(await add(suspended, p.sku, 1));
  const made = assertSuccess(await checkout(buyer), 201);
  const id = made.orders[0].id;
  assertSuccess(await s.post(`/api/v1/admin/users/${suspended.id}/suspend`, { reason: 'fraud reports' }, auth(admin)));
  const callers = { anonymous: null, buyer, otherBuyer, seller: sellerA, otherSeller: sellerB, suspended, admin };
  // [route, method, path, body, {caller: status}]
  const rows = [
    ['order', 'GET', `/api/v1/orders/${id}`, undefined, { anonymous: 401, buyer: 200, otherBuyer: 404, seller: 200, otherSeller: 404, suspended: 403, admin: 200 }],
    ['ship', 'PUT', `/api/v1/seller/orders/${id}/ship`, { carrier: 'Aramex', tracking_number: 'AR1' + '0'.repeat(5) }, { anonymous: 401, buyer: 403, otherBuyer: 404, otherSeller: 404, suspended: 403, admin: 403 }],
    ['deliver', 'PUT', `/api/v1/seller/orders/${id}/deliver`, undefined, { anonymous: 401, buyer: 403, otherBuyer: 404, otherSeller: 404, suspended: 403 }],
    ['confirm', 'PUT', `/api/v1/orders/${id}/confirm`, undefined, { anonymous: 401, seller: 403, otherBuyer: 404, otherSeller: 404, suspended: 403 }],
    ['admin list', 'GET', '/api/v1/admin/orders', undefined, { anonymous: 401, buyer: 403, seller: 403, suspended: 403, admin: 200 }],
    ['seller list', 'GET', '/api/v1/seller/orders', undefined, { anonymous: 401, buyer: 200, seller: 200, suspended: 403, admin: 200 }],
    ['buyer list', 'GET', '/api/v1/orders', undefined, { anonymous: 401, buyer: 200, suspended: 403 }],
    ['cart', 'GET', '/api/v1/cart', undefined, { anonymous: 401, buyer: 200, suspended: 403 }],
    ['add to cart', 'POST', '/api/v1/cart/items', { sku_id: p.sku, quantity: 1 }, { anonymous: 401, suspended: 403, seller: 422 }],
    ['checkout', 'POST', '/api/v1/orders', {}, { anonymous: 401, suspended: 403 }],
    // Only its buyer pays a checkout again.
    ['pay a checkout again', 'POST', `/api/v1/checkouts/${made.id}/payments`, { provider: 'sandbox' },
      { anonymous: 401, otherBuyer: 404, seller: 404, otherSeller: 404, suspended: 403, admin: 404 }],
  ];
  const failures = [];
  for (const [name, method, url, body, expected] of rows)
    for (const [who, status] of Object.entries(expected)) {
      const headers = { ...auth(callers[who]).headers, 'Idempotency-Key': crypto.randomUUID() };
      const res = await s.request(method, url, { body, headers });
      if (res.status !== status) failures.push(`${name} as ${who}: ${res.status} (wanted ${status}) ${JSON.stringify(res.json?.error ?? '')}`);
    }
  assert.deepEqual(failures, []);
  // None of the refused steps moved the order.
  assert.equal((await order(id, buyer)).state, 'pending_payment');
});

// ---------------------------------------------------------------- lapse

test('an unpaid order lapses: cancelled and its stock released (a short-timer purchase process)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-proc-'));
  const builtin = JSON.parse(fs.readFileSync(path.join(REPO, 'src/modules/orders/processes/purchase.json'), 'utf8'));
  assert.equal(builtin.name, 'purchase');
  builtin.version += 1;
  builtin.transitions.find((t) => t.name === 'payment_timeout').timer.after = 'PT2S';
  fs.writeFileSync(path.join(dir, 'purchase.json'), JSON.stringify(builtin));
  const t = await startSouq({ args: ['--processes', dir] });
  try {
    const a = await makeAdmin(t);
    assertSuccess(await t.post('/api/v1/admin/categories', { name: 'Gadgets', slug: 'gadgets' }, auth(a)), 201);
    const seller = await makeSeller(t, a, 'lapse');
    const p = assertSuccess(await t.post('/api/v1/products', { title: 'Lamp', category: 'gadgets', skus: [{ price: 900, currency: 'EGP', stock: 1 }] }, auth(seller)), 201);
    const buyer = await register(t, 'late');
    assertSuccess(await t.post('/api/v1/cart/items', { sku_id: p.skus[0].id, quantity: 1 }, auth(buyer)));
    const chk = assertSuccess(await t.post('/api/v1/orders', {}, withKey(buyer)), 201);
    const id = chk.orders[0].id;
    assert.equal(chk.orders[0].process.version, builtin.version);
    await eventually('the order lapsed', async () => {
      const o = assertSuccess(await t.get(`/api/v1/orders/${id}`, auth(buyer)));
      return (o.state === 'cancelled' && o.stock === 'released') || o.state;
    });
    const after = assertSuccess(await t.get(`/api/v1/products/${p.id}`, auth(seller))).skus[0];
    assert.deepEqual([after.on_hand, after.reserved], [1, 0]);
  } finally {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
