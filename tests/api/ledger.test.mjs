// The ledger (src/modules/ledger) through its admin routes and `souq ledger
// verify`:
//   - the rules one at a time: idempotent transfer ids, refused amounts and
//     account pairs, flagged accounts that never go negative (pending debits
//     count), two-phase transfers resolved once (post, void, timeout), linked
//     batches that leave no trace when one transfer fails, paging;
//   - a property test: thousands of random operations (valid and invalid,
//     some fired concurrently) checked against a model kept here, with the
//     ledger verified after every batch;
//   - races on one flagged account and on one pending transfer;
//   - tampering with the database is found by `souq ledger verify`;
//   - a souq killed (SIGKILL) under load loses no acknowledged transfer and
//     leaves a ledger that verifies.
// LEDGER_SEED repeats a property run (its seed is in every failure message);
// LEDGER_OPS makes it longer or shorter (default 3000 operations).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { startSouq, assertSuccess, assertError, sleep, SOUQ_BIN, ENGINE } from './harness.mjs';
import { makeAdmin, register, auth, eventually } from './people.mjs';

const FLAG = 'debits_must_not_exceed_credits';
const CFLAG = 'credits_must_not_exceed_debits';
const MAX_AMOUNT = 1_000_000_000_000_000; // the API's largest amount (10^15 minor units)
const INT64_MAX = 9223372036854775807n;

// ---------------------------------------------------------------- helpers

