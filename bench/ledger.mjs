// Ledger and payments throughput: what one souq does per second on each
// engine, with N concurrent clients (keep-alive connections, each sending its
// next request when the last is answered).
//
//   - single-phase: a batch of one `posted` transfer out of the client's own
//     flagged wallet (so the balance check runs) into a shared account;
//   - single-phase, batches of 10 (a linked batch: all or none);
//   - two-phase: a `pending` transfer, then a `post` of it (two requests);
//   - the full payment path: a buyer tops up through the sandbox gateway
//     (POST /api/v1/payments → POST /sandbox/checkout/{id}/complete → the
//     sandbox's signed webhook → the payment succeeds, polled every 5 ms),
//     then pays an accepted deal from the wallet (held in escrow), the seller
//     starts and delivers, and the buyer confirms (escrow released to the
//     seller minus commission). The deals are made before the clock starts.
//
//   node bench/ledger.mjs [seconds per target] [rounds] [clients …]
//
// Defaults: 5 s, 3 rounds, clients 1 8 32. Both engines, alternating
// (round 1 of every target, then round 2 …); LEDGER_BENCH_ENGINES=sqlite
// (or postgres) runs one. PostgreSQL: the cluster at SOUQ_TEST_PG_URL, or one
// the harness starts in a temporary folder. LEDGER_BENCH_PATHS sets the full
// paths per client per round (default 15); LEDGER_BENCH_ARGS adds arguments
// to `souq serve` (e.g. "--workers 8"); LEDGER_BENCH_TARGETS runs only the
// targets whose name matches it (e.g. "full path").
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { startSouq, assertSuccess, psqlAdmin, pgAdminUrl } from '../tests/api/harness.mjs';
import { register, makeAdmin, makeSeller, postRequest, makeOffer, auth } from '../tests/api/people.mjs';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 3);
const CLIENTS = process.argv.length > 4 ? process.argv.slice(4).map(Number) : [1, 8, 32];
const ENGINES = (process.env.LEDGER_BENCH_ENGINES ?? 'sqlite,postgres').split(',').map((e) => e.trim()).filter(Boolean);
const PATHS_PER_CLIENT = Number(process.env.LEDGER_BENCH_PATHS ?? 15);
const PATH_CLIENTS = [1, 8].filter((c) => c <= Math.max(...CLIENTS));

// ---------------------------------------------------------------- a keep-alive client

function clientFor(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return (method, urlPath, { body, token, key } = {}) => new Promise((resolve, reject) => {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = {};
    if (payload) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = payload.length; }
    if (token) headers.Authorization = `Bearer ${token}`;
    if (key) headers['Idempotency-Key'] = key;
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${urlPath}: no answer in 60 s`)));
    req.end(payload ?? undefined);
  });
}

function expect(res, status, what) {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${res.text.slice(0, 500)}`);
  return res.json.data;
}

const pick = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

// ---------------------------------------------------------------- one engine's server

