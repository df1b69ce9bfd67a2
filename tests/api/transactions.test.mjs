// The process engine: the built-in processes driven through their states by
// the right actors (and refused to the wrong ones), operator steps audited,
// an operator's own processes from --processes with timers that fire once,
// versions that keep running transactions on their own definition, and
// faulty definitions that stop start-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startSouq, startWorker, assertSuccess, assertError, sleep, SOUQ_BIN } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, postRequest, makeOffer, events, eventually, payDeal, fundWallet } from './people.mjs';

let s, admin, buyer, seller, outsider;
before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  buyer = await register(s, 'buyer');
  seller = await makeSeller(s, admin, 'seller');
  outsider = await register(s, 'outsider');
});
after(async () => { await s?.stop(); });

async function newDeal(server = s, who = { admin, buyer, seller }, over = {}) {
  const r = await postRequest(server, who.buyer, over);
  const o = await makeOffer(server, who.seller, r.id);
  return assertSuccess(await server.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(who.buyer)));
}

const take = (id, name, who, body, server = s) =>
  server.post(`/api/v1/transactions/${id}/transitions/${name}`, body, auth(who));

function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-processes-'));
  after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('the built-in processes are described for clients', async () => {
  const list = assertSuccess(await s.get('/api/v1/processes'));
  assert.deepEqual(list.map((p) => p.name).sort(), ['escrow_purchase', 'negotiation', 'purchase']);
  const n = assertSuccess(await s.get('/api/v1/processes/negotiation'));
  assert.equal(n.initial, 'accepted');
  assert.deepEqual(n.versions, [2]);
  assert.deepEqual(n.on_create.map((a) => a.action), ['close_request', 'reject_other_offers', 'notify']);
  const auto = n.transitions.find((t) => t.name === 'auto_complete');
  assert.deepEqual(auto.timer, { after: 'P3D', after_seconds: 259200, since: 'entered:delivered' });
  assert.deepEqual(auto.actors, ['system']);
  assert.deepEqual(n.transitions.find((t) => t.name === 'operator_cancel').from, ['accepted']);
  const pay = n.transitions.find((t) => t.name === 'pay');
  assert.deepEqual([pay.from, pay.to, pay.actors, pay.actions.map((a) => a.action)],
    [['accepted'], 'paid', ['system'], ['hold_payment', 'notify']]);
  assertError(await s.get('/api/v1/processes/nope'), 404, 'not_found');
  assertError(await s.get('/api/v1/processes/negotiation?version=9'), 404, 'not_found');
  assertError(await s.get('/api/v1/processes/negotiation?version=x'), 422, 'validation_failed');
});

test('a negotiated deal moves accepted → paid → in progress → delivered → completed, each step by its actor', async () => {
  const deal = await newDeal();
  const id = deal.id;
  assertError(await take(id, 'start', buyer), 403, 'forbidden');
  assertError(await take(id, 'start', seller), 409, 'invalid_transition');
  assertError(await take(id, 'pay', buyer), 403, 'forbidden');
  assertError(await take(id, 'deliver', seller), 409, 'invalid_transition');
  assertError(await take(id, 'fly', seller), 404, 'unknown_transition');
  assertError(await take(id, 'start', outsider), 404, 'not_found');
  assertError(await take(id, 'start'), 401, 'unauthenticated');
  assertError(await take(id, 'auto_complete', buyer), 403, 'forbidden');
  assert.equal((await payDeal(s, buyer, deal)).state, 'paid');
  const started = assertSuccess(await s.post(`/api/v1/transactions/${id}/transitions/start`, undefined,
    { headers: { ...auth(seller).headers, 'X-Request-Id': 'start-work-1' } }));
  assert.equal(started.state, 'in_progress');
  assert.deepEqual(started.next_transitions.map((t) => t.name).sort(), ['deliver', 'dispute', 'refund']);
  const delivered = assertSuccess(await take(id, 'deliver', seller));
  assert.deepEqual(delivered.next_transitions.map((t) => t.name), ['dispute'], 'the seller waits for the buyer now');
  const seen = assertSuccess(await s.get(`/api/v1/transactions/${id}`, auth(buyer)));
  assert.deepEqual(seen.next_transitions.map((t) => t.name), ['confirm', 'dispute']);
  assert.equal(seen.timers.length, 1);
  assert.equal(seen.timers[0].transition, 'auto_complete');
  const due = Date.parse(seen.timers[0].due_at) - Date.parse(seen.state_entered_at);
  assert.equal(due, 3 * 86400_000, 'three days after delivery');
  const done = assertSuccess(await take(id, 'confirm', buyer));
  assert.equal(done.state, 'completed');
  assert.equal(done.terminal, true);
  assert.ok(done.ended_at);
  assert.deepEqual(done.history.map((h) => [h.transition, h.from, h.to, h.actor.type, h.actor.id]), [
    ['created', null, 'accepted', 'buyer', buyer.id],
    ['pay', 'accepted', 'paid', 'system', null],
    ['start', 'paid', 'in_progress', 'seller', seller.id],
    ['deliver', 'in_progress', 'delivered', 'seller', seller.id],
    ['confirm', 'delivered', 'completed', 'buyer', buyer.id],
  ]);
  assert.equal(done.history[2].request_id, 'start-work-1', 'the history names the request');
  assertError(await take(id, 'cancel', buyer, { reason: 'changed my mind' }), 409, 'invalid_transition');
  assert.deepEqual((await events(s, id)).filter((t) => t.startsWith('deal.')),
    ['deal.created', 'deal.pay', 'deal.start', 'deal.deliver', 'deal.confirm']);
  const [ev] = await events(s, id, { type: 'deal.deliver', full: true });
  assert.deepEqual([ev.payload.from, ev.payload.to, ev.payload.actor_type, ev.payload.buyer_id], ['in_progress', 'delivered', 'seller', buyer.id]);
  const notes = await events(s, id, { type: 'notification.', full: true });
  assert.ok(notes.some((n) => n.payload.transition === 'deliver' && n.payload.recipients[0] === buyer.id));
});

