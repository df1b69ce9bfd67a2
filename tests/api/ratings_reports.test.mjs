// Ratings after completion (each side once, averages exact and embedded),
// reports and their decisions (audited, acting on the owner through
// identity), seed 000's admin KPIs, and the authorization matrix of every
// marketplace route × anonymous / buyer / pending seller / seller / suspended / admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, assertSuccess, assertError } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, makePendingSeller, suspend, postRequest, makeOffer, offerBody, requestBody, payDeal } from './people.mjs';

let s, admin, buyer, seller;
before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  buyer = await register(s, 'buyer');
  seller = await makeSeller(s, admin, 'seller');
});
after(async () => { await s?.stop(); });

const take = (id, name, who, body) => s.post(`/api/v1/transactions/${id}/transitions/${name}`, body, auth(who));

async function completedDeal(b = buyer, sel = seller) {
  const r = await postRequest(s, b);
  const o = await makeOffer(s, sel, r.id);
  const d = assertSuccess(await s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(b)));
  await payDeal(s, b, d);
  assertSuccess(await take(d.id, 'start', sel));
  assertSuccess(await take(d.id, 'deliver', sel));
  return { deal: d, request: r, offer: o };
}

test('each side rates the other once after completion; averages are exact and embedded in profiles and offers', async () => {
  const rated = await makeSeller(s, admin, 'rated');
  const { deal } = await completedDeal(buyer, rated);
  assertError(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score: 5 }, auth(buyer)), 409, 'ratings_not_open');
  assertSuccess(await take(deal.id, 'confirm', buyer));
  for (const score of [0, 6, 4.5, '5', null])
    assertError(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score }, auth(buyer)), 422, 'validation_failed');
  const outsider = await register(s, 'outsider');
  assertError(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score: 1 }, auth(outsider)), 404, 'not_found');
  const mine = assertSuccess(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score: 5, comment: 'Fast and honest' }, auth(buyer)), 201);
  assert.deepEqual([mine.ratee.id, mine.ratee_role, mine.score], [rated.id, 'seller', 5]);
  assertError(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score: 1 }, auth(buyer)), 409, 'already_rated');
  assertSuccess(await s.post(`/api/v1/transactions/${deal.id}/ratings`, { score: 3 }, auth(rated)), 201);
  const seen = assertSuccess(await s.get(`/api/v1/transactions/${deal.id}/ratings`, auth(rated)));
  assert.deepEqual([seen.open, seen.can_rate, seen.ratings.length], [true, false, 2]);
  const profile = assertSuccess(await s.get(`/api/v1/users/${rated.id}`));
  assert.deepEqual(profile.rating.as_seller, { count: 1, average: 5 });
  assert.ok(assertSuccess(await s.get(`/api/v1/users/${buyer.id}`)).rating.as_buyer.count >= 1, 'the seller rated the buyer');
  const received = assertSuccess(await s.get(`/api/v1/users/${rated.id}/ratings`));
  assert.deepEqual(received.map((x) => [x.score, x.comment, x.rater.id]), [[5, 'Fast and honest', buyer.id]]);
  // the seller's next offer carries the rating
  const r = await postRequest(s, buyer);
  assert.deepEqual((await makeOffer(s, rated, r.id)).seller.rating.as_seller, { count: 1, average: 5 });
});