async function startEngine(engine) {
  let database, cleanup;
  if (engine === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-bench-ledger-'));
    database = `sqlite:${path.join(dir, 'souq.db')}`;
    cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
  } else {
    const admin = await pgAdminUrl();
    const name = `souq_bench_${crypto.randomBytes(4).toString('hex')}`;
    await psqlAdmin(`CREATE DATABASE "${name}"`);
    database = admin.replace(/\/[^/?]*(\?.*)?$/, (_, query) => `/${name}${query ?? ''}`);
    cleanup = async () => { await psqlAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {}); };
  }
  const extra = (process.env.LEDGER_BENCH_ARGS ?? '').split(/\s+/).filter(Boolean);
  let s;
  try {
    s = await startSouq({ database, args: ['--payment-providers', 'wallet,sandbox', ...extra] });
  } catch (err) {
    await cleanup();
    throw err;
  }
  const call = clientFor(s.port);
  const admin = await makeAdmin(s);
  const account = async (flags = []) => expect(await call('POST', '/api/v1/admin/ledger/accounts',
    { body: { ledger: 'EGP', code: 'bench', flags }, token: admin.token }), 201, 'open an account');
  const source = await account();
  const sink = await account();
  const maxClients = Math.max(...CLIENTS);
  const wallets = [];
  for (let i = 0; i < maxClients; i++) wallets.push(await account(['debits_must_not_exceed_credits']));
  expect(await call('POST', '/api/v1/admin/ledger/transfers', { token: admin.token, body: {
    transfers: wallets.map((w, i) => ({ id: `fund-${i}`, debit_account_id: source.id, credit_account_id: w.id, amount: 1e14 })),
  } }), 201, 'fund the wallets');
  // Buyers and sellers for the full path: one pair per client.
  const pairs = [];
  for (let i = 0; i < Math.max(...PATH_CLIENTS); i++) {
    pairs.push({ buyer: await register(s, `bench-buyer-${i}`), seller: await makeSeller(s, admin, `bench-seller-${i}`) });
  }
  return { engine, s, call, admin, sink, wallets, pairs, cleanup, runs: 0 };
}

// ---------------------------------------------------------------- the measurements

// Each of `clients` loops over `step(client, n)` for SECONDS; returns operations/s and request latencies.
async function timed(clients, step) {
  const latencies = [];
  let ops = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let n = 0; Date.now() < end; n++) {
      const t0 = performance.now();
      const done = await step(c, n); // (not `ops += await …`: that reads ops before the await)
      ops += done;
      latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  return { perSecond: ops / SECONDS, p50: pick(latencies, 0.5), p99: pick(latencies, 0.99) };
}

async function single(e, clients, batch = 1) {
  const run = ++e.runs;
  return timed(clients, async (c, n) => {
    const transfers = [];
    for (let i = 0; i < batch; i++) {
      transfers.push({ id: `s${run}-${c}-${n}-${i}`, debit_account_id: e.wallets[c].id, credit_account_id: e.sink.id, amount: 1, code: 'bench' });
    }
    expect(await e.call('POST', '/api/v1/admin/ledger/transfers', { token: e.admin.token, body: { transfers } }), 201, 'transfer');
    return batch;
  });
}

async function twoPhase(e, clients) {
  const run = ++e.runs;
  return timed(clients, async (c, n) => {
    const id = `p${run}-${c}-${n}`;
    expect(await e.call('POST', '/api/v1/admin/ledger/transfers', { token: e.admin.token, body: { transfers: [
      { id, kind: 'pending', debit_account_id: e.wallets[c].id, credit_account_id: e.sink.id, amount: 2, code: 'bench', timeout_seconds: 3600 }] } }),
    201, 'pending');
    expect(await e.call('POST', '/api/v1/admin/ledger/transfers', { token: e.admin.token, body: { transfers: [
      { id: `${id}:post`, kind: 'post', pending_id: id, amount: 1, code: 'bench' }] } }), 201, 'post');
    return 1;
  });
}

// Deals waiting for payment, made before the clock starts.
async function makeDeals(e, clients, count) {
  const deals = [];
  for (let c = 0; c < clients; c++) {
    const { buyer, seller } = e.pairs[c];
    deals.push(await Promise.all(Array.from({ length: count }, async () => {
      const r = await postRequest(e.s, buyer, { budget_min: 50_000, budget_max: 200_000 });
      const o = await makeOffer(e.s, seller, r.id, { price: 100_000 });
      return assertSuccess(await e.s.post(`/api/v1/offers/${o.id}/accept`, undefined, auth(buyer)));
    })));
  }
  return deals;
}