// An admin's view of one server: accounts, batches, verification.
function ledgerApi(s, admin) {
  const o = auth(admin);
  const api = {
    s,
    admin,
    post: (path, body) => s.post(path, body, o),
    get: (path) => s.get(path, o),
    async account(ledger, { flags = [], code = 'test_account', key } = {}) {
      const body = { ledger, code, flags };
      if (key) body.key = key;
      return assertSuccess(await api.post('/api/v1/admin/ledger/accounts', body), 201);
    },
    batch: (transfers, reason) => api.post('/api/v1/admin/ledger/transfers', reason ? { transfers, reason } : { transfers }),
    async ok(transfers) { return assertSuccess(await api.batch(transfers), 201).transfers; },
    async fetch(id) { return assertSuccess(await api.get(`/api/v1/admin/ledger/accounts/${id}`)); },
    async verify() { return assertSuccess(await api.get('/api/v1/admin/ledger/verify')); },
    async byReference(reference) {
      return assertSuccess(await api.get(`/api/v1/admin/ledger/transfers?reference=${encodeURIComponent(reference)}&limit=200`));
    },
    // Every account, through as many pages as it takes.
    async allAccounts() {
      const out = [];
      let cursor = null;
      for (;;) {
        const res = await api.get(`/api/v1/admin/ledger/accounts?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
        out.push(...assertSuccess(res));
        cursor = res.json.meta.next_cursor;
        if (!cursor) return out;
      }
    },
  };
  return api;
}

const balances = (a) => ({ debits_pending: a.debits_pending, debits_posted: a.debits_posted,
  credits_pending: a.credits_pending, credits_posted: a.credits_posted });
const available = (a) => a.credits_posted - a.debits_posted - a.debits_pending;

function run(cmd, args, { timeout = 60_000 } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, env: { PATH: process.env.PATH }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// `souq ledger verify` on a database: { code, report, stderr }.
async function cliVerify(dbUrl) {
  const r = await run(SOUQ_BIN, ['ledger', 'verify', '--database', dbUrl, '--log-level', 'error']);
  let report;
  try { report = JSON.parse(r.stdout); } catch { report = undefined; }
  assert.ok(report, `souq ledger verify printed no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return { code: r.code, report, stderr: r.stderr };
}

// One SQL statement straight on the database (the sqlite3 CLI or psql); its
// output in list form.
function sql(dbUrl, statement) {
  const r = dbUrl.startsWith('sqlite:')
    ? spawnSync('sqlite3', ['-bail', dbUrl.slice('sqlite:'.length), statement], { encoding: 'utf8' })
    : spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', dbUrl, '-c', statement], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

// The chain hash of a transfer, as src/modules/ledger/ledger.cpp defines it.
function chainHash(prevHash, t) {
  const text = ['souq-ledger-v1', prevHash, t.id, t.ledger, String(t.seq), t.kind, t.debit_account_id, t.credit_account_id,
    String(t.amount), t.pending_id ?? '', t.timeout_at ?? '', t.code, t.reference ?? '', t.batch_id, t.created_at].join('\n');
  return crypto.createHash('sha256').update(text).digest('hex');
}

// A seeded PRNG (mulberry32), so a failing run can be repeated with LEDGER_SEED.
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // lo..hi inclusive
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

// ---------------------------------------------------------------- the model

// What the ledger should hold, kept beside it: accounts' four balances and the
// transfers made, with the rules of routes.cpp (request validation, before any
// transfer of a batch is made) and ledger.cpp (make(), in order, per transfer).
class Model {
  constructor() {
    this.accounts = new Map(); // id → { id, ledger, flags: Set, debits_pending, … }
    this.transfers = new Map(); // id → { id, kind, debit, credit, amount, pending_id, code, reference, timeout, state }
  }

  addAccount(a) {
    this.accounts.set(a.id, { id: a.id, ledger: a.ledger, flags: new Set(a.flags), ...balances(a) });
  }

  clone() {
    const m = new Model();
    for (const [id, a] of this.accounts) m.accounts.set(id, { ...a });
    for (const [id, t] of this.transfers) m.transfers.set(id, { ...t });
    return m;
  }

  // A request-level refusal (422 validation_failed for the whole batch), or null.
  static invalid(t) {
    const text = (v, max) => typeof v === 'string' && v.length >= 1 && v.length <= max;
    const int = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
    if (!text(t.id, 200)) return 'id';
    const kind = t.kind ?? 'posted';
    if (!['posted', 'pending', 'post', 'void'].includes(kind)) return 'kind';
    const resolves = kind === 'post' || kind === 'void';
    for (const f of ['debit_account_id', 'credit_account_id']) {
      if (t[f] == null ? !resolves : !text(t[f], 64)) return f;
    }
    if (kind !== 'void' && (t.amount == null ? kind !== 'post' : !int(t.amount, 1, MAX_AMOUNT))) return 'amount';
    if (t.pending_id == null ? resolves : !text(t.pending_id, 200)) return 'pending_id';
    if (t.timeout_seconds != null && !int(t.timeout_seconds, 1, 365 * 24 * 3600)) return 'timeout_seconds';
    if (t.code != null && !(typeof t.code === 'string' && /^[a-z0-9](?:[a-z0-9_-]{0,58}[a-z0-9])?$/.test(t.code))) return 'code';
    if (t.reference != null && !text(t.reference, 200)) return 'reference';
    return null;
  }

  // One transfer of a batch on this (scratch) model: { transfer } or { status, code }.
  make(t) {
    const fail = (status, code) => ({ status, code });
    const kind = t.kind ?? 'posted';
    const code = t.code ?? 'adjustment';
    const reference = t.reference ?? '';
    const resolves = kind === 'post' || kind === 'void';
    if (t.timeout_seconds != null && kind !== 'pending') return fail(422, 'validation_failed');
    const existing = this.transfers.get(t.id);
    if (existing) {
      let same = existing.kind === kind && existing.code === code && existing.reference === reference;
      if (same && !resolves) {
        same = existing.debit === t.debit_account_id && existing.credit === t.credit_account_id && existing.amount === t.amount &&
          (kind !== 'pending' || existing.timeout === (t.timeout_seconds != null));
      } else if (same) {
        same = existing.pending_id === t.pending_id && (kind !== 'post' || t.amount == null || t.amount === existing.amount);
      }
      return same ? { transfer: existing, replay: true } : fail(409, 'transfer_id_reused');
    }
    let debit = t.debit_account_id, credit = t.credit_account_id, pending;
    if (resolves) {
      pending = this.transfers.get(t.pending_id);
      if (!pending) return fail(404, 'pending_transfer_not_found');
      if (pending.kind !== 'pending') return fail(422, 'not_pending');
      if ((debit && debit !== pending.debit) || (credit && credit !== pending.credit)) return fail(422, 'invalid_transfer');
      debit = pending.debit;
      credit = pending.credit;
    }
    if (debit === credit) return fail(422, 'same_account');
    const d = this.accounts.get(debit), c = this.accounts.get(credit);
    if (!d || !c) return fail(404, 'account_not_found');
    if (d.ledger !== c.ledger) return fail(422, 'ledger_mismatch');
    let amount = t.amount;
    let dPending = 0, dPosted = 0;
    if (kind === 'posted') dPosted = amount;
    else if (kind === 'pending') dPending = amount;
    else {
      if (pending.state !== 'pending') return fail(409, 'pending_transfer_resolved');
      if (kind === 'post') {
        amount ??= pending.amount;
        if (amount > pending.amount) return fail(422, 'amount_exceeds_pending');
        dPosted = amount;
      } else {
        amount = pending.amount;
      }
      dPending = -pending.amount;
    }
    if (d.flags.has(FLAG) && (dPending > 0 || dPosted > 0) &&
        d.debits_pending + dPending + d.debits_posted + dPosted > d.credits_posted) return fail(409, 'insufficient_funds');
    if (c.flags.has(CFLAG) && (dPending > 0 || dPosted > 0) &&
        c.credits_pending + dPending + c.credits_posted + dPosted > c.debits_posted) return fail(409, 'exceeds_debits');
    d.debits_pending += dPending;
    d.debits_posted += dPosted;
    c.credits_pending += dPending;
    c.credits_posted += dPosted;
    if (resolves) pending.state = kind === 'post' ? 'posted' : 'voided';
    const made = { id: t.id, kind, debit, credit, amount, pending_id: resolves ? t.pending_id : null, code, reference,
      ledger: d.ledger, timeout: t.timeout_seconds != null, state: kind === 'pending' ? 'pending' : undefined };
    this.transfers.set(t.id, made);
    return { transfer: made };
  }

  // What a batch should do: { status: 201, model (the state after), made } or { status, code }.
  predict(batch) {
    if (batch.some((t) => Model.invalid(t))) return { status: 422, code: 'validation_failed' };
    const m = this.clone();
    const seen = new Set();
    const made = [];
    for (const t of batch) {
      if (seen.has(t.id)) return { status: 422, code: 'invalid_transfer' };
      seen.add(t.id);
      const r = m.make(t);
      if (!r.transfer) return r;
      made.push(r.transfer);
    }
    return { status: 201, model: m, made };
  }

  adopt(other) {
    this.accounts = other.accounts;
    this.transfers = other.transfers;
  }

  available(id) { const a = this.accounts.get(id); return a.credits_posted - a.debits_posted - a.debits_pending; }
}

// The transfers a 201 answered match what the model made.
function assertMade(got, made, where) {
  assert.equal(got.length, made.length, where);
  got.forEach((g, i) => {
    const m = made[i];
    assert.deepEqual(
      { id: g.id, kind: g.kind, debit: g.debit_account_id, credit: g.credit_account_id, amount: g.amount,
        pending_id: g.pending_id, code: g.code, reference: g.reference ?? '', ledger: g.ledger, timeout: g.timeout_at !== null },
      { id: m.id, kind: m.kind, debit: m.debit, credit: m.credit, amount: m.amount, pending_id: m.pending_id, code: m.code,
        reference: m.reference, ledger: m.ledger, timeout: m.timeout }, `${where}: transfer ${i}`);
  });
}

// The stored ledger against the model: verify is ok, balances equal, debits
// equal credits per ledger, no flagged account past its limit.
async function checkAgainstModel(api, model, where) {
  const [report, stored] = await Promise.all([api.verify(), api.allAccounts()]);
  assert.equal(report.ok, true, `${where}: verify found faults: ${JSON.stringify(report.faults.slice(0, 3))}`);
  const totals = {};
  for (const a of stored) {
    const t = (totals[a.ledger] ??= { dp: 0, dq: 0, cp: 0, cq: 0 });
    t.dp += a.debits_pending; t.dq += a.debits_posted; t.cp += a.credits_pending; t.cq += a.credits_posted;
    if (a.flags.includes(FLAG)) assert.ok(a.debits_pending + a.debits_posted <= a.credits_posted, `${where}: ${a.id} went negative`);
    if (a.flags.includes(CFLAG)) assert.ok(a.credits_pending + a.credits_posted <= a.debits_posted, `${where}: ${a.id} over its debits`);
    const m = model.accounts.get(a.id);
    if (m) assert.deepEqual(balances(a), balances(m), `${where}: balances of ${a.id}`);
  }
  for (const id of model.accounts.keys()) assert.ok(stored.some((a) => a.id === id), `${where}: account ${id} missing`);
  for (const [ledger, t] of Object.entries(totals)) {
    assert.equal(t.dp, t.cp, `${where}: ${ledger} pending debits ≠ pending credits`);
    assert.equal(t.dq, t.cq, `${where}: ${ledger} posted debits ≠ posted credits`);
    const l = report.ledgers[ledger];
    if (l) assert.deepEqual([l.debits_posted, l.credits_posted, l.debits_pending, l.credits_pending], [t.dq, t.cq, t.dp, t.cp],
      `${where}: verify's totals of ${ledger}`);
  }
  return report;
}

// ---------------------------------------------------------------- the rules, one at a time

let s, api;
before(async () => {
  s = await startSouq();
  api = ledgerApi(s, await makeAdmin(s));
});
after(async () => { await s?.stop(); });

let uniq = 0;
const tid = (what) => `${what}-${++uniq}-${crypto.randomBytes(3).toString('hex')}`;

// A flagged wallet holding `amount`, funded from an unflagged source.
async function funded(amount, ledger = 'EGP') {
  const source = await api.account(ledger, { code: 'source' });
  const wallet = await api.account(ledger, { flags: [FLAG], code: 'wallet' });
  const sink = await api.account(ledger, { code: 'sink' });
  if (amount > 0) await api.ok([{ id: tid('fund'), debit_account_id: source.id, credit_account_id: wallet.id, amount }]);
  return { source, wallet, sink };
}

test('accounts: opened with a ledger, a code and flags; a key opens the same account again; refusals', async () => {
  const key = tid('key');
  const a = await api.account('EGP', { flags: [FLAG], code: 'bank_float', key });
  assert.equal(a.ledger, 'EGP');
  assert.equal(a.code, 'bank_float');
  assert.deepEqual(a.flags, [FLAG]);
  assert.equal(a.key, `manual:${key}`);
  assert.deepEqual(balances(a), { debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 0 });
  const again = await api.account('EGP', { flags: [FLAG], code: 'bank_float', key });
  assert.equal(again.id, a.id, 'the same key and fields: the same account');
  const reused = assertError(await api.post('/api/v1/admin/ledger/accounts', { ledger: 'USD', code: 'bank_float', key, flags: [FLAG] }),
    409, 'account_key_reused');
  assert.equal(reused.details.account_id, a.id);
  assertError(await api.post('/api/v1/admin/ledger/accounts', { ledger: 'XYZ', code: 'x' }), 422, 'validation_failed');
  assertError(await api.post('/api/v1/admin/ledger/accounts', { ledger: 'EGP', code: 'x', flags: ['never_negative'] }), 422, 'validation_failed');
  assertError(await api.post('/api/v1/admin/ledger/accounts', { ledger: 'EGP', code: 'Not A Slug' }), 422, 'validation_failed');
  assert.deepEqual(await api.fetch(a.id), a);
  assertError(await api.get('/api/v1/admin/ledger/accounts/acct_01m83hznebwhtnsedd1qzxg3v9'), 404, 'not_found');
});

test("Souq's own transfer ids (<souq id>:<step>) are not an operator's to take, post or void", async () => {
  const { wallet, sink } = await funded(500);
  const owned = `${wallet.id}:escrow`;
  const made = assertError(await api.post('/api/v1/admin/ledger/transfers', { transfers: [
    { id: owned, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 }] }), 422, 'reserved_transfer_id');
  assert.deepEqual([made.details.index, made.details.transfer_id], [0, owned]);
  assertError(await api.post('/api/v1/admin/ledger/transfers', { transfers: [
    { id: tid('fine'), debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 },
    { id: tid('void'), kind: 'void', pending_id: `${wallet.id}:hold` }] }), 422, 'reserved_transfer_id');
  const fetched = await api.fetch(wallet.id);
  assert.equal(fetched.debits_posted, 0, 'nothing of the refused batch moved');
  // Ids that merely contain a colon are the operator's.
  await api.ok([{ id: `${tid('mine')}:part-1`, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 }]);
});

test('only admins see or move the ledger', async () => {
  const user = await register(s, 'not-admin');
  const a = await api.account('EGP');
  assertError(await s.get('/api/v1/admin/ledger/accounts', auth(user)), 403, 'forbidden');
  assertError(await s.get(`/api/v1/admin/ledger/accounts/${a.id}`, auth(user)), 403, 'forbidden');
  assertError(await s.get('/api/v1/admin/ledger/transfers', auth(user)), 403, 'forbidden');
  assertError(await s.get('/api/v1/admin/ledger/verify', auth(user)), 403, 'forbidden');
  assertError(await s.post('/api/v1/admin/ledger/accounts', { ledger: 'EGP', code: 'x' }, auth(user)), 403, 'forbidden');
  assertError(await s.post('/api/v1/admin/ledger/transfers',
    { transfers: [{ id: tid('x'), debit_account_id: a.id, credit_account_id: a.id, amount: 1 }] }, auth(user)), 403, 'forbidden');
  assertError(await s.get('/api/v1/admin/ledger/verify'), 401, 'unauthenticated');
});

test('a transfer id is its idempotency key: the same fields return the original, other fields are refused', async () => {
  const { wallet, sink } = await funded(1000);
  const id = tid('idem');
  const spec = { id, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 300, code: 'payout', reference: 'ref-1' };
  const [first] = await api.ok([spec]);
  assert.equal(first.kind, 'posted');
  assert.match(first.hash, /^[0-9a-f]{64}$/);
  const [again] = await api.ok([spec]);
  assert.deepEqual(again, first, 'a replay returns the original, seq, hash and batch included');
  assert.equal((await api.fetch(wallet.id)).debits_posted, 300, 'a replay moves nothing');
  // the kind default and the code default count as fields too
  for (const other of [{ amount: 301 }, { code: 'refund' }, { reference: 'ref-2' }, { credit_account_id: wallet.id, debit_account_id: sink.id },
    { kind: 'pending' }]) {
    const e = assertError(await api.batch([{ ...spec, ...other }]), 409, 'transfer_id_reused');
    assert.equal(e.details.transfer_id, id);
  }
  const noReference = { ...spec };
  delete noReference.reference;
  assertError(await api.batch([noReference]), 409, 'transfer_id_reused');
  // a replay inside a batch with a new transfer: the new one is made, the old one returned as it was
  const [old, fresh] = await api.ok([spec, { id: tid('idem'), debit_account_id: wallet.id, credit_account_id: sink.id, amount: 5 }]);
  assert.deepEqual(old, first);
  assert.notEqual(fresh.batch_id, first.batch_id);
  assert.equal((await api.fetch(wallet.id)).debits_posted, 305);
  // the same id twice in one batch
  const twice = tid('twice');
  assertError(await api.batch([{ id: twice, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 },
    { id: twice, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 }]), 422, 'invalid_transfer');
  assert.deepEqual(await api.byReference('ref-1'), [first]);
});

test('concurrent replays of one transfer id all return the original (and move the money once)', async () => {
  const { wallet, sink } = await funded(1000);
  const spec = { id: tid('same'), debit_account_id: wallet.id, credit_account_id: sink.id, amount: 70, reference: tid('same-ref') };
  const answers = await Promise.all(Array.from({ length: 12 }, () => api.batch([spec])));
  const made = answers.map((r) => assertSuccess(r, 201).transfers[0]);
  for (const t of made) assert.deepEqual(t, made[0]);
  assert.equal((await api.fetch(wallet.id)).debits_posted, 70);
  assert.equal((await api.byReference(spec.reference)).length, 1);
});

test('two accounts of one transfer: on the same ledger, not the same account, both existing', async () => {
  const egp = await api.account('EGP');
  const egp2 = await api.account('EGP');
  const usd = await api.account('USD');
  const e = assertError(await api.batch([{ id: tid('x'), debit_account_id: egp.id, credit_account_id: usd.id, amount: 1 }]), 422, 'ledger_mismatch');
  assert.deepEqual([e.details.debit_ledger, e.details.credit_ledger], ['EGP', 'USD']);
  assertError(await api.batch([{ id: tid('x'), debit_account_id: egp.id, credit_account_id: egp.id, amount: 1 }]), 422, 'same_account');
  const missing = 'acct_01m83hznebwhtnsedd1qzxg3v9';
  assert.equal(assertError(await api.batch([{ id: tid('x'), debit_account_id: missing, credit_account_id: egp.id, amount: 1 }]),
    404, 'account_not_found').details.account_id, missing);
  assert.equal(assertError(await api.batch([{ id: tid('x'), debit_account_id: egp.id, credit_account_id: missing, amount: 1 }]),
    404, 'account_not_found').details.account_id, missing);
  assertError(await api.batch([{ id: tid('x'), debit_account_id: egp.id, amount: 1 }]), 422, 'validation_failed');
  await api.ok([{ id: tid('x'), debit_account_id: egp.id, credit_account_id: egp2.id, amount: 1 }]);
  for (const a of [egp, egp2, usd]) assert.equal((await api.fetch(a.id)).debits_pending, 0);
});

test('amounts: zero, negative, fractional and too large are refused by validation; a balance that would overflow by amount_overflow', async () => {
  const a = await api.account('EGP');
  const b = await api.account('EGP');
  const bad = [0, -1, -MAX_AMOUNT, 1.5, 0.01, MAX_AMOUNT + 1, Number.MAX_SAFE_INTEGER, '100', null, true];
  for (const amount of bad) {
    const spec = { id: tid('amt'), debit_account_id: a.id, credit_account_id: b.id, amount };
    for (const kind of ['posted', 'pending']) {
      const e = assertError(await api.batch([{ ...spec, kind }]), 422, 'validation_failed');
      assert.ok('transfers[0].amount' in e.details.fields, JSON.stringify(e.details));
    }
  }
  // numbers JSON.stringify cannot write: 2^63, 2^64, -0.5e1, 1.0, 1e3 (a float to JSON parsers)
  for (const raw of ['9223372036854775808', '18446744073709551616', '-0.5e1', '1.0', '1e3']) {
    const body = `{"transfers":[{"id":"${tid('raw')}","debit_account_id":"${a.id}","credit_account_id":"${b.id}","amount":${raw}}]}`;
    const res = await s.post('/api/v1/admin/ledger/transfers', body, auth(api.admin));
    assert.ok(res.status === 422 || res.status === 400, `amount ${raw}: ${res.status} ${res.text}`);
    assert.ok(['validation_failed', 'invalid_json'].includes(res.json?.error?.code), `amount ${raw}: ${res.text}`);
  }
  // post: zero is refused (leave it out to post the whole amount)
  const [p] = await api.ok([{ id: tid('p'), kind: 'pending', debit_account_id: a.id, credit_account_id: b.id, amount: 10 }]);
  assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p.id, amount: 0 }]), 422, 'validation_failed');
  assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p.id, amount: -3 }]), 422, 'validation_failed');
  assert.equal((await api.fetch(a.id)).debits_posted, 0, 'nothing moved');
  assert.equal((await api.verify()).ok, true);
});

