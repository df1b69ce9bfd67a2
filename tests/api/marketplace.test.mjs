// The reverse marketplace (seed 000): buy requests, offers, accepting one into
// a deal, and every refusal on the way — each checked to change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError, sleep } from './harness.mjs';
import {
  auth, register, makeAdmin, makeSeller, makePendingSeller, suspend, requestBody, postRequest, offerBody, makeOffer,
  events, eventually,
} from './people.mjs';

let s, admin, buyer, seller, seller2;
before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  buyer = await register(s, 'buyer');
  seller = await makeSeller(s, admin, 'seller', ['phones', 'laptops']);
  seller2 = await makeSeller(s, admin, 'seller-two');
});
after(async () => { await s?.stop(); });

const mine = async (who) => assertSuccess(await s.get('/api/v1/requests?mine=true&limit=100', auth(who)));

test('a buyer posts a request; anyone reads it; the point is exact only for its buyer', async () => {
  const r = assertSuccess(await s.post('/api/v1/requests', requestBody({ lat: 30.04442, lng: 31.23571, images: ['file_a', 'file_b'] }),
    { ...auth(buyer), headers: { ...auth(buyer).headers, 'X-Request-Id': 'post-request-1' } }), 201);
  assert.match(r.id, /^req_/);
  assert.equal(r.status, 'active');
  assert.equal(r.offer_count, 0);
  assert.equal(r.process, 'negotiation');
  assert.deepEqual(r.images, ['file_a', 'file_b']);
  assert.deepEqual(r.location, { lat: 30.04442, lng: 31.23571, precise: true });
  assert.equal(r.buyer.id, buyer.id);
  assert.equal(r.buyer.display_name, 'buyer');
  assert.ok(Date.parse(r.expires_at) - Date.now() > 29 * 86400_000, 'thirty days by default');
  const pub = assertSuccess(await s.get(`/api/v1/requests/${r.id}`));
  assert.deepEqual(pub.location, { lat: 30.04, lng: 31.24, precise: false }, 'others see about a kilometre');
  assert.equal(assertSuccess(await s.get(`/api/v1/requests/${r.id}`, auth(admin))).location.precise, true);
  const [created] = await events(s, r.id, { full: true });
  assert.equal(created.type, 'request.created');
  assert.equal(created.request_id, 'post-request-1');
  assert.equal(created.payload.buyer_id, buyer.id);
});