async function fullPath(e, clients) {
  const deals = await makeDeals(e, clients, PATHS_PER_CLIENT);
  const latencies = [];
  const steps = {}; // step → [ms]
  // How long due jobs wait meanwhile (the webhook is two jobs: the sandbox's
  // delivery, then its processing), sampled from /metrics.
  let sampling = true, maxWait = 0;
  const sampler = (async () => {
    while (sampling) {
      const m = await e.call('GET', '/metrics');
      const q = /^souq_jobs_oldest_queued_age_seconds ([0-9.]+)/m.exec(m.text);
      if (q) maxWait = Math.max(maxWait, Number(q[1]));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const t0 = performance.now();
  await Promise.all(deals.map(async (mine, c) => {
    const { buyer, seller } = e.pairs[c];
    for (const deal of mine) {
      const started = performance.now();
      let mark = started;
      const lap = (name) => { const now = performance.now(); (steps[name] ??= []).push(now - mark); mark = now; };
      const top = expect(await e.call('POST', '/api/v1/payments', { token: buyer.token, key: crypto.randomUUID(),
        body: { provider: 'sandbox', topup: { amount: deal.amount, currency: deal.currency } } }), 201, 'top-up');
      lap('top-up');
      expect(await e.call('POST', `/sandbox/checkout/${top.id}/complete`, { body: { outcome: 'succeeded' } }), 202, 'checkout');
      lap('checkout');
      for (let tries = 0; ; tries++) {
        const p = expect(await e.call('GET', `/api/v1/payments/${top.id}`, { token: buyer.token }), 200, 'payment');
        if (p.status === 'succeeded') break;
        if (p.status !== 'pending' || tries > 6000) throw new Error(`top-up ${top.id} is ${p.status}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      lap('webhook');
      const paid = expect(await e.call('POST', '/api/v1/payments', { token: buyer.token, key: crypto.randomUUID(),
        body: { provider: 'wallet', transaction_id: deal.id } }), 201, 'pay from the wallet');
      lap('pay');
      if (paid.status !== 'succeeded') throw new Error(`wallet payment ${paid.id} is ${paid.status}`);
      for (const [step, who] of [['start', seller], ['deliver', seller], ['confirm', buyer]]) {
        expect(await e.call('POST', `/api/v1/transactions/${deal.id}/transitions/${step}`, { token: who.token }), 200, step);
        lap(step);
      }
      latencies.push(performance.now() - started);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;
  latencies.sort((a, b) => a - b);
  const breakdown = Object.entries(steps).map(([k, v]) => { v.sort((a, b) => a - b); return `${k} ${pick(v, 0.5).toFixed(1)}`; }).join(', ') +
    `; oldest due job waited up to ${(maxWait * 1000).toFixed(0)} ms`;
  return { perSecond: latencies.length / seconds, p50: pick(latencies, 0.5), p99: pick(latencies, 0.99), breakdown };
}

// ---------------------------------------------------------------- the run

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
let nproc = os.cpus().length;
try { nproc = Number(execSync('nproc').toString().trim()); } catch { /* os.cpus() then */ }
console.log(`machine: nproc ${nproc}, ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, node ${process.version}`);
console.log(`${SECONDS} s per target, ${ROUNDS} rounds alternating, clients ${CLIENTS.join(' ')}; ` +
  `full path: ${PATHS_PER_CLIENT} per client per round with ${PATH_CLIENTS.join(' and ')} clients`);

const engines = [];
for (const engine of ENGINES) engines.push(await startEngine(engine));
console.log(engines.map((e) => `${e.engine}: souq on port ${e.s.port}`).join('; '));

const targets = [];
for (const c of CLIENTS) targets.push({ name: `single-phase, 1 transfer a batch`, unit: 'transfers/s', clients: c, run: (e) => single(e, c) });
const maxC = Math.max(...CLIENTS);
targets.push({ name: 'single-phase, 10 transfers a batch', unit: 'transfers/s', clients: maxC, run: (e) => single(e, maxC, 10) });
for (const c of CLIENTS) targets.push({ name: 'two-phase (pending, then post)', unit: 'pairs/s', clients: c, run: (e) => twoPhase(e, c) });
for (const c of PATH_CLIENTS) targets.push({ name: 'full path (top-up → webhook → pay → escrow → release)', unit: 'paths/s', clients: c, run: (e) => fullPath(e, c) });

// LEDGER_BENCH_TARGETS: only the targets whose name matches this pattern (e.g. "full path").
if (process.env.LEDGER_BENCH_TARGETS) {
  const only = new RegExp(process.env.LEDGER_BENCH_TARGETS);
  targets.splice(0, targets.length, ...targets.filter((t) => only.test(t.name)));
}
const results = new Map(); // `${target}|${engine}` → [results]
for (let r = 1; r <= ROUNDS; r++) {
  for (const [i, t] of targets.entries()) {
    for (const e of engines) {
      const got = await t.run(e);
      const k = `${i}|${e.engine}`;
      if (!results.has(k)) results.set(k, []);
      results.get(k).push(got);
      console.log(`round ${r}: ${e.engine.padEnd(8)} ${t.name}, ${t.clients} client(s): ${got.perSecond.toFixed(1)} ${t.unit}, ` +
        `p50 ${got.p50.toFixed(2)} ms, p99 ${got.p99.toFixed(2)} ms${got.breakdown ? ` (step p50 ms: ${got.breakdown})` : ''}`);
    }
  }
}

// Medians over the rounds.
const median = (list, f) => { const v = list.map(f).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
const cell = (k) => {
  const list = results.get(k);
  return list ? { perSecond: median(list, (x) => x.perSecond), p50: median(list, (x) => x.p50), p99: median(list, (x) => x.p99) } : null;
};
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
console.log('\nmedian of the rounds (p50 / p99 of one operation: a request; a pending-and-post pair; a whole path)\n');
const heads = engines.map((e) => `${e.engine} /s | ${e.engine} p50 / p99 ms`);
const versus = engines.length === 2 ? ` ${engines[1].engine} ÷ ${engines[0].engine} |` : '';
console.log(`| target | clients | ${heads.join(' | ')} |${versus}`);
console.log(`|---|---|${engines.map(() => '---|---|').join('')}${engines.length === 2 ? '---|' : ''}`);
for (const [i, t] of targets.entries()) {
  const cells = engines.map((e) => cell(`${i}|${e.engine}`));
  const row = cells.map((c) => `${fmt(c.perSecond)} | ${c.p50.toFixed(1)} / ${c.p99.toFixed(1)}`).join(' | ');
  const ratio = engines.length === 2 ? ` ${Math.round((100 * cells[1].perSecond) / cells[0].perSecond)} % |` : '';
  console.log(`| ${t.name} (${t.unit}) | ${t.clients} | ${row} |${ratio}`);
}
// Two-phase against single-phase, per engine and client count.
const both = CLIENTS.every((c) => ['single-phase, 1', 'two-phase'].every((n) => targets.some((t) => t.name.startsWith(n) && t.clients === c)));
if (both) console.log('\ntwo-phase pairs/s as a share of single-phase transfers/s:');
for (const e of both ? engines : []) {
  const parts = CLIENTS.map((c) => {
    const si = targets.findIndex((t) => t.name.startsWith('single-phase, 1') && t.clients === c);
    const ti = targets.findIndex((t) => t.name.startsWith('two-phase') && t.clients === c);
    return `${c} client(s) ${Math.round((100 * cell(`${ti}|${e.engine}`).perSecond) / cell(`${si}|${e.engine}`).perSecond)} %`;
  });
  console.log(`  ${e.engine}: ${parts.join(', ')}`);
}

// The ledger still verifies after all that.
for (const e of engines) {
  const report = expect(await e.call('GET', '/api/v1/admin/ledger/verify', { token: e.admin.token }), 200, 'verify');
  console.log(`${e.engine}: ledger verify ${report.ok ? 'ok' : 'FAULTY'}, ${report.transfers} transfers`);
  await e.s.stop();
  await e.cleanup();
}
process.exit(0);