test('balances stop short of overflowing: amount_overflow, and verify still adds the ledger up', async () => {
  // Transfers are at most 10^15, so it takes 9,224 of them to pass 2^63 - 1
  // (9.223…·10^18): 92 full batches and one more transfer. On a ledger of their own.
  const ledger = 'ISK';
  const a = await api.account(ledger, { code: 'overflow_source' });
  const b = await api.account(ledger, { code: 'overflow_sink' });
  const full = Number(INT64_MAX / BigInt(MAX_AMOUNT)); // 9223 transfers fit
  const prefix = tid('ovf');
  let n = 0;
  while (n < full) {
    const batch = [];
    for (; batch.length < 100 && n < full; n++) batch.push({ id: `${prefix}-${n}`, debit_account_id: a.id, credit_account_id: b.id, amount: MAX_AMOUNT });
    await api.ok(batch);
  }
  const filled = await api.fetch(b.id);
  assert.equal(BigInt(filled.credits_posted), BigInt(full) * BigInt(MAX_AMOUNT));
  const spec = { id: `${prefix}-last`, debit_account_id: a.id, credit_account_id: b.id, amount: MAX_AMOUNT };
  assertError(await api.batch([spec]), 422, 'amount_overflow');
  assertError(await api.batch([{ ...spec, kind: 'pending' }]), 422, 'amount_overflow');
  // what still fits does
  const room = Number(INT64_MAX - BigInt(full) * BigInt(MAX_AMOUNT)); // 372036854775807
  await api.ok([{ id: `${prefix}-fill`, debit_account_id: a.id, credit_account_id: b.id, amount: room }]);
  // (read from the text: a JavaScript number cannot hold 2^63 - 1)
  const raw = (await api.get(`/api/v1/admin/ledger/accounts/${b.id}`)).text;
  assert.match(raw, new RegExp(`"credits_posted":${INT64_MAX}[,}]`));
  assertError(await api.batch([{ id: `${prefix}-one`, debit_account_id: a.id, credit_account_id: b.id, amount: 1 }]), 422, 'amount_overflow');
  // Two more accounts on the ledger with balances of their own: each account
  // is within range, the ledger's total of posted debits is not.
  const c = await api.account(ledger, { code: 'overflow_other' });
  const d = await api.account(ledger, { code: 'overflow_other' });
  await api.ok([{ id: `${prefix}-other`, debit_account_id: c.id, credit_account_id: d.id, amount: 5 }]);
  const report = await api.verify();
  assert.equal(report.ok, true, `a legal ledger whose totals pass 2^63 is reported faulty: ${JSON.stringify(report.faults.slice(0, 3))}`);
});