test('cancelling needs a reason; an operator may cancel an unpaid deal and refund a paid one, audited', async () => {
  const a = await newDeal();
  assertError(await take(a.id, 'cancel', seller), 422, 'validation_failed');
  assertError(await take(a.id, 'cancel', seller, { reason: 'no' }), 422, 'validation_failed');
  const c = assertSuccess(await take(a.id, 'cancel', seller, { reason: 'out of stock' }));
  assert.equal(c.state, 'cancelled');
  assert.equal(c.history.at(-1).reason, 'out of stock');
  const b = await newDeal();
  assertError(await take(b.id, 'operator_cancel', buyer, { reason: 'please' }), 403, 'forbidden');
  const viewed = assertSuccess(await s.get(`/api/v1/transactions/${b.id}`, auth(admin)));
  assert.deepEqual(viewed.my_roles, ['operator']);
  assert.deepEqual(viewed.next_transitions.map((t) => t.name), ['operator_cancel']);
  const op = assertSuccess(await take(b.id, 'operator_cancel', admin, { reason: 'fraud confirmed' }));
  assert.deepEqual([op.state, op.history.at(-1).actor.type, op.history.at(-1).actor.id], ['cancelled', 'operator', admin.id]);
  const log = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${b.id}`, auth(admin)));
  assert.deepEqual(log.map((e) => [e.action, e.reason, e.details.from, e.details.to]),
    [['deal.operator_cancel', 'fraud confirmed', 'accepted', 'cancelled']]);
  // Once paid, cancelling is a refund: the held money goes back to the buyer.
  const c2 = await newDeal();
  await payDeal(s, buyer, c2);
  assertSuccess(await take(c2.id, 'start', seller));
  assertError(await take(c2.id, 'operator_cancel', admin, { reason: 'fraud' }), 409, 'invalid_transition');
  const before = assertSuccess(await s.get('/api/v1/wallets', auth(buyer))).find((w) => w.currency === 'EGP');
  assert.equal(before.held >= c2.amount, true);
  const refunded = assertSuccess(await take(c2.id, 'refund', admin, { reason: 'fraud confirmed' }));
  assert.equal(refunded.state, 'refunded');
  const afterRefund = assertSuccess(await s.get('/api/v1/wallets', auth(buyer))).find((w) => w.currency === 'EGP');
  assert.deepEqual([afterRefund.held, afterRefund.available], [before.held - c2.amount, before.available + c2.amount]);
});

test('a dispute goes to an operator, who resolves it', async () => {
  const d = await newDeal();
  await payDeal(s, buyer, d);
  assertSuccess(await take(d.id, 'start', seller));
  assertSuccess(await take(d.id, 'deliver', seller));
  assertSuccess(await take(d.id, 'dispute', buyer, { reason: 'the screen is cracked' }));
  assertError(await take(d.id, 'resolve_complete', seller, { reason: 'it was fine' }), 403, 'forbidden');
  assert.equal(assertSuccess(await take(d.id, 'resolve_cancel', admin, { reason: 'photos show damage' })).state, 'refunded');
});

test('racing transitions: of ten identical steps at once, one wins and the rest are 409', async () => {
  const d = await newDeal();
  await payDeal(s, buyer, d);
  const results = await Promise.all(Array.from({ length: 10 }, () => take(d.id, 'start', seller)));
  assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => r.status).join(','));
  for (const r of results.filter((x) => x.status !== 200)) assertError(r, 409, 'invalid_transition');
  const after = assertSuccess(await s.get(`/api/v1/transactions/${d.id}`, auth(seller)));
  assert.equal(after.history.filter((h) => h.transition === 'start').length, 1);
  // a refund by the seller and delivery by the seller at the same time: one of them
  const [refund, deliver] = await Promise.all([take(d.id, 'refund', seller, { reason: 'cannot finish' }), take(d.id, 'deliver', seller)]);
  assert.equal([refund.status, deliver.status].filter((x) => x === 200).length, 1, `${refund.status} ${deliver.status}`);
});

test('seed 004: an escrowed purchase request is funded, delivered and released, or disputed and refunded', async () => {
  const buyer = await register(s, 'escrow-buyer');  // an empty wallet
  const d = await newDeal(s, { admin, buyer, seller }, { process: 'escrow_purchase' });
  assert.deepEqual([d.process.name, d.state], ['escrow_purchase', 'awaiting_payment']);
  assert.deepEqual(d.timers.map((t) => t.transition), ['payment_timeout']);
  assertError(await take(d.id, 'fund', buyer), 403, 'forbidden');
  assertError(await take(d.id, 'deliver', seller), 409, 'invalid_transition');
  // An operator funds from the buyer's wallet; with nothing in it, nothing moves.
  assertError(await take(d.id, 'fund', admin), 409, 'insufficient_funds');
  await fundWallet(s, buyer, d.amount);
  assert.equal(assertSuccess(await take(d.id, 'fund', admin)).state, 'funded');
  assertSuccess(await take(d.id, 'deliver', seller));
  assert.equal(assertSuccess(await take(d.id, 'release', buyer)).state, 'completed');
  const e = await newDeal(s, { admin, buyer, seller }, { process: 'escrow_purchase' });
  assert.equal((await payDeal(s, buyer, e)).state, 'funded');
  assertSuccess(await take(e.id, 'dispute', buyer, { reason: 'never arrived' }));
  assert.equal(assertSuccess(await take(e.id, 'resolve_refund', admin, { reason: 'no proof of delivery' })).state, 'refunded');
});

// An operator's process with short timers, for the tests below.
function quickProcess(version, extra = {}) {
  return {
    name: 'quick', version, title: 'Quick test flow', initial: 'open',
    on_create: ['close_request', 'reject_other_offers'],
    states: [{ name: 'open' }, { name: 'working' }, { name: 'done', terminal: true }, { name: 'lapsed', terminal: true }],
    transitions: [
      { name: 'begin', from: 'open', to: 'working', actor: 'seller' },
      { name: 'lapse', from: 'open', to: 'lapsed', actor: 'system', timer: { after: 'PT2S' } },
      { name: 'finish', from: 'working', to: 'done', actor: 'system', timer: { after: 'PT1S', since: 'entered:working' }, actions: ['enable_reviews'] },
      ...(extra.transitions ?? []),
    ],
  };
}

test('an operator\'s process: timers fire once with several workers, and not after the deal moved on', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'quick.json'), JSON.stringify(quickProcess(1)));
  const t = await startSouq({ args: ['--processes', dir, '--workers', '2'] });
  const worker = startWorker(t.dbUrl, ['--processes', dir]);
  try {
    const people = { admin: await makeAdmin(t), buyer: await register(t, 'qb') };
    people.seller = await makeSeller(t, people.admin, 'qs');
    assert.ok(assertSuccess(await t.get('/api/v1/processes')).some((p) => p.name === 'quick'));
    const lapsing = await newDeal(t, people, { process: 'quick' });
    const moving = await newDeal(t, people, { process: 'quick' });
    assertSuccess(await take(moving.id, 'begin', people.seller, undefined, t));
    const state = async (id) => assertSuccess(await t.get(`/api/v1/transactions/${id}`, auth(people.buyer))).state;
    await eventually('the lapse timer firing', async () => (await state(lapsing.id)) === 'lapsed' || state(lapsing.id));
    await eventually('the finish timer firing', async () => (await state(moving.id)) === 'done' || state(moving.id));
    await sleep(1500);  // time enough for any second firing to show
    const a = assertSuccess(await t.get(`/api/v1/transactions/${lapsing.id}`, auth(people.buyer)));
    assert.equal(a.state, 'lapsed');
    assert.deepEqual(a.history.map((h) => [h.transition, h.actor.type]), [['created', 'buyer'], ['lapse', 'system']], 'fired once');
    const b = assertSuccess(await t.get(`/api/v1/transactions/${moving.id}`, auth(people.buyer)));
    assert.equal(b.state, 'done', 'its own timer (from entering working) fired');
    assert.deepEqual(b.history.map((h) => h.transition), ['created', 'begin', 'finish'], 'the lapse timer did nothing: it had moved on');
    assert.equal(assertSuccess(await t.get(`/api/v1/transactions/${moving.id}/ratings`, auth(people.buyer))).open, true,
      'the timed step ran its action');
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
    await t.stop();
  }
});

test('versions: a running transaction keeps its version; new ones start on the newest; a changed version is refused', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'quick.json'), JSON.stringify(quickProcess(1)));
  const first = await startSouq({ args: ['--processes', dir, '--workers', '0'] });
  const people = { admin: await makeAdmin(first), buyer: await register(first, 'vb') };
  people.seller = await makeSeller(first, people.admin, 'vs');
  const old = await newDeal(first, people, { process: 'quick' });
  assert.deepEqual(old.process, { name: 'quick', version: 1 });
  const dbUrl = first.dbUrl;
  first.kill('SIGTERM');
  await first.exited;

  // version 2 adds a way to cancel; the file for version 1 is gone
  fs.writeFileSync(path.join(dir, 'quick.json'), JSON.stringify(quickProcess(2, {
    transitions: [{ name: 'call_off', from: ['open', 'working'], to: 'lapsed', actor: 'buyer' }],
  })));
  const second = await startSouq({ database: dbUrl, args: ['--processes', dir, '--workers', '0'] });
  try {
    const fresh = await newDeal(second, people, { process: 'quick' });
    assert.deepEqual(fresh.process, { name: 'quick', version: 2 });
    assertError(await take(old.id, 'call_off', people.buyer, undefined, second), 404, 'unknown_transition');
    assert.equal(assertSuccess(await take(fresh.id, 'call_off', people.buyer, undefined, second)).state, 'lapsed');
    assert.deepEqual(assertSuccess(await second.get('/api/v1/processes/quick')).versions, [1, 2]);
    assert.equal(assertSuccess(await second.get('/api/v1/processes/quick?version=1')).transitions.length, 3);
  } finally {
    second.kill('SIGTERM');
    await second.exited;
  }
  // version 2 edited without a new number: the database knows better
  fs.writeFileSync(path.join(dir, 'quick.json'), JSON.stringify({ ...quickProcess(2), title: 'edited in place' }));
  const refused = spawnSync(SOUQ_BIN, ['serve', '--listen', '127.0.0.1:0', '--database', dbUrl, '--processes', dir],
    { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /quick\.json: process "quick" version 2 differs from the one already stored/);
  await second.stop();
});

test('a faulty definition stops start-up with the file and the fault named', async () => {
  const cases = [
    [{ ...quickProcess(1), states: [...quickProcess(1).states, { name: 'limbo' }] }, /state "limbo": cannot be reached from "open"/],
    [{ ...quickProcess(1), transitions: [{ name: 'begin', from: 'open', to: 'nowhere', actor: 'seller' }] }, /transition "begin": unknown state "nowhere"/],
    [{ ...quickProcess(1), on_create: ['launch_rockets'] }, /on_create: unknown action "launch_rockets"/],
    [quickProcess(1, { transitions: [{ name: 'soon', from: 'open', to: 'done', actor: 'system', timer: { after: 'P1M' } }] }), /timer "after" must be an ISO 8601 duration/],
    [quickProcess(1, { transitions: [{ name: 'late', from: 'open', to: 'done', actor: 'buyer', timer: { after: 'PT1H' } }] }), /a timed transition is taken by the system/],
    [quickProcess(1, { transitions: [{ name: 'shout', from: 'open', to: 'done', actor: 'buyer', actions: [{ action: 'notify', to: ['everyone'] }] }] }), /action "notify": "to" may name buyer and seller only/],
    [{ ...quickProcess(1), states: quickProcess(1).states.map((x) => (x.name === 'working' ? { name: 'working', terminal: false } : x)).concat([{ name: 'stuck' }]),
      transitions: [...quickProcess(1).transitions, { name: 'sink', from: 'working', to: 'stuck', actor: 'seller' }] }, /state "stuck": has no transition out/],
  ];
  const dir = tempDir();
  for (const [definition, fault] of cases) {
    fs.writeFileSync(path.join(dir, 'broken.json'), JSON.stringify(definition));
    const check = spawnSync(SOUQ_BIN, ['processes', 'check', '--processes', dir], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(check.status, 1, check.stdout);
    assert.match(check.stderr, /broken\.json: /);
    assert.match(check.stderr, fault);
  }
  fs.writeFileSync(path.join(dir, 'broken.json'), '{ "name": "half');
  const serve = spawnSync(SOUQ_BIN, ['serve', '--listen', '127.0.0.1:0', '--database', `sqlite:${path.join(dir, 'x.db')}`, '--processes', dir],
    { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
  assert.equal(serve.status, 1);
  assert.match(serve.stderr, /broken\.json: not valid JSON/);
  fs.writeFileSync(path.join(dir, 'broken.json'), JSON.stringify(quickProcess(1)));
  const ok = spawnSync(SOUQ_BIN, ['processes', 'check', '--processes', dir], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /quick version 1 .* from .*broken\.json/);
});