test('race: five ratings by one party at once make one rating, and the count moves by one', async () => {
  const racer = await makeSeller(s, admin, 'rating-racer');
  const { deal } = await completedDeal(buyer, racer);
  assertSuccess(await take(deal.id, 'confirm', buyer));
  const results = await Promise.all([1, 2, 3, 4, 5].map((score) => s.post(`/api/v1/transactions/${deal.id}/ratings`, { score }, auth(buyer))));
  assert.deepEqual(results.map((x) => x.status).sort(), [201, 409, 409, 409, 409]);
  const winner = results.find((x) => x.status === 201).json.data.score;
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/users/${racer.id}`)).rating.as_seller, { count: 1, average: winner });
});

test('reports: anyone signed in reports a user, request or offer; duplicates, self-reports and unknown targets are refused', async () => {
  const reporter = await register(s, 'reporter');
  const shady = await makeSeller(s, admin, 'shady');
  const r = await postRequest(s, buyer);
  const o = await makeOffer(s, shady, r.id);
  const made = [];
  for (const [target_type, target_id, owner] of [['user', shady.id, shady.id], ['request', r.id, buyer.id], ['offer', o.id, shady.id]]) {
    const rep = assertSuccess(await s.post('/api/v1/reports', { target_type, target_id, reason: 'fraud' }, auth(reporter)), 201);
    assert.deepEqual(rep.target, { type: target_type, id: target_id, owner_id: owner });
    assert.equal(rep.status, 'open');
    made.push(rep);
  }
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: shady.id, reason: 'spam' }, auth(reporter)), 409, 'already_reported');
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: reporter.id, reason: 'spam' }, auth(reporter)), 422, 'cannot_report_self');
  assertError(await s.post('/api/v1/reports', { target_type: 'offer', target_id: o.id, reason: 'spam' }, auth(shady)), 422, 'cannot_report_self');
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: 'usr_00000000000000000000000000', reason: 'spam' }, auth(reporter)), 404, 'not_found');
  assertError(await s.post('/api/v1/reports', { target_type: 'planet', target_id: shady.id, reason: 'spam' }, auth(reporter)), 422, 'unknown_target_type');
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: shady.id, reason: 'vibes' }, auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: shady.id, reason: 'other' }, auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/reports', { target_type: 'user', target_id: shady.id, reason: 'spam' }), 401, 'unauthenticated');
  const open = assertSuccess(await s.get('/api/v1/admin/reports', auth(admin))).map((x) => x.id);
  for (const rep of made) assert.ok(open.includes(rep.id));
  assert.deepEqual(assertSuccess(await s.get('/api/v1/admin/reports?target_type=offer', auth(admin))).map((x) => x.id).filter((id) => made.some((m) => m.id === id)), [made[2].id]);
});

test('deciding reports: dismiss, warn or suspend the owner, each audited with the action in one step, once', async () => {
  const reporter = await register(s, 'reporter2');
  const rude = await register(s, 'rude');
  const thief = await makeSeller(s, admin, 'thief');
  const innocent = await register(s, 'innocent');
  const report = async (target) => assertSuccess(await s.post('/api/v1/reports', { target_type: 'user', target_id: target.id, reason: 'abuse' }, auth(reporter)), 201);
  const r1 = await report(innocent), r2 = await report(rude), r3 = await report(thief);
  assertError(await s.post(`/api/v1/admin/reports/${r1.id}/dismiss`, {}, auth(buyer)), 403, 'forbidden');
  assert.equal(assertSuccess(await s.post(`/api/v1/admin/reports/${r1.id}/dismiss`, { note: 'no evidence' }, auth(admin))).status, 'dismissed');
  assertError(await s.post(`/api/v1/admin/reports/${r1.id}/warn`, { note: 'changed my mind' }, auth(admin)), 409, 'report_decided');
  assertError(await s.post(`/api/v1/admin/reports/${r2.id}/warn`, {}, auth(admin)), 422, 'validation_failed');
  const warned = assertSuccess(await s.post(`/api/v1/admin/reports/${r2.id}/warn`, { note: 'keep it civil' },
    { headers: { ...auth(admin).headers, 'X-Request-Id': 'decide-r2' } }));
  assert.deepEqual([warned.status, warned.decision, warned.decided_by], ['actioned', 'warn', admin.id]);
  const trail = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${rude.id}`, auth(admin)));
  assert.deepEqual(trail.map((e) => [e.action, e.reason, e.request_id]), [['user.warn', 'keep it civil', 'decide-r2']]);
  assert.equal(assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${r2.id}`, auth(admin)))[0].action, 'report.warn');
  assertSuccess(await s.get('/api/v1/users/me', auth(thief)));
  assertSuccess(await s.post(`/api/v1/admin/reports/${r3.id}/suspend`, { note: 'stolen goods' }, auth(admin)));
  assertError(await s.get('/api/v1/users/me', auth(thief)), 403, 'account_suspended');
  // a decision that fails changes nothing: the owner is already suspended
  const again = await s.post('/api/v1/reports', { target_type: 'user', target_id: thief.id, reason: 'fraud' }, auth(buyer));
  const r4 = assertSuccess(again, 201);
  assertError(await s.post(`/api/v1/admin/reports/${r4.id}/suspend`, { note: 'again' }, auth(admin)), 409, 'already_suspended');
  assert.equal(assertSuccess(await s.get(`/api/v1/admin/reports/${r4.id}`, auth(admin))).status, 'open');
});

test('admin statistics per day: requests, offers, deals, completions and the rate', async () => {
  const statsBuyer = await register(s, 'stats');
  const { deal } = await completedDeal(statsBuyer, seller);
  assertSuccess(await take(deal.id, 'confirm', statsBuyer));
  const r = await postRequest(s, statsBuyer);
  const o = await makeOffer(s, seller, r.id);
  const cancelled = assertSuccess(await s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(statsBuyer)));
  assertSuccess(await take(cancelled.id, 'cancel', statsBuyer, { reason: 'found it cheaper' }));
  const today = new Date().toISOString().slice(0, 10);
  const stats = assertSuccess(await s.get(`/api/v1/admin/stats?from=${today}&to=${today}`, auth(admin)));
  assert.equal(stats.days.length, 1);
  const d = stats.days[0];
  assert.equal(d.day, today);
  assert.ok(d.requests >= 2 && d.offers >= 2 && d.deals >= 2, JSON.stringify(d));
  assert.ok(d.deals_completed >= 1 && d.deals_cancelled >= 1, JSON.stringify(d));
  assert.equal(d.completion_rate, d.deals_completed / (d.deals_completed + d.deals_cancelled));
  assert.equal(assertSuccess(await s.get('/api/v1/admin/stats', auth(admin))).days.length, 30, 'the last thirty days by default');
  assertError(await s.get('/api/v1/admin/stats?from=yesterday', auth(admin)), 422, 'validation_failed');
  assertError(await s.get(`/api/v1/admin/stats?from=2020-01-01&to=${today}`, auth(admin)), 422, 'validation_failed');
  assertError(await s.get('/api/v1/admin/stats', auth(buyer)), 403, 'forbidden');
});

test('authorization matrix: each marketplace route answers each kind of caller as it should', async () => {
  const A = ['anonymous', 'buyer', 'pending', 'seller', 'suspended', 'admin'];
  const actors = { anonymous: null, buyer: await register(s, 'm-buyer'), pending: await makePendingSeller(s, 'm-pending'),
    seller: await makeSeller(s, admin, 'm-seller', ['phones']), suspended: await makeSeller(s, admin, 'm-suspended'), admin };
  const owner = await register(s, 'm-owner');
  const req = await postRequest(s, owner);
  const offer = await makeOffer(s, actors.seller, req.id);
  const other = await makeSeller(s, admin, 'm-other');
  const dealReq = await postRequest(s, owner);
  const dealOffer = await makeOffer(s, other, dealReq.id);
  const deal = assertSuccess(await s.post(`/api/v1/offers/${dealOffer.id}/accept`, undefined, auth(owner)));
  await suspend(s, admin, actors.suspended);
  // [name, method, path, body, expected status per actor in A's order (null: not checked)]
  const rows = [
    ['list open requests', 'GET', '/api/v1/requests', undefined, [200, 200, 200, 200, 403, 200]],
    ['read an open request', 'GET', `/api/v1/requests/${req.id}`, undefined, [200, 200, 200, 200, 403, 200]],
    ['post a request', 'POST', '/api/v1/requests', requestBody(), [401, 201, 201, 201, 403, 201]],
    ['edit someone\'s request', 'PATCH', `/api/v1/requests/${req.id}`, { title: 'taken over' }, [401, 403, 403, 403, 403, 403]],
    ['cancel someone\'s request', 'POST', `/api/v1/requests/${dealReq.id}/cancel`, { reason: 'not mine' }, [401, 404, 404, 404, 403, 409]],
    ['the seller feed', 'GET', '/api/v1/requests/feed', undefined, [401, 403, 403, 200, 403, 403]],
    ['offers on a request', 'GET', `/api/v1/requests/${req.id}/offers`, undefined, [401, 200, 200, 200, 403, 200]],
    ['make an offer', 'POST', '/api/v1/offers', offerBody(req.id, { price: 1_100_000 }), [401, 403, 403, 409, 403, 403]],
    ['read an offer', 'GET', `/api/v1/offers/${offer.id}`, undefined, [401, 404, 404, 200, 403, 200]],
    ['accept someone\'s offer', 'POST', `/api/v1/offers/${dealOffer.id}/accept`, undefined, [401, 404, 404, 404, 403, 409]],
    ['withdraw someone\'s offer', 'POST', `/api/v1/offers/${dealOffer.id}/withdraw`, undefined, [401, 404, 404, 404, 403, 404]],
    ['list deals', 'GET', '/api/v1/deals', undefined, [401, 200, 200, 200, 403, 200]],
    ['read someone\'s deal', 'GET', `/api/v1/deals/${deal.id}`, undefined, [401, 404, 404, 404, 403, 200]],
    ['read someone\'s transaction', 'GET', `/api/v1/transactions/${deal.id}`, undefined, [401, 404, 404, 404, 403, 200]],
    ['step someone\'s deal', 'POST', `/api/v1/transactions/${deal.id}/transitions/start`, undefined, [401, 404, 404, 404, 403, 403]],
    ['read the processes', 'GET', '/api/v1/processes', undefined, [200, 200, 200, 200, 200, 200]],
    ['rate someone\'s deal', 'POST', `/api/v1/transactions/${deal.id}/ratings`, { score: 5 }, [401, 404, 404, 404, 403, 404]],
    ['ratings of someone\'s deal', 'GET', `/api/v1/transactions/${deal.id}/ratings`, undefined, [401, 404, 404, 404, 403, 200]],
    ['a user\'s ratings', 'GET', `/api/v1/users/${owner.id}/ratings`, undefined, [200, 200, 200, 200, 403, 200]],
    ['set seller categories', 'PUT', '/api/v1/seller/categories', { categories: ['phones'] }, [401, 403, 403, 200, 403, 403]],
    ['report a user', 'POST', '/api/v1/reports', { target_type: 'user', target_id: owner.id, reason: 'spam' }, [401, 201, 201, 201, 403, 201]],
    ['list reports', 'GET', '/api/v1/admin/reports', undefined, [401, 403, 403, 403, 403, 200]],
    ['statistics', 'GET', '/api/v1/admin/stats', undefined, [401, 403, 403, 403, 403, 200]],
  ];
  const failures = [];
  for (const [name, method, urlPath, body, expected] of rows) {
    for (let i = 0; i < A.length; i++) {
      if (expected[i] === null) continue;
      const res = await s.request(method, urlPath, { body, ...auth(actors[A[i]]) });
      if (res.status !== expected[i]) failures.push(`${name} as ${A[i]}: ${res.status} (expected ${expected[i]}) ${res.text.slice(0, 140)}`);
      if (A[i] === 'suspended' && expected[i] === 403 && res.status === 403) assert.equal(res.json?.error?.code, 'account_suspended', name);
      if (A[i] === 'anonymous' && expected[i] === 401 && res.status === 401) assert.equal(res.json?.error?.code, 'unauthenticated', name);
    }
  }
  assert.deepEqual(failures, []);
});