test('a flagged account cannot go negative, and pending debits count against it', async () => {
  const { wallet, sink, source } = await funded(1000);
  const t = (over) => ({ id: tid('neg'), debit_account_id: wallet.id, credit_account_id: sink.id, ...over });
  const e = assertError(await api.batch([t({ amount: 1001 })]), 409, 'insufficient_funds');
  assert.deepEqual([e.details.account_id, e.details.available, e.details.amount], [wallet.id, 1000, 1001]);
  const [hold] = await api.ok([t({ kind: 'pending', amount: 600 })]);
  assert.equal(available(await api.fetch(wallet.id)), 400);
  assertError(await api.batch([t({ amount: 401 })]), 409, 'insufficient_funds');
  assertError(await api.batch([t({ kind: 'pending', amount: 401 })]), 409, 'insufficient_funds');
  await api.ok([t({ amount: 400 })]);
  assertError(await api.batch([t({ amount: 1 })]), 409, 'insufficient_funds');
  // posting the pending part-way frees the rest
  await api.ok([{ id: tid('post'), kind: 'post', pending_id: hold.id, amount: 250 }]);
  const w = await api.fetch(wallet.id);
  assert.deepEqual(balances(w), { debits_pending: 0, debits_posted: 650, credits_pending: 0, credits_posted: 1000 });
  await api.ok([t({ amount: 350 })]);
  assertError(await api.batch([t({ amount: 1 })]), 409, 'insufficient_funds');
  // pending credits do not count as money in
  await api.ok([{ id: tid('in'), kind: 'pending', debit_account_id: source.id, credit_account_id: wallet.id, amount: 500 }]);
  assertError(await api.batch([t({ amount: 1 })]), 409, 'insufficient_funds');
  // an unflagged account may go negative
  await api.ok([{ id: tid('neg'), debit_account_id: sink.id, credit_account_id: source.id, amount: 1_000_000 }]);
  assert.ok(available(await api.fetch(sink.id)) < 0);
  // credits_must_not_exceed_debits: the mirror image
  const capped = await api.account('EGP', { flags: [CFLAG], code: 'capped' });
  assertError(await api.batch([{ id: tid('c'), debit_account_id: source.id, credit_account_id: capped.id, amount: 1 }]), 409, 'exceeds_debits');
  await api.ok([{ id: tid('c'), debit_account_id: capped.id, credit_account_id: source.id, amount: 10 }]);
  await api.ok([{ id: tid('c'), kind: 'pending', debit_account_id: source.id, credit_account_id: capped.id, amount: 10 }]);
  assertError(await api.batch([{ id: tid('c'), debit_account_id: source.id, credit_account_id: capped.id, amount: 1 }]), 409, 'exceeds_debits');
  assert.equal((await api.verify()).ok, true);
});

test('two-phase: pending → post part of it (the rest released) → a second post or a void is refused; void releases', async () => {
  const { wallet, sink } = await funded(1000);
  const [p] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 500,
    code: 'escrow_hold', reference: 'deal-1' }]);
  assert.equal(p.kind, 'pending');
  assert.deepEqual(balances(await api.fetch(sink.id)), { debits_pending: 0, debits_posted: 0, credits_pending: 500, credits_posted: 0 });
  const postId = tid('post');
  const [post] = await api.ok([{ id: postId, kind: 'post', pending_id: p.id, amount: 300 }]);
  assert.deepEqual([post.kind, post.pending_id, post.amount, post.debit_account_id, post.credit_account_id],
    ['post', p.id, 300, wallet.id, sink.id]);
  assert.deepEqual(balances(await api.fetch(wallet.id)), { debits_pending: 0, debits_posted: 300, credits_pending: 0, credits_posted: 1000 });
  assert.deepEqual(balances(await api.fetch(sink.id)), { debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 300 });
  // replaying the post is fine (same id); another resolution is not
  assert.deepEqual((await api.ok([{ id: postId, kind: 'post', pending_id: p.id, amount: 300 }]))[0], post);
  assert.deepEqual((await api.ok([{ id: postId, kind: 'post', pending_id: p.id }]))[0], post, 'an omitted amount replays too');
  let e = assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p.id, amount: 100 }]), 409, 'pending_transfer_resolved');
  assert.deepEqual([e.details.pending_id, e.details.state], [p.id, 'posted']);
  e = assertError(await api.batch([{ id: tid('void'), kind: 'void', pending_id: p.id }]), 409, 'pending_transfer_resolved');
  assert.equal(e.details.state, 'posted');

  // void gives it all back
  const [p2] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 700 }]);
  assert.equal(available(await api.fetch(wallet.id)), 0);
  const [v] = await api.ok([{ id: tid('void'), kind: 'void', pending_id: p2.id }]);
  assert.deepEqual([v.kind, v.amount], ['void', 700]);
  assert.equal(available(await api.fetch(wallet.id)), 700);
  assert.equal((await api.fetch(sink.id)).credits_pending, 0);
  e = assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p2.id }]), 409, 'pending_transfer_resolved');
  assert.equal(e.details.state, 'voided');

  // a post of the whole amount (amount left out); more than pending; not a pending; unknown; other accounts
  const [p3] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 100 }]);
  assert.equal(assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p3.id, amount: 101 }]), 422, 'amount_exceeds_pending')
    .details.pending_amount, 100);
  assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: post.id }]), 422, 'not_pending');
  assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: 'no-such-transfer' }]), 404, 'pending_transfer_not_found');
  assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p3.id, debit_account_id: sink.id }]), 422, 'invalid_transfer');
  assertError(await api.batch([{ id: tid('post'), kind: 'post' }]), 422, 'validation_failed');
  assertError(await api.batch([{ id: tid('post'), kind: 'posted', pending_id: p3.id, timeout_seconds: 5, debit_account_id: wallet.id,
    credit_account_id: sink.id, amount: 1 }]), 422, 'validation_failed');
  const [whole] = await api.ok([{ id: tid('post'), kind: 'post', pending_id: p3.id }]);
  assert.equal(whole.amount, 100);
  assert.deepEqual(balances(await api.fetch(wallet.id)), { debits_pending: 0, debits_posted: 400, credits_pending: 0, credits_posted: 1000 });
  assert.equal((await api.verify()).ok, true);
});

test('concurrent resolutions of one pending transfer: exactly one wins', async () => {
  const { wallet, sink } = await funded(1000);
  const [p] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 400 }]);
  const tries = Array.from({ length: 16 }, (_, i) => (i % 2
    ? { id: tid('void'), kind: 'void', pending_id: p.id }
    : { id: tid('post'), kind: 'post', pending_id: p.id, amount: 100 + i }));
  const answers = await Promise.all(tries.map((t) => api.batch([t])));
  const won = answers.filter((r) => r.status === 201);
  assert.equal(won.length, 1, answers.map((r) => `${r.status} ${r.json?.error?.code ?? ''}`).join(', '));
  for (const r of answers) if (r.status !== 201) assertError(r, 409, 'pending_transfer_resolved');
  const t = won[0].json.data.transfers[0];
  const w = await api.fetch(wallet.id);
  assert.equal(w.debits_pending, 0);
  assert.equal(w.debits_posted, t.kind === 'post' ? t.amount : 0);
  assert.equal((await api.verify()).ok, true);
});