test('bad requests are 422 with every field named, and nothing is created', async () => {
  const before = (await mine(buyer)).length;
  const bad = assertError(await s.post('/api/v1/requests', {
    title: 'x', category: 'Phones!', quantity: 0, budget_min: -1, budget_max: 12.5, currency: 'XYZ', city: '',
    lat: 91, expires_at: 'tomorrow', images: Array(11).fill('f'), colour: 'red',
  }, auth(buyer)), 422, 'validation_failed');
  for (const f of ['title', 'category', 'quantity', 'budget_min', 'budget_max', 'currency', 'city', 'lng', 'expires_at', 'images', 'colour'])
    assert.ok(f in bad.details.fields, `${f} is named: ${JSON.stringify(bad.details.fields)}`);
  assert.match(bad.details.fields.budget_max, /no fractions/);
  // money that does not fit, as a JSON number and as a huge integer
  for (const budget_max of [1e20, 9223372036854775808, 1_000_000_000_000_001])
    assertError(await s.post('/api/v1/requests', requestBody({ budget_max }), auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/requests', requestBody({ budget_max: '2000000' }), auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/requests', requestBody({ budget_min: 3_000_000 }), auth(buyer)), 422, 'budget_range_invalid');
  assertError(await s.post('/api/v1/requests', requestBody({ expires_at: '2020-01-01T00:00:00Z' }), auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/requests', requestBody({ expires_at: new Date(Date.now() + 91 * 86400_000).toISOString() }), auth(buyer)),
    422, 'validation_failed');
  assertError(await s.post('/api/v1/requests', requestBody({ process: 'no_such_process' }), auth(buyer)), 422, 'unknown_process');
  assertError(await s.post('/api/v1/requests', requestBody({ lat: 30 }), auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/requests', requestBody()), 401, 'unauthenticated');
  assert.equal((await mine(buyer)).length, before, 'nothing was created');
});

test('the list filters by category, city, budget, text and distance, sorts, and pages with a cursor', async () => {
  const b = await register(s, 'lister');
  const tag = `tag${Date.now()}`;
  const soon = (h) => new Date(Date.now() + h * 3600_000).toISOString();
  const a = await postRequest(s, b, { title: `Gaming laptop ${tag}`, category: 'laptops', city: 'Alexandria', budget_min: 3_000_000, budget_max: 4_000_000, lat: 31.2, lng: 29.92, expires_at: soon(50) });
  const c = await postRequest(s, b, { title: `Office laptop ${tag}`, category: 'laptops', city: 'Cairo', budget_min: 1_000_000, budget_max: 2_000_000, lat: 30.05, lng: 31.24, expires_at: soon(10) });
  const d = await postRequest(s, b, { title: `Phone ${tag}`, description: 'a LAPTOP would do too', category: 'phones', city: 'Cairo', budget_min: 500_000, budget_max: 900_000, expires_at: soon(30) });
  const ids = (list) => list.map((r) => r.id);
  const q = async (qs) => ids(assertSuccess(await s.get(`/api/v1/requests?q=${tag}&${qs}`)));
  assert.deepEqual(await q(''), [d.id, c.id, a.id], 'newest first');
  assert.deepEqual(await q('category=laptops'), [c.id, a.id]);
  assert.deepEqual(await q('city=Cairo'), [d.id, c.id]);
  assert.deepEqual(await q('currency=EGP&budget_min=2500000'), [a.id], 'budgets reaching 25,000.00');
  assert.deepEqual(await q('currency=EGP&budget_max=950000'), [d.id], 'budgets starting at or below 9,500.00');
  assertError(await s.get('/api/v1/requests?budget_min=100'), 422, 'validation_failed');
  assert.deepEqual(ids(assertSuccess(await s.get(`/api/v1/requests?q=laptop%20${tag}`))), [c.id, a.id], 'the text is one phrase');
  assert.deepEqual(ids(assertSuccess(await s.get(`/api/v1/requests?q=${encodeURIComponent('LAPTOP would')}`))).filter((i) => i === d.id), [d.id],
    'case does not matter; the description counts');
  const near = assertSuccess(await s.get(`/api/v1/requests?q=${tag}&lat=30.0444&lng=31.2357&radius_km=20`));
  assert.deepEqual(ids(near), [c.id], 'Cairo within 20 km; Alexandria and the request without a point are not');
  assert.ok(near[0].distance_km < 5);
  assertError(await s.get('/api/v1/requests?lat=30&lng=31'), 422, 'validation_failed');
  assert.deepEqual(await q('sort=ending_soon'), [c.id, d.id, a.id]);
  // pages of one, following the cursor, in both orders
  for (const sort of ['newest', 'ending_soon']) {
    const seen = [];
    let cursor = null;
    do {
      const res = await s.get(`/api/v1/requests?q=${tag}&sort=${sort}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...ids(assertSuccess(res)));
      cursor = res.json.meta.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, await q(`sort=${sort}`), sort);
  }
  assertError(await s.get('/api/v1/requests?cursor=not-a-cursor'), 422, 'validation_failed');
  assertError(await s.get('/api/v1/requests?sort=cheapest'), 422, 'validation_failed');
  assertError(await s.get('/api/v1/requests?status=cancelled'), 422, 'validation_failed');
  assertError(await s.get('/api/v1/requests?mine=true'), 401, 'unauthenticated');
});

test('the buyer edits a request while it has no offer; then it is 409 and unchanged', async () => {
  const r = await postRequest(s, buyer);
  const changed = assertSuccess(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { title: 'iPhone 13 or 14', budget_max: 2_500_000 }, ...auth(buyer) }));
  assert.equal(changed.title, 'iPhone 13 or 14');
  assert.equal(changed.budget_max, 2_500_000);
  assertError(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { budget_min: 9_000_000 }, ...auth(buyer) }), 422, 'budget_range_invalid');
  assertError(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { title: 'mine now' }, ...auth(seller) }), 403, 'forbidden');
  assertError(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { process: 'escrow_purchase' }, ...auth(buyer) }), 422, 'validation_failed');
  assertError(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: {}, ...auth(buyer) }), 422, 'validation_failed');
  const o = await makeOffer(s, seller, r.id);
  assertError(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { title: 'changed after an offer' }, ...auth(buyer) }), 409, 'request_has_offers');
  assert.equal(assertSuccess(await s.get(`/api/v1/requests/${r.id}`)).title, 'iPhone 13 or 14');
  assertSuccess(await s.post(`/api/v1/offers/${o.id}/withdraw`, undefined, auth(seller)));
  assertSuccess(await s.request('PATCH', `/api/v1/requests/${r.id}`, { body: { title: 'no live offers again' }, ...auth(buyer) }));
});

test('offers: approved sellers only, within budget, one pending each, and the count stays exact', async () => {
  const r = await postRequest(s, buyer);
  const pending = await makePendingSeller(s);
  const plain = await register(s, 'plain');
  const gone = await makeSeller(s, admin, 'gone');
  await suspend(s, admin, gone);
  assertError(await s.post('/api/v1/offers', offerBody(r.id), auth(pending)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/offers', offerBody(r.id), auth(plain)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/offers', offerBody(r.id), auth(gone)), 403, 'account_suspended');
  assertError(await s.post('/api/v1/offers', offerBody(r.id)), 401, 'unauthenticated');
  const out = assertError(await s.post('/api/v1/offers', offerBody(r.id, { price: 2_000_001 }), auth(seller)), 422, 'offer_price_out_of_range');
  assert.deepEqual(out.details, { budget_min: 1_000_000, budget_max: 2_000_000, currency: 'EGP' });
  assertError(await s.post('/api/v1/offers', offerBody(r.id, { price: 999_999 }), auth(seller)), 422, 'offer_price_out_of_range');
  assertError(await s.post('/api/v1/offers', offerBody(r.id, { currency: 'USD' }), auth(seller)), 422, 'currency_mismatch');
  for (const price of [-5, 1500000.5, '1500000', 1e30])
    assertError(await s.post('/api/v1/offers', offerBody(r.id, { price }), auth(seller)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/offers', offerBody(r.id, { currency: 'EGPP' }), auth(seller)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/offers', offerBody('req_00000000000000000000000000'), auth(seller)), 404, 'not_found');
  await assertEqualCount(r.id, 0);
  const o = await makeOffer(s, seller, r.id);
  assert.equal(o.status, 'pending');
  assert.equal(o.seller.id, seller.id);
  assert.deepEqual(o.seller.rating.as_seller, { count: 0, average: null }, 'offers embed the seller and their rating');
  assert.equal(o.valid_until, assertSuccess(await s.get(`/api/v1/requests/${r.id}`)).expires_at, 'valid as long as the request');
  assertError(await s.post('/api/v1/offers', offerBody(r.id), auth(seller)), 409, 'duplicate_offer');
  await makeOffer(s, seller2, r.id, { price: 1_200_000 });
  await assertEqualCount(r.id, 2);
  // a request open for 60 days: its offers last the longest an offer may, 30 days
  const long = await postRequest(s, buyer, { expires_at: new Date(Date.now() + 60 * 86400_000).toISOString() });
  const capped = await makeOffer(s, seller, long.id);
  const days = (Date.parse(capped.valid_until) - Date.now()) / 86400_000;
  assert.ok(days > 29.9 && days <= 30, `valid for ${days} days`);
  assertError(await s.post('/api/v1/offers', offerBody(long.id, { valid_until: new Date(Date.now() + 31 * 86400_000).toISOString() }), auth(seller2)),
    422, 'validation_failed');
  // a seller who buys cannot offer on their own request
  const own = await postRequest(s, seller);
  assertError(await s.post('/api/v1/offers', offerBody(own.id), auth(seller)), 403, 'own_request');
  assert.deepEqual(await events(s, o.id), ['offer.created']);
  const [ev] = await events(s, o.id, { full: true });
  assert.deepEqual([ev.payload.buyer_id, ev.payload.seller_id, ev.payload.request_id], [buyer.id, seller.id, r.id]);
});

async function assertEqualCount(requestId, n) {
  assert.equal(assertSuccess(await s.get(`/api/v1/requests/${requestId}`, auth(buyer))).offer_count, n);
}

test('the buyer sees every offer; a seller only their own; withdrawing is the seller\'s, once', async () => {
  const r = await postRequest(s, buyer);
  const o1 = await makeOffer(s, seller, r.id);
  const o2 = await makeOffer(s, seller2, r.id, { price: 1_100_000 });
  const ids = async (who) => assertSuccess(await s.get(`/api/v1/requests/${r.id}/offers`, auth(who))).map((o) => o.id);
  assert.deepEqual(await ids(buyer), [o2.id, o1.id]);
  assert.deepEqual(await ids(admin), [o2.id, o1.id]);
  assert.deepEqual(await ids(seller), [o1.id]);
  assert.deepEqual(await ids(seller2), [o2.id]);
  assert.deepEqual(await ids(await register(s, 'nosy')), []);
  assertError(await s.get(`/api/v1/requests/${r.id}/offers`), 401, 'unauthenticated');
  assertSuccess(await s.get(`/api/v1/offers/${o1.id}`, auth(buyer)));
  assertError(await s.get(`/api/v1/offers/${o1.id}`, auth(seller2)), 404, 'not_found');
  assertError(await s.post(`/api/v1/offers/${o1.id}/withdraw`, undefined, auth(buyer)), 403, 'forbidden');
  assertError(await s.post(`/api/v1/offers/${o1.id}/withdraw`, undefined, auth(seller2)), 404, 'not_found');
  assert.equal(assertSuccess(await s.post(`/api/v1/offers/${o1.id}/withdraw`, undefined, auth(seller))).status, 'withdrawn');
  assertError(await s.post(`/api/v1/offers/${o1.id}/withdraw`, undefined, auth(seller)), 409, 'offer_not_pending');
  await assertEqualCount(r.id, 1);
  // after withdrawing, the seller may offer again
  await makeOffer(s, seller, r.id, { price: 1_300_000 });
  await assertEqualCount(r.id, 2);
});

test('accepting makes a deal in one step: offer accepted, others rejected, request closed, events for each', async () => {
  const r = await postRequest(s, buyer);
  const o1 = await makeOffer(s, seller, r.id);
  const o2 = await makeOffer(s, seller2, r.id, { price: 1_100_000 });
  assertError(await s.post(`/api/v1/offers/${o1.id}/accept`, undefined, auth(seller)), 403, 'forbidden');
  assertError(await s.post(`/api/v1/offers/${o1.id}/accept`, undefined, auth(seller2)), 404, 'not_found');
  assertError(await s.post(`/api/v1/offers/${o1.id}/accept`), 401, 'unauthenticated');
  const deal = assertSuccess(await s.post(`/api/v1/offers/${o1.id}/accept`, undefined, auth(buyer)));
  assert.match(deal.id, /^deal_/);
  assert.equal(deal.state, 'accepted');
  assert.deepEqual(deal.process, { name: 'negotiation', version: 2 });
  assert.equal(deal.amount, 1_500_000);
  assert.deepEqual([deal.buyer.id, deal.seller.id], [buyer.id, seller.id]);
  assert.equal(deal.offer.id, o1.id);
  assert.equal(deal.offer.status, 'accepted');
  assert.equal(deal.request.id, r.id);
  assert.deepEqual(deal.next_transitions.map((t) => t.name), ['cancel']);
  assert.deepEqual(deal.history.map((h) => [h.transition, h.to, h.actor.type]), [['created', 'accepted', 'buyer']]);
  const req = assertSuccess(await s.get(`/api/v1/requests/${r.id}`, auth(buyer)));
  assert.equal(req.status, 'closed');
  assert.equal(req.accepted_offer_id, o1.id);
  assert.equal(assertSuccess(await s.get(`/api/v1/offers/${o2.id}`, auth(seller2))).status_reason, 'another_offer_accepted');
  // the closed request stays visible to the sellers who offered, not to others
  assertSuccess(await s.get(`/api/v1/requests/${r.id}`, auth(seller2)));
  assertError(await s.get(`/api/v1/requests/${r.id}`), 404, 'not_found');
  assertError(await s.post(`/api/v1/offers/${o1.id}/accept`, undefined, auth(buyer)), 409, 'offer_not_pending');
  assertError(await s.post(`/api/v1/offers/${o2.id}/accept`, undefined, auth(buyer)), 409, 'offer_not_pending');
  assertError(await s.post('/api/v1/offers', offerBody(r.id), auth(seller2)), 409, 'request_not_active');
  assert.deepEqual(await events(s, o1.id), ['offer.created', 'offer.accepted']);
  assert.deepEqual(await events(s, o2.id), ['offer.created', 'offer.rejected']);
  assert.deepEqual(await events(s, r.id), ['request.created', 'request.closed']);
  assert.deepEqual(await events(s, deal.id), ['deal.created', 'notification.requested']);
  const [note] = await events(s, deal.id, { type: 'notification.', full: true });
  assert.deepEqual(note.payload.recipients, [seller.id], 'the buyer who accepted needs no news of it');
  // both parties find it; its id works on the transaction routes; others get 404
  assert.ok(assertSuccess(await s.get('/api/v1/deals', auth(seller))).some((d) => d.id === deal.id));
  assert.ok(assertSuccess(await s.get('/api/v1/deals?role=buyer', auth(buyer))).some((d) => d.id === deal.id));
  assert.ok(!assertSuccess(await s.get('/api/v1/deals?role=seller', auth(buyer))).some((d) => d.id === deal.id));
  assert.equal(assertSuccess(await s.get(`/api/v1/transactions/${deal.id}`, auth(seller))).state, 'accepted');
  assertSuccess(await s.get(`/api/v1/deals/${deal.id}`, auth(admin)));
  assertError(await s.get(`/api/v1/deals/${deal.id}`, auth(seller2)), 404, 'not_found');
  assertError(await s.get(`/api/v1/transactions/${deal.id}`, auth(seller2)), 404, 'not_found');
});

test('an offer from a seller suspended since cannot be accepted', async () => {
  const r = await postRequest(s, buyer);
  const later = await makeSeller(s, admin, 'later-suspended');
  const o = await makeOffer(s, later, r.id);
  await suspend(s, admin, later);
  assertError(await s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(buyer)), 409, 'seller_unavailable');
  assert.equal(assertSuccess(await s.get(`/api/v1/requests/${r.id}`)).status, 'active', 'nothing changed');
});

test('cancelling a request rejects its pending offers; only its buyer, or an admin with a reason', async () => {
  const r = await postRequest(s, buyer);
  const o = await makeOffer(s, seller, r.id);
  assertError(await s.post(`/api/v1/requests/${r.id}/cancel`, {}, auth(seller)), 403, 'forbidden');
  assertError(await s.post(`/api/v1/requests/${r.id}/cancel`, {}, auth(admin)), 422, 'validation_failed');
  const c = assertSuccess(await s.post(`/api/v1/requests/${r.id}/cancel`, { reason: 'bought elsewhere' }, auth(buyer)));
  assert.equal(c.status, 'cancelled');
  assert.equal(c.cancel_reason, 'bought elsewhere');
  assert.equal(assertSuccess(await s.get(`/api/v1/offers/${o.id}`, auth(seller))).status_reason, 'request_cancelled');
  assertError(await s.post(`/api/v1/requests/${r.id}/cancel`, {}, auth(buyer)), 409, 'request_not_active');
  assertError(await s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(buyer)), 409, 'offer_not_pending');
  assert.ok((await mine(buyer)).some((x) => x.id === r.id && x.status === 'cancelled'), 'mine=true lists it');
  const r2 = await postRequest(s, buyer);
  assertSuccess(await s.post(`/api/v1/requests/${r2.id}/cancel`, { reason: 'prohibited item' }, auth(admin)));
  const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${r2.id}`, auth(admin)));
  assert.deepEqual(log.map((e) => e.action), ['request.cancel']);
});

test('requests and offers expire by themselves', async () => {
  // Five seconds of slack: under a loaded machine the offers must still
  // arrive before the request closes.
  const deadline = Date.now() + 5000;
  const r = await postRequest(s, buyer, { expires_at: new Date(deadline).toISOString() });
  const o = await makeOffer(s, seller, r.id);
  const r2 = await postRequest(s, buyer);
  const o2 = await makeOffer(s, seller, r2.id, { valid_until: new Date(deadline).toISOString() });
  await sleep(deadline - Date.now() + 100);
  assertError(await s.post(`/api/v1/offers/${o2.id}/accept`, undefined, auth(buyer)), 409, 'offer_not_pending');
  await eventually('the request expiring', async () =>
    assertSuccess(await s.get(`/api/v1/requests/${r.id}`, auth(buyer))).status === 'expired');
  await eventually('its offer expiring', async () =>
    (await events(s, r.id)).includes('request.expired') || await events(s, r.id));
  assert.equal(assertSuccess(await s.get(`/api/v1/offers/${o.id}`, auth(seller))).status_reason, 'request_expired');
  await eventually('the short offer expiring', async () => (await events(s, o2.id)).includes('offer.expired'));
  assert.ok(!assertSuccess(await s.get('/api/v1/requests?limit=100')).some((x) => x.id === r.id), 'gone from the open list');
});

test('a seller\'s feed: open requests in their categories, not their own; approved sellers only', async () => {
  const cat = `cat-${Date.now()}`;
  const feeder = await makeSeller(s, admin, 'feeder', [cat]);
  const wanted = await postRequest(s, buyer, { category: cat });
  await postRequest(s, buyer, { category: `${cat}-other` });
  await postRequest(s, feeder, { category: cat });
  assert.deepEqual(assertSuccess(await s.get('/api/v1/requests/feed', auth(feeder))).map((r) => r.id), [wanted.id]);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/seller/categories', auth(feeder))), { categories: [cat] });
  assertError(await s.get('/api/v1/requests/feed', auth(buyer)), 403, 'forbidden');
  assertError(await s.request('PUT', '/api/v1/seller/categories', { body: { categories: ['x'] }, ...auth(buyer) }), 403, 'forbidden');
  assertError(await s.request('PUT', '/api/v1/seller/categories', { body: { categories: ['Not A Slug'] }, ...auth(feeder) }), 422, 'validation_failed');
  const none = await makeSeller(s, admin, 'no-categories');
  assert.deepEqual(assertSuccess(await s.get('/api/v1/requests/feed', auth(none))), []);
});

test('race: ten accepts on one request at once make exactly one deal', async () => {
  const r = await postRequest(s, buyer);
  const sellers = [seller, seller2, ...await Promise.all([1, 2, 3].map((i) => makeSeller(s, admin, `racer${i}`)))];
  const offers = [];
  for (const x of sellers) offers.push(await makeOffer(s, x, r.id));
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    s.post(`/api/v1/offers/${offers[i % offers.length].id}/accept`, undefined, auth(buyer))));
  const won = results.filter((x) => x.status === 200);
  assert.equal(won.length, 1, results.map((x) => `${x.status} ${x.json?.error?.code ?? ''}`).join(', '));
  for (const x of results.filter((y) => y.status !== 200))
    assert.ok(['offer_not_pending', 'request_not_active'].includes(assertError(x, 409, x.json.error.code).code));
  const statuses = assertSuccess(await s.get(`/api/v1/requests/${r.id}/offers`, auth(buyer))).map((o) => o.status).sort();
  assert.deepEqual(statuses, ['accepted', 'rejected', 'rejected', 'rejected', 'rejected']);
  const deals = (await events(s, '', { type: 'deal.created', full: true })).filter((e) => e.payload.subject_id && offers.some((o) => o.id === e.payload.subject_id));
  assert.equal(deals.length, 1, 'one deal.created event');
});

test('race: an accept against a withdraw of the same offer ends one way or the other, consistently', async () => {
  const outcomes = new Set();
  for (let i = 0; i < 8; i++) {
    const r = await postRequest(s, buyer);
    const o = await makeOffer(s, seller, r.id);
    const [acc, wd] = await Promise.all([
      s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(buyer)),
      s.post(`/api/v1/offers/${o.id}/withdraw`, undefined, auth(seller)),
    ]);
    const req = assertSuccess(await s.get(`/api/v1/requests/${r.id}`, auth(buyer)));
    const offer = assertSuccess(await s.get(`/api/v1/offers/${o.id}`, auth(buyer)));
    if (acc.status === 200) {
      assertError(wd, 409, 'offer_not_pending');
      assert.deepEqual([req.status, offer.status, req.offer_count], ['closed', 'accepted', 1]);
      outcomes.add('accepted');
    } else {
      assertError(acc, 409, 'offer_not_pending');
      assertSuccess(wd);
      assert.deepEqual([req.status, offer.status, req.offer_count], ['active', 'withdrawn', 0]);
      outcomes.add('withdrawn');
    }
  }
  assert.ok(outcomes.size >= 1);
});

test('race: twenty sellers offering while five withdraw leave offer_count exact', async () => {
  const r = await postRequest(s, buyer);
  const sellers = await Promise.all(Array.from({ length: 20 }, (_, i) => makeSeller(s, admin, `crowd${i}`)));
  const made = await Promise.all(sellers.map((x) => s.post('/api/v1/offers', offerBody(r.id), auth(x))));
  assert.deepEqual(made.map((x) => x.status), sellers.map(() => 201));
  const withdrawn = await Promise.all(made.slice(0, 5).map((x, i) =>
    s.post(`/api/v1/offers/${x.json.data.id}/withdraw`, undefined, auth(sellers[i]))));
  const again = await Promise.all(sellers.slice(0, 10).map((x) => s.post('/api/v1/offers', offerBody(r.id), auth(x))));
  assert.deepEqual(withdrawn.map((x) => x.status), [200, 200, 200, 200, 200]);
  assert.deepEqual(again.map((x) => x.status).sort(), [201, 201, 201, 201, 201, 409, 409, 409, 409, 409]);
  const live = assertSuccess(await s.get(`/api/v1/requests/${r.id}/offers?limit=200`, auth(buyer))).filter((o) => o.status !== 'withdrawn').length;
  assert.equal(live, 20);
  await assertEqualCount(r.id, 20);
});

test('anonymous list pages are cached briefly: a node sees its own writes at once, another within the cache time', async () => {
  const a = await startSouq({ args: ['--list-cache-ms', '1500'] });
  const b = await startSouq({ database: a.dbUrl, args: ['--list-cache-ms', '1500'] });
  try {
    const who = await register(a, 'cached');
    const category = `cached-${Date.now()}`;
    const list = async (node, o) => assertSuccess(await node.get(`/api/v1/requests?category=${category}`, o)).map((r) => r.id);
    assert.deepEqual(await list(a), []);
    assert.deepEqual(await list(b), []);
    const r = assertSuccess(await a.post('/api/v1/requests', requestBody({ category }), auth(who)), 201);
    assert.deepEqual(await list(a), [r.id], 'the node that wrote clears its cache at commit');
    assert.deepEqual(await list(b, auth(who)), [r.id], 'signed-in callers read the database');
    const stale = await list(b);
    assert.ok(stale.length === 0 || stale[0] === r.id);
    await eventually('the other node\'s cached page expiring', async () => (await list(b))[0] === r.id || await list(b), 5000);
  } finally {
    await b.stop();
    await a.stop();
  }
});