test('a pending transfer with a timeout expires by itself (ledger.expire) and cannot be posted after', async () => {
  const { wallet, sink } = await funded(1000);
  const ref = tid('expiring');
  const [p] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 800,
    timeout_seconds: 1, reference: ref, code: 'escrow_hold' }]);
  assert.ok(p.timeout_at, 'timeout_at is set');
  const ms = Date.parse(p.timeout_at) - Date.parse(p.created_at);
  assert.ok(ms >= 1000 && ms <= 1500, `timeout_at ${p.timeout_at} is about a second after ${p.created_at}`);
  assert.equal(available(await api.fetch(wallet.id)), 200);
  await eventually('the pending transfer expired', async () => {
    const list = await api.byReference(ref);
    return list.some((t) => t.kind === 'expire') || list.map((t) => t.kind);
  }, 15_000);
  const list = await api.byReference(ref);
  const expire = list.find((t) => t.kind === 'expire');
  assert.deepEqual([expire.id, expire.pending_id, expire.amount, expire.debit_account_id, expire.credit_account_id, expire.code],
    [`${p.id}:expire`, p.id, 800, wallet.id, sink.id, 'escrow_hold']);
  assert.ok(expire.created_at >= p.timeout_at, 'expired no earlier than its timeout');
  assert.deepEqual(balances(await api.fetch(wallet.id)), { debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 1000 });
  assert.equal((await api.fetch(sink.id)).credits_pending, 0);
  let e = assertError(await api.batch([{ id: tid('post'), kind: 'post', pending_id: p.id }]), 409, 'pending_transfer_resolved');
  assert.equal(e.details.state, 'expired');
  e = assertError(await api.batch([{ id: tid('void'), kind: 'void', pending_id: p.id }]), 409, 'pending_transfer_resolved');
  assert.equal(e.details.state, 'expired');
  // a timeout is for pending transfers only, and at least a second
  assertError(await api.batch([{ id: tid('x'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1,
    timeout_seconds: 0 }]), 422, 'validation_failed');
  assertError(await api.batch([{ id: tid('x'), debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1, timeout_seconds: 5 }]),
    422, 'validation_failed');
  assert.equal((await api.verify()).ok, true);
});

test('a pending transfer posted before its timeout stays posted (the expire job finds it resolved)', async () => {
  const { wallet, sink } = await funded(1000);
  const ref = tid('posted-in-time');
  const [p] = await api.ok([{ id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 300,
    timeout_seconds: 2, reference: ref }]);
  await api.ok([{ id: tid('post'), kind: 'post', pending_id: p.id, reference: ref }]);
  await sleep(3500); // past the timeout: the expire job has run and found it posted
  assert.deepEqual((await api.byReference(ref)).map((t) => t.kind).sort(), ['pending', 'post']);
  assert.deepEqual(balances(await api.fetch(wallet.id)), { debits_pending: 0, debits_posted: 300, credits_pending: 0, credits_posted: 1000 });
});

test('a linked batch whose second transfer fails leaves no trace of the first', async () => {
  const { wallet, sink, source } = await funded(100);
  const untouched = await Promise.all([wallet, sink, source].map((a) => api.fetch(a.id)));
  const headBefore = (await api.verify()).ledgers.EGP;
  const ref = tid('linked');
  const first = { id: tid('first'), debit_account_id: source.id, credit_account_id: wallet.id, amount: 50, reference: ref };
  const pend = { id: tid('first'), kind: 'pending', debit_account_id: source.id, credit_account_id: sink.id, amount: 7, reference: ref };
  const second = { id: tid('second'), debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1000, reference: ref };
  assertError(await api.batch([first, pend, second], 'linked test'), 409, 'insufficient_funds');
  assert.deepEqual(await api.byReference(ref), []);
  assert.deepEqual(await Promise.all([wallet, sink, source].map((a) => api.fetch(a.id))), untouched);
  const headAfter = (await api.verify()).ledgers.EGP;
  assert.deepEqual([headAfter.head_seq, headAfter.head_hash], [headBefore.head_seq, headBefore.head_hash], 'the chain did not move');
  // the ids were not taken: they may be used again, with other fields
  const [again] = await api.ok([{ ...first, amount: 51 }]);
  assert.equal(again.amount, 51);
  // every other way for the second to fail
  const third = { id: tid('t'), debit_account_id: source.id, credit_account_id: sink.id, amount: 1, reference: ref };
  for (const [bad, status, code] of [
    [{ ...second, amount: 1, credit_account_id: (await api.account('USD')).id }, 422, 'ledger_mismatch'],
    [{ ...second, amount: 1, credit_account_id: wallet.id }, 422, 'same_account'],
    [{ ...second, amount: 1, id: again.id }, 409, 'transfer_id_reused'],
    [{ id: tid('post'), kind: 'post', pending_id: 'nope', reference: ref }, 404, 'pending_transfer_not_found'],
  ]) {
    assertError(await api.batch([third, bad]), status, code);
    assert.deepEqual((await api.byReference(ref)).map((t) => t.id), [again.id]);
  }
  // a transfer may resolve a pending one made earlier in its own batch
  const hold = { id: tid('hold'), kind: 'pending', debit_account_id: wallet.id, credit_account_id: sink.id, amount: 20, reference: ref };
  const made = await api.ok([hold, { id: tid('post'), kind: 'post', pending_id: hold.id, amount: 15, reference: ref }]);
  assert.equal(made[0].batch_id, made[1].batch_id);
  assert.equal(made[1].seq, made[0].seq + 1);
  assert.equal((await api.verify()).ok, true);
});

test('transfers list: by reference and by account, newest first, paged with next_cursor', async () => {
  const { wallet, sink } = await funded(10_000);
  const ref = tid('paging');
  const made = [];
  for (let i = 0; i < 7; i++) {
    made.push(...await api.ok([{ id: `${ref}-${i}`, debit_account_id: wallet.id, credit_account_id: sink.id, amount: 1 + i, reference: ref }]));
  }
  const seen = [];
  let cursor = null;
  for (let pages = 0; pages < 10; pages++) {
    const res = await api.get(`/api/v1/admin/ledger/transfers?account_id=${sink.id}&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    const page = assertSuccess(res);
    seen.push(...page);
    cursor = res.json.meta.next_cursor;
    if (!cursor) break;
  }
  assert.deepEqual(seen.map((t) => t.id), made.map((t) => t.id).reverse(), 'every transfer once, newest first');
  const byRef = await api.byReference(ref);
  assert.deepEqual(byRef.map((t) => t.id), made.map((t) => t.id).reverse());
  assertError(await api.get('/api/v1/admin/ledger/transfers?cursor=not-a-transfer'), 422, 'validation_failed');
});

test('RACE: 40 concurrent transfers out of a flagged account holding 10 of them: exactly 10 succeed', async () => {
  const amount = 1234;
  for (const kind of ['posted', 'pending']) {
    const { wallet, sink } = await funded(10 * amount);
    const answers = await Promise.all(Array.from({ length: 40 }, () =>
      api.batch([{ id: tid('race'), kind, debit_account_id: wallet.id, credit_account_id: sink.id, amount }])));
    const ok = answers.filter((r) => r.status === 201);
    assert.equal(ok.length, 10, `${kind}: ${answers.map((r) => r.status).join(' ')}`);
    for (const r of answers) if (r.status !== 201) assertError(r, 409, 'insufficient_funds');
    const w = await api.fetch(wallet.id);
    assert.equal(available(w), 0);
    assert.equal(kind === 'posted' ? w.debits_posted : w.debits_pending, 10 * amount);
    assert.equal(new Set(ok.map((r) => r.json.data.transfers[0].seq)).size, 10);
  }
  assert.equal((await api.verify()).ok, true);
});

// ---------------------------------------------------------------- the property test

test('PROPERTY: random operations, valid and not, some concurrent, always match a model and verify', { timeout: 600_000 }, async () => {
  const seed = Number(process.env.LEDGER_SEED ?? 20261123);
  const target = Number(process.env.LEDGER_OPS ?? 3000);
  const rnd = prng(seed);
  const where = (b) => `seed ${seed}, batch ${b}`;
  const srv = await startSouq();
  try {
    const p = ledgerApi(srv, await makeAdmin(srv));
    const model = new Model();
    // Two ledgers: on EGP two flagged wallets, two plain accounts, one capped
    // (credits must not exceed debits); on USD one flagged and two plain.
    const specs = [['EGP', [FLAG]], ['EGP', [FLAG]], ['EGP', []], ['EGP', []], ['EGP', [CFLAG]], ['USD', [FLAG]], ['USD', []], ['USD', []]];
    const accts = [];
    for (const [ledger, flags] of specs) {
      const a = await p.account(ledger, { flags, code: 'prop' });
      accts.push(a);
      model.addAccount(a);
    }
    const ids = accts.map((a) => a.id);
    const ledgerOf = (id) => model.accounts.get(id).ledger;
    const flagged = ids.filter((id) => model.accounts.get(id).flags.has(FLAG));
    const plain = ids.filter((id) => model.accounts.get(id).flags.size === 0);
    let next = 0;
    const failedIds = []; // ids of refused batches: never made, so free to use again
    const freshId = () => (failedIds.length && rnd.chance(0.1) ? failedIds.splice(rnd.int(0, failedIds.length - 1), 1)[0] : `p${seed}-${++next}`);
    const sent = new Map(); // transfer id → the spec that made it (for replays)
    const amount = () => (rnd.chance(0.85) ? rnd.int(1, 500) : rnd.chance(0.8) ? rnd.int(500, 20_000) : rnd.int(1, MAX_AMOUNT / 1e6));
    const pairOn = (ledger) => {
      const on = ids.filter((id) => ledgerOf(id) === ledger);
      const d = rnd.pick(on);
      let c = rnd.pick(on);
      while (c === d) c = rnd.pick(on);
      return [d, c];
    };
    const openPendings = () => [...model.transfers.values()].filter((t) => t.kind === 'pending' && t.state === 'pending');
    const extra = (spec) => {
      if (rnd.chance(0.3)) spec.code = rnd.pick(['topup', 'escrow_hold', 'commission', 'refund']);
      if (rnd.chance(0.3)) spec.reference = `ref-${rnd.int(1, 50)}`;
      return spec;
    };

    // One random operation (possibly invalid).
    function op() {
      const r = rnd.next();
      const ledger = rnd.chance(0.7) ? 'EGP' : 'USD';
      if (r < 0.04) {
        // on the limit: all a flagged account holds, or the capped account filled to its debits
        if (rnd.chance(0.7)) {
          const f = rnd.pick(flagged);
          if (model.available(f) > 0) {
            return extra({ id: freshId(), kind: rnd.pick(['posted', 'pending']), debit_account_id: f,
              credit_account_id: rnd.pick(plain.filter((id) => ledgerOf(id) === ledgerOf(f))), amount: model.available(f) });
          }
        } else {
          const spec = overCap();
          const c = model.accounts.get(capped);
          spec.amount = c.debits_posted - c.credits_posted - c.credits_pending;
          if (spec.amount > 0) return spec;
        }
      }
      if (r < 0.33) {
        const [d, c] = pairOn(ledger);
        return extra({ id: freshId(), debit_account_id: d, credit_account_id: c, amount: amount() });
      }
      if (r < 0.50) {
        const [d, c] = pairOn(ledger);
        const spec = extra({ id: freshId(), kind: 'pending', debit_account_id: d, credit_account_id: c, amount: amount() });
        if (rnd.chance(0.3)) spec.timeout_seconds = 3600;
        return spec;
      }
      const open = openPendings();
      const all = [...model.transfers.values()];
      if (r < 0.64 && all.length) {
        const pend = open.length && rnd.chance(0.8) ? rnd.pick(open) : rnd.pick(all);
        const spec = extra({ id: freshId(), kind: 'post', pending_id: pend.id });
        const x = rnd.next();
        if (x < 0.4) spec.amount = Math.max(1, Math.floor(pend.amount * rnd.next()));
        else if (x < 0.5) spec.amount = pend.amount + rnd.int(1, 10);
        return spec;
      }
      if (r < 0.74 && all.length) {
        const pend = open.length && rnd.chance(0.8) ? rnd.pick(open) : rnd.pick(all);
        return extra({ id: freshId(), kind: 'void', pending_id: pend.id });
      }
      if (r < 0.80 && sent.size) {
        return { ...rnd.pick([...sent.values()]) }; // a replay
      }
      if (r < 0.84 && sent.size) {
        const spec = { ...rnd.pick([...sent.values()]) }; // the id again with something else
        const x = rnd.next();
        if (x < 0.4) spec.amount = (spec.amount ?? 0) + 1;
        else if (x < 0.7) spec.code = spec.code === 'refund' ? 'topup' : 'refund';
        else spec.reference = `other-${rnd.int(1, 9)}`;
        return spec;
      }
      // The ones that are always refused.
      const [d, c] = pairOn(ledger);
      const x = rnd.int(0, 9);
      const base = { id: freshId(), debit_account_id: d, credit_account_id: c, amount: amount() };
      switch (x) {
        case 0: return { ...base, amount: rnd.pick([0, -1, -500, 1.5, MAX_AMOUNT + 1]) };
        case 1: return { ...base, credit_account_id: d };
        case 2: return { ...base, credit_account_id: pairOn(ledger === 'EGP' ? 'USD' : 'EGP')[0] };
        case 3: return { ...base, debit_account_id: 'acct_01m83hznebwhtnsedd1qzxg3v9' };
        case 4: return { id: freshId(), kind: 'post', pending_id: `missing-${rnd.int(1, 9)}` };
        case 5: return { ...base, timeout_seconds: 60 };
        case 6: return { ...base, amount: model.available(rnd.pick(flagged)) + 1, debit_account_id: rnd.pick(flagged),
          credit_account_id: undefined };
        case 7: return rnd.chance(0.5) ? { ...base, kind: 'pending', timeout_seconds: 0 } : overCap();
        case 8: {
          // a post naming accounts other than its pending transfer's
          const open = openPendings();
          if (!open.length) return { ...base, code: 'Bad Code' };
          const pend = rnd.pick(open);
          return { id: freshId(), kind: 'post', pending_id: pend.id, debit_account_id: pend.credit };
        }
        default: return { ...base, code: 'Bad Code' };
      }
    }
    // A credit to the capped account beyond its debits (refused: exceeds_debits).
    const capped = ids.find((id) => model.accounts.get(id).flags.has(CFLAG));
    const overCap = () => {
      const c = model.accounts.get(capped);
      const room = c.debits_posted - c.credits_posted - c.credits_pending;
      return { id: freshId(), kind: rnd.pick(['posted', 'pending']), debit_account_id: rnd.pick(plain.filter((id) => ledgerOf(id) === c.ledger)),
        credit_account_id: capped, amount: room + rnd.int(1, 100) };
    };
    const fixup = (spec) => {
      // case 6 above: a credit account on the flagged account's ledger
      if (spec.credit_account_id === undefined && spec.debit_account_id) {
        const on = plain.filter((id) => ledgerOf(id) === ledgerOf(spec.debit_account_id));
        spec.credit_account_id = rnd.pick(on);
      }
      for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
      return spec;
    };

    let ops = 0, batches = 0, succeeded = 0, refused = 0, concurrentRounds = 0;
    const codes = {};
    const record = (status, code) => { const k = `${status} ${code ?? ''}`.trim(); codes[k] = (codes[k] ?? 0) + 1; };

    async function sequentialBatch() {
      const n = rnd.chance(0.6) ? 1 : rnd.int(2, 5);
      const batch = [];
      for (let i = 0; i < n; i++) batch.push(fixup(op()));
      if (rnd.chance(0.05) && batch.length > 1) batch[batch.length - 1].id = batch[0].id; // the same id twice
      const want = model.predict(batch);
      const res = await p.batch(batch, rnd.chance(0.2) ? 'property test' : undefined);
      ops += batch.length;
      batches++;
      const w = `${where(batches)}: ${JSON.stringify(batch)}`;
      if (want.status === 201) {
        const got = assertSuccess(res, 201).transfers;
        assertMade(got, want.made, w);
        model.adopt(want.model);
        for (const t of batch) if (!sent.has(t.id)) sent.set(t.id, t);
        succeeded++;
      } else {
        assertError(res, want.status, want.code);
        for (const t of batch) if (!model.transfers.has(t.id) && !failedIds.includes(t.id) && typeof t.id === 'string') failedIds.push(t.id);
        refused++;
      }
      record(res.status, res.json?.error?.code);
    }

    // Batches fired at once: several draw on one flagged account (so only the
    // affordable ones succeed), two resolve one pending transfer, two are the
    // same new transfer, the rest touch other accounts.
    async function concurrentRound() {
      concurrentRounds++;
      const f = rnd.pick(flagged);
      const ledger = ledgerOf(f);
      const others = plain.filter((id) => ledgerOf(id) === ledger);
      if (model.available(f) < 2000) {
        const fund = { id: `p${seed}-${++next}`, debit_account_id: rnd.pick(others), credit_account_id: f, amount: rnd.int(2000, 8000) };
        const want = model.predict([fund]);
        assertSuccess(await p.batch([fund]), 201);
        model.adopt(want.model);
        sent.set(fund.id, fund);
      }
      const avail = model.available(f);
      const draws = [];
      for (let i = rnd.int(6, 12); i > 0; i--) {
        const batch = [];
        for (let j = rnd.int(1, 2); j > 0; j--) {
          batch.push({ id: `p${seed}-${++next}`, kind: rnd.chance(0.3) ? 'pending' : 'posted', debit_account_id: f,
            credit_account_id: rnd.pick(others), amount: rnd.int(1, Math.max(1, Math.floor(avail / 3))) });
        }
        draws.push(batch);
      }
      // a pending transfer that does not touch f, resolved twice at once
      const otherLedger = ledger === 'EGP' ? 'USD' : 'EGP';
      const untouched = openPendings().filter((t) => t.debit !== f && t.credit !== f);
      const pend = untouched.length ? rnd.pick(untouched) : null;
      const resolutions = pend ? [[{ id: `p${seed}-${++next}`, kind: 'post', pending_id: pend.id }],
        [{ id: `p${seed}-${++next}`, kind: 'void', pending_id: pend.id }]] : [];
      // one new transfer sent twice at once, and a few unrelated ones
      const plainOther = plain.filter((id) => ledgerOf(id) === otherLedger);
      const twin = { id: `p${seed}-${++next}`, debit_account_id: plainOther[0], credit_account_id: plainOther[1], amount: rnd.int(1, 100) };
      const unrelated = [[twin], [{ ...twin }]];
      for (let i = rnd.int(1, 3); i > 0; i--) {
        unrelated.push([{ id: `p${seed}-${++next}`, debit_account_id: plainOther[1], credit_account_id: plainOther[0], amount: rnd.int(1, 100) }]);
      }
      const all = [...draws.map((b) => ['draw', b]), ...resolutions.map((b) => ['resolve', b]), ...unrelated.map((b) => ['other', b])];
      // shuffle
      for (let i = all.length - 1; i > 0; i--) { const j = rnd.int(0, i); [all[i], all[j]] = [all[j], all[i]]; }
      const answers = await Promise.all(all.map(([, b]) => p.batch(b)));
      const w = `${where(batches)} (concurrent round ${concurrentRounds})`;
      const refusedDraws = [];
      let resolvedBy = 0, twinSeen = null;
      for (let i = 0; i < all.length; i++) {
        const [what, batch] = all[i];
        const res = answers[i];
        ops += batch.length;
        batches++;
        record(res.status, res.json?.error?.code);
        if (what === 'draw' && res.status !== 201) {
          assertError(res, 409, 'insufficient_funds');
          refusedDraws.push(batch);
          refused++;
          continue;
        }
        if (what === 'resolve' && res.status !== 201) {
          assertError(res, 409, 'pending_transfer_resolved');
          refused++;
          continue;
        }
        const got = assertSuccess(res, 201).transfers;
        if (what === 'resolve') resolvedBy++;
        if (batch[0].id === twin.id) {
          if (twinSeen) { assert.deepEqual(got[0], twinSeen, `${w}: the twin answered twice differently`); continue; }
          twinSeen = got[0];
        }
        // debits only leave f here, so any order of the batches that
        // succeeded is one the model accepts
        const want = model.predict(batch);
        assert.equal(want.status, 201, `${w}: the model refuses a batch the ledger made: ${JSON.stringify(batch)} ${JSON.stringify(want)}`);
        assertMade(got, want.made, `${w}: ${JSON.stringify(batch)}`);
        model.adopt(want.model);
        for (const t of batch) sent.set(t.id, t);
        succeeded++;
      }
      if (pend) assert.equal(resolvedBy, 1, `${w}: ${resolvedBy} resolutions of ${pend.id} succeeded`);
      const left = model.available(f);
      assert.ok(left >= 0, `${w}: ${f} went negative`);
      for (const batch of refusedDraws) {
        const need = batch.reduce((sum, t) => sum + t.amount, 0);
        assert.ok(left < need, `${w}: refused a draw of ${need} although ${left} is left: ${JSON.stringify(batch)}`);
      }
    }

    const started = Date.now();
    while (ops < target) {
      if (batches % 12 === 11) await concurrentRound();
      else await sequentialBatch();
      await checkAgainstModel(p, model, where(batches));
    }
    const seconds = (Date.now() - started) / 1000;
    // The run touched what it should have.
    const need = ['201', '409 insufficient_funds', '409 transfer_id_reused', '409 pending_transfer_resolved', '422 validation_failed',
      '422 same_account', '422 ledger_mismatch', '404 account_not_found', '404 pending_transfer_not_found', '422 amount_exceeds_pending',
      '422 not_pending', '409 exceeds_debits'];
    for (const k of need) assert.ok(codes[k] > 0, `seed ${seed}: no batch answered ${k}: ${JSON.stringify(codes)}`);
    assert.ok(concurrentRounds >= 10);
    const report = await checkAgainstModel(p, model, 'the end');
    const cli = await cliVerify(srv.dbUrl);
    assert.equal(cli.code, 0, JSON.stringify(cli.report.first_fault));
    assert.deepEqual(cli.report.ledgers, report.ledgers);
    const madeCount = [...model.transfers.values()].length;
    assert.equal(report.transfers, madeCount, 'the ledger holds exactly the transfers the model made');
    console.log(`property (${ENGINE}, seed ${seed}): ${ops} operations in ${batches} batches (${succeeded} made, ${refused} refused, ` +
      `${concurrentRounds} concurrent rounds), ${madeCount} transfers, ${seconds.toFixed(1)} s; answers ${JSON.stringify(codes)}`);
  } finally {
    await srv.stop();
  }
});

// ---------------------------------------------------------------- tampering

test('TAMPER: souq ledger verify finds a changed transfer (hash_mismatch), a re-hashed one (chain_broken) and a changed balance (balance_mismatch)', async (t) => {
  const tool = ENGINE === 'sqlite' ? 'sqlite3' : 'psql';
  if (spawnSync('which', [tool]).status !== 0) { t.skip(`no ${tool} on this machine`); return; }
  const srv = await startSouq();
  try {
    const p = ledgerApi(srv, await makeAdmin(srv));
    const a = await p.account('EGP', { flags: [FLAG] });
    const b = await p.account('EGP');
    const made = [];
    made.push(...await p.ok([{ id: 'tamper-1', debit_account_id: b.id, credit_account_id: a.id, amount: 1000 }]));
    made.push(...await p.ok([{ id: 'tamper-2', debit_account_id: a.id, credit_account_id: b.id, amount: 100, reference: 'x' },
      { id: 'tamper-3', kind: 'pending', debit_account_id: a.id, credit_account_id: b.id, amount: 50, timeout_seconds: 3600 }]));
    made.push(...await p.ok([{ id: 'tamper-4', kind: 'post', pending_id: 'tamper-3', amount: 20 }]));
    made.push(...await p.ok([{ id: 'tamper-5', debit_account_id: a.id, credit_account_id: b.id, amount: 1 }]));
    // the hash is what ledger.cpp says it is
    let prev = '0'.repeat(64);
    for (const x of made) {
      assert.equal(chainHash(prev, x), x.hash, `hash of ${x.id}`);
      prev = x.hash;
    }
    srv.kill('SIGTERM');
    await srv.exited;
    const db = srv.dbUrl;
    let v = await cliVerify(db);
    assert.equal(v.code, 0, JSON.stringify(v.report));
    assert.equal(v.report.ok, true);
    assert.equal(v.report.transfers, 5);

    // The append-only triggers refuse changes.
    const update = "UPDATE ledger_transfers SET amount = amount + 1 WHERE id = 'tamper-2'";
    let r = sql(db, update);
    assert.notEqual(r.code, 0, 'an UPDATE of a transfer went through');
    assert.match(r.stderr, /append-only/);
    r = sql(db, "DELETE FROM ledger_transfers WHERE id = 'tamper-5'");
    assert.notEqual(r.code, 0, 'a DELETE of a transfer went through');
    assert.match(r.stderr, /append-only/);

    // Without them: a changed amount.
    const drop = ENGINE === 'sqlite' ? 'DROP TRIGGER ledger_transfers_no_update'
      : 'DROP TRIGGER ledger_transfers_append_only ON ledger_transfers';
    r = sql(db, drop);
    assert.equal(r.code, 0, r.stderr);
    r = sql(db, update);
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 1);
    assert.equal(v.report.ok, false);
    assert.deepEqual([v.report.first_fault.kind, v.report.first_fault.transfer_id, v.report.first_fault.ledger],
      ['hash_mismatch', 'tamper-2', 'EGP'], JSON.stringify(v.report.first_fault));
    assert.match(v.stderr, /fault/);

    // The amount and its hash both rewritten: the next link no longer matches.
    const t2 = made.find((x) => x.id === 'tamper-2');
    const forged = chainHash(made[0].hash, { ...t2, amount: t2.amount + 1 });
    r = sql(db, `UPDATE ledger_transfers SET hash = '${forged}' WHERE id = 'tamper-2'`);
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 1);
    assert.deepEqual([v.report.first_fault.kind, v.report.first_fault.transfer_id], ['chain_broken', 'tamper-3'],
      JSON.stringify(v.report.first_fault));

    // Put it back: it verifies again.
    r = sql(db, `UPDATE ledger_transfers SET amount = amount - 1, hash = '${t2.hash}' WHERE id = 'tamper-2'`);
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 0, JSON.stringify(v.report.first_fault));

    // A balance changed behind the ledger's back.
    r = sql(db, `UPDATE ledger_accounts SET credits_posted = credits_posted + 5 WHERE id = '${b.id}'`);
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 1);
    assert.deepEqual([v.report.first_fault.kind, v.report.first_fault.account_id], ['balance_mismatch', b.id],
      JSON.stringify(v.report.first_fault));
    assert.ok(v.report.faults.some((f) => f.kind === 'totals_unbalanced'), 'and the ledger no longer balances');

    // An account whose balances break its flag (the transfers and balances agreeing with each other).
    r = sql(db, `UPDATE ledger_accounts SET credits_posted = credits_posted - 5 WHERE id = '${b.id}'`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cliVerify(db)).code, 0);
    r = sql(db, `UPDATE ledger_accounts SET flags = 2 WHERE id = '${a.id}'`);
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 1);
    assert.deepEqual([v.report.first_fault.kind, v.report.first_fault.account_id], ['limit_exceeded', a.id]);
    r = sql(db, `UPDATE ledger_accounts SET flags = 1 WHERE id = '${a.id}'`);

    // The last transfer removed: the head names a transfer that is gone.
    const dropDelete = ENGINE === 'sqlite' ? 'DROP TRIGGER ledger_transfers_no_delete' : 'SELECT 1';
    assert.equal(sql(db, dropDelete).code, 0);
    r = sql(db, "DELETE FROM ledger_transfers WHERE id = 'tamper-5'");
    assert.equal(r.code, 0, r.stderr);
    v = await cliVerify(db);
    assert.equal(v.code, 1);
    assert.ok(v.report.faults.some((f) => f.kind === 'head_mismatch'), JSON.stringify(v.report.faults));
  } finally {
    await srv.stop();
  }
});

// ---------------------------------------------------------------- a crash under load

test('CRASH: souq killed (SIGKILL) under load loses no acknowledged transfer; the ledger verifies after a restart', { timeout: 300_000 }, async () => {
  const a = await startSouq();
  let b;
  try {
    const p = ledgerApi(a, await makeAdmin(a));
    const egp = [];
    for (let i = 0; i < 3; i++) egp.push(await p.account('EGP', { code: 'crash_plain' }));
    const wallets = [];
    for (let i = 0; i < 3; i++) wallets.push(await p.account('EGP', { flags: [FLAG], code: 'crash_wallet' }));
    const usd = [await p.account('USD', { code: 'crash_plain' }), await p.account('USD', { code: 'crash_plain' })];
    await p.ok(wallets.map((w, i) => ({ id: `crash-fund-${i}`, debit_account_id: egp[0].id, credit_account_id: w.id, amount: 20_000 })));

    const sentBatches = new Map(); // reference → the transfer ids of its batch
    const acked = new Set(); // transfer ids of batches answered 201 before the kill
    let ackedBatches = 0, refusedBatches = 0, lost = 0;
    let stop = false;
    const rnd = prng(7);
    const client = async (c) => {
      for (let n = 0; !stop; n++) {
        const ref = `crash-${c}-${n}`;
        const k = rnd.int(0, 3);
        let batch;
        if (k === 0) {
          batch = [{ id: `${ref}:a`, debit_account_id: egp[1].id, credit_account_id: egp[2].id, amount: rnd.int(1, 100), reference: ref },
            { id: `${ref}:b`, debit_account_id: usd[0].id, credit_account_id: usd[1].id, amount: rnd.int(1, 100), reference: ref }];
        } else if (k === 1) {
          batch = [{ id: `${ref}:hold`, kind: 'pending', debit_account_id: rnd.pick(wallets).id, credit_account_id: egp[2].id,
            amount: rnd.int(1, 300), reference: ref },
          { id: `${ref}:post`, kind: 'post', pending_id: `${ref}:hold`, amount: 1, reference: ref }];
        } else if (k === 2) {
          // big enough that some wallets run dry: refused batches leave nothing
          batch = [{ id: `${ref}:pay`, debit_account_id: rnd.pick(wallets).id, credit_account_id: egp[1].id, amount: rnd.int(1, 2000), reference: ref },
            { id: `${ref}:fee`, debit_account_id: egp[1].id, credit_account_id: egp[0].id, amount: 1, reference: ref }];
        } else {
          batch = [{ id: `${ref}:hold`, kind: 'pending', debit_account_id: egp[0].id, credit_account_id: egp[1].id,
            amount: rnd.int(1, 300), timeout_seconds: 3600, reference: ref }];
        }
        sentBatches.set(ref, batch.map((t) => t.id));
        let res;
        try {
          res = await a.request('POST', '/api/v1/admin/ledger/transfers', { body: { transfers: batch }, ...auth(p.admin), timeout: 30_000 });
        } catch {
          lost++; // no answer: the kill came first; made or not, all or nothing
          if (stop) return;
          continue;
        }
        if (res.status === 201) {
          assertSuccess(res, 201);
          for (const id of batch.map((t) => t.id)) acked.add(id);
          ackedBatches++;
        } else {
          assertError(res, 409, 'insufficient_funds');
          refusedBatches++;
        }
      }
    };
    const clients = Array.from({ length: 16 }, (_, c) => client(c));
    // Kill once the load is well under way.
    const t0 = Date.now();
    while (ackedBatches < 1500 && Date.now() - t0 < 15_000) await sleep(20);
    const deadline = Date.now() + 60_000;
    while (ackedBatches < 200 && Date.now() < deadline) await sleep(20);
    assert.ok(ackedBatches >= 200, `only ${ackedBatches} batches acknowledged`);
    a.kill('SIGKILL');
    stop = true;
    await a.exited;
    await Promise.all(clients);
    assert.equal(a.exitInfo.signal, 'SIGKILL');

    b = await startSouq({ database: a.dbUrl });
    const q = ledgerApi(b, await (async () => {
      const login = assertSuccess(await b.post('/api/v1/auth/login', { email: p.admin.email, password: 'admin password 1' }));
      return { token: login.access_token, email: p.admin.email };
    })());
    const cli = await cliVerify(a.dbUrl);
    assert.equal(cli.code, 0, `verify after the crash: ${JSON.stringify(cli.report.first_fault)}`);
    assert.equal((await q.verify()).ok, true);
    // Every acknowledged transfer is there, and every batch is all there or not at all.
    let made = 0, madeBatches = 0;
    const refs = [...sentBatches.keys()];
    for (let i = 0; i < refs.length; i += 16) {
      await Promise.all(refs.slice(i, i + 16).map(async (ref) => {
        const ids = sentBatches.get(ref);
        const mine = (await q.byReference(ref)).map((t) => t.id);
        for (const id of mine) assert.ok(ids.includes(id), `${id} under reference ${ref} was never sent`);
        if (ids.some((id) => acked.has(id))) assert.deepEqual(mine.sort(), [...ids].sort(), `acknowledged batch ${ref} is not all there`);
        assert.ok(mine.length === 0 || mine.length === ids.length, `batch ${ref} is half there: ${mine}`);
        made += mine.length;
        if (mine.length) madeBatches++;
      }));
    }
    const report = await q.verify();
    assert.equal(report.transfers, made + 3, 'no transfer the clients did not send');
    // It goes on working.
    await q.ok([{ id: 'crash-after', debit_account_id: egp[1].id, credit_account_id: egp[2].id, amount: 1 }]);
    assert.equal((await q.verify()).ok, true);
    console.log(`crash (${ENGINE}): ${ackedBatches} batches acknowledged, ${refusedBatches} refused, ${lost} without an answer; ` +
      `${madeBatches} batches (${made} transfers) found after the restart`);
  } finally {
    await b?.stop();
    await a.stop();
  }
});
