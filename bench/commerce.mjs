// Commerce under load (issue 7), on SQLite and PostgreSQL, side by side:
//
//   1. `souq seed --products N` (categories, shops, products with 2 SKUs each,
//      then the search index), timed;
//   2. the product page (GET /api/v1/products/{id}, anonymous: from the
//      in-process cache after the first read), random ids, wrk at 50
//      connections: requests/s, p50, p99;
//   3. a page of 20 products (GET /api/v1/products?limit=20, Medusa's "list"
//      figure), wrk at 50 connections: three anonymous pages (served from
//      the one-second page cache, as production serves them), and pages
//      from 2,000 cursors, each request's URL distinct (every request runs
//      the list's query; the products on it come from the product-page
//      cache, or are rendered into it);
//   4. search with filters and facets (a fixed mix of queries: text, typos,
//      category with descendants, price range, attribute, city, distance,
//      sorts, facets), 8 clients: p50, p95, p99;
//   5. checkout under contention: 50 buyers, each looping add-to-cart +
//      POST /orders on one of 5 hot SKUs (stock enough for all): orders/s
//      and p50/p99 of the checkout request.
//
//   node bench/commerce.mjs [products, default 1000000] [seconds per measure, default 10]
//
// COMMERCE_BENCH_ENGINES=sqlite (or postgres) runs one. PostgreSQL: the
// cluster at SOUQ_TEST_PG_URL, or one the harness starts, set up as a
// production server would be rather than as the tests' (fsync on, 2 GB of
// shared buffers; PG_CLUSTER_SETTINGS replaces these). Commits are not
// waited for on either engine (synchronous_commit off; SQLite's WAL with
// synchronous=NORMAL): a crash may lose the last commits, never corrupt.
// COMMERCE_BENCH_SQLITE_DB / COMMERCE_BENCH_POSTGRES_DB: a database `souq seed
// --products` already filled (seeding and indexing 1M products takes minutes).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startSouq, assertSuccess, psqlAdmin, pgAdminUrl, SOUQ_BIN } from '../tests/api/harness.mjs';
import { register, makeAdmin, makeSeller, auth, withKey } from '../tests/api/people.mjs';

process.env.PG_CLUSTER_SETTINGS ??= '-c fsync=on -c full_page_writes=on -c shared_buffers=2GB -c effective_cache_size=12GB' +
  ' -c work_mem=32MB -c maintenance_work_mem=512MB -c random_page_cost=1.1 -c max_wal_size=4GB';

const PRODUCTS = Number(process.argv[2] ?? 1_000_000);
const SECONDS = Number(process.argv[3] ?? 10);
const ENGINES = (process.env.COMMERCE_BENCH_ENGINES ?? 'sqlite,postgres').split(',').map((e) => e.trim()).filter(Boolean);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const ms = (x) => Math.round(x * 100) / 100;

function client(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  return (method, urlPath, { body, headers = {} } = {}) => new Promise((resolve, reject) => {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const h = { ...headers };
    if (payload) { h['Content-Type'] = 'application/json'; h['Content-Length'] = payload.length; }
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// wrk at 50 connections on `url`, with a Lua script choosing each request's
// path. Asynchronous: this process keeps reading the server's log pipe
// meanwhile (a full pipe would stall the server and the figures).
async function wrk(url, script) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-wrk-'));
  const file = path.join(dir, 'paths.lua');
  fs.writeFileSync(file, script);
  // One wrk thread: the other core is the server's (as in bench/http.sh).
  const child = spawn('wrk', ['-t1', '-c50', `-d${SECONDS}s`, '--latency', '-s', file, url]);
  let text = '', errors = '';
  child.stdout.on('data', (c) => { text += c; });
  child.stderr.on('data', (c) => { errors += c; });
  const status = await new Promise((resolve) => child.on('close', resolve));
  fs.rmSync(dir, { recursive: true, force: true });
  if (status !== 0) throw new Error(`wrk failed: ${errors}`);
  const val = (re) => { const m = text.match(re); return m ? m[1] : null; };
  const toMs = (v) => (v.endsWith('us') ? parseFloat(v) / 1000 : v.endsWith('ms') ? parseFloat(v) : parseFloat(v) * 1000);
  if (/Non-2xx/.test(text)) throw new Error(`non-2xx answers:\n${text}`);
  const out = { rps: Math.round(parseFloat(val(/Requests\/sec:\s+([\d.]+)/))), p50: ms(toMs(val(/50%\s+(\S+)/))), p99: ms(toMs(val(/99%\s+(\S+)/))) };
  if (Object.values(out).some(Number.isNaN)) throw new Error(`cannot read wrk's figures:\n${text}`);
  return out;
}

// Each request's path from `paths`; with `unique`, every URL is made
// distinct by a parameter the route ignores, so that no answer comes from
// the one-second page cache of anonymous lists.
const luaPaths = (paths, unique = false) => `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n * 7919) % #paths + 1]${unique ? ' .. "&n=" .. n' : ''})
end
`;

async function database(engine, name) {
  if (engine === 'sqlite') return `sqlite:${path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'souq-bench-')), 'souq.db')}`;
  const admin = await pgAdminUrl();
  await psqlAdmin(`CREATE DATABASE ${name}`);
  const m = /^(postgres(?:ql)?:\/\/[^/]+)(\/[^?]*)?(\?.*)?$/.exec(admin);
  return `${m[1]}/${name}${m[3] ?? ''}`;
}

async function run(engine) {
  const result = { engine };
  const reuse = process.env[`COMMERCE_BENCH_${engine.toUpperCase()}_DB`];
  const db = reuse || await database(engine, `souq_commerce_${crypto.randomBytes(4).toString('hex')}`);
  if (reuse) {
    console.error(`== ${engine}: an already seeded database, ${reuse}`);
    result.seed_s = 'reused';
  } else {
    console.error(`== ${engine}: seeding ${PRODUCTS} products`);
    const t0 = Date.now();
    const seeded = spawnSync(SOUQ_BIN, ['seed', '--database', db, '--requests', '0', '--products', String(PRODUCTS), '--log-level', 'warn'],
      { stdio: ['ignore', 'inherit', 'inherit'], env: { PATH: process.env.PATH } });
    if (seeded.status !== 0) throw new Error('seed failed');
    result.seed_s = Math.round((Date.now() - t0) / 1000);
  }
  const s = await startSouq({ database: db, dev: false, args: ['--payment-providers', 'wallet'] });
  try {
    const req = client(s.port);
    // Product ids from the newest pages, and the seeded categories.
    const ids = [];
    let cursor = null;
    while (ids.length < 2000) {
      const page = await req('GET', `/api/v1/products?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      for (const p of page.json.data) ids.push(p.id);
      cursor = page.json.meta.next_cursor;
      if (!cursor) break;
    }
    const base = `http://127.0.0.1:${s.port}`;
    result.detail = await wrk(base, luaPaths(ids.map((id) => `/api/v1/products/${id}`)));
    console.error(`${engine} product page`, result.detail);
    result.list = await wrk(base, luaPaths(['/api/v1/products?limit=20', '/api/v1/products?limit=20&category=electronics',
      '/api/v1/products?limit=20&category=phones']));
    console.error(`${engine} list of 20 (page cache)`, result.list);
    result.list_db = await wrk(base, luaPaths(ids.map((id) => `/api/v1/products?limit=20&cursor=${id}`), true));
    console.error(`${engine} list of 20 (each from the database)`, result.list_db);

    // Search: a fixed mix, 8 clients, every answer timed.
    const queries = [
      '/api/v1/search?q=wireless+headphones', '/api/v1/search?q=hedphones', '/api/v1/search?q=samsung&category=electronics',
      '/api/v1/search?category=phones&min_price=10000&max_price=50000&currency=EGP&facets=color',
      '/api/v1/search?q=desk&city=Cairo&sort=price_asc', '/api/v1/search?category=home&attr.color=red&facets=color',
      '/api/v1/search?q=premium&lat=30.0444&lng=31.2357&radius_km=20', '/api/v1/search?category=fashion&sort=rating',
      '/api/v1/search?q=vintage+sony+camera&condition=new', '/api/v1/search?type=sellers&q=shop',
    ];
    const times = [];
    const deadline = Date.now() + SECONDS * 1000;
    let n = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (Date.now() < deadline) {
        const q = queries[n++ % queries.length];
        const start = process.hrtime.bigint();
        const r = await req('GET', q);
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (r.status !== 200) throw new Error(`search ${q}: ${r.status} ${JSON.stringify(r.json)}`);
      }
    }));
    times.sort((a, b) => a - b);
    result.search = { n: times.length, rps: Math.round(times.length / SECONDS), p50: ms(percentile(times, 0.5)), p95: ms(percentile(times, 0.95)), p99: ms(percentile(times, 0.99)) };
    console.error(`${engine} search`, result.search);

    // Checkout under contention: 50 buyers on 5 hot SKUs.
    const admin = await makeAdmin(s);
    const seller = await makeSeller(s, admin, 'hot');
    const hot = [];
    for (let i = 0; i < 5; i++) {
      const p = assertSuccess(await s.post('/api/v1/products', { title: `Hot item ${i}`, category: 'phones',
        skus: [{ price: 1000, currency: 'EGP', stock: 1_000_000 }] }, auth(seller)), 201);
      hot.push(p.skus[0].id);
    }
    const buyers = [];
    for (let i = 0; i < 50; i += 5) buyers.push(...await Promise.all([0, 1, 2, 3, 4].map((k) => register(s, `buyer${i + k}`))));
    const checkoutTimes = [];
    let orders = 0;
    const end = Date.now() + SECONDS * 1000;
    await Promise.all(buyers.map(async (b, i) => {
      let k = i;
      while (Date.now() < end) {
        const sku = hot[k++ % hot.length];
        const added = await req('POST', '/api/v1/cart/items', { body: { sku_id: sku, quantity: 1 }, headers: auth(b).headers });
        if (added.status !== 200) throw new Error(`add: ${added.status} ${JSON.stringify(added.json)}`);
        const start = process.hrtime.bigint();
        const r = await req('POST', '/api/v1/orders', { body: {}, headers: withKey(b).headers });
        checkoutTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (r.status !== 201) throw new Error(`checkout: ${r.status} ${JSON.stringify(r.json)}`);
        orders++;
      }
    }));
    checkoutTimes.sort((a, b) => a - b);
    result.checkout = { orders, rps: Math.round(orders / SECONDS), p50: ms(percentile(checkoutTimes, 0.5)), p99: ms(percentile(checkoutTimes, 0.99)) };
    console.error(`${engine} checkout`, result.checkout);
  } finally {
    await s.stop();
  }
  return result;
}

const results = [];
for (const engine of ENGINES) results.push(await run(engine));
const machine = `${os.cpus().length} cores, ${os.cpus()[0].model}; ${new Date().toISOString().slice(0, 10)}`;
console.log(`\n${PRODUCTS} products, ${SECONDS} s per measure; ${machine}`);
if (ENGINES.includes('postgres') && !process.env.SOUQ_TEST_PG_URL) console.log(`PostgreSQL 15: ${process.env.PG_CLUSTER_SETTINGS}`);
console.log('');
console.log('| | ' + results.map((r) => r.engine).join(' | ') + ' |');
console.log('|---|' + results.map(() => '---').join('|') + '|');
const row = (label, f) => console.log(`| ${label} | ${results.map(f).join(' | ')} |`);
row('seed (products, SKUs, index), s', (r) => r.seed_s);
row('product page (cached), req/s · p50 · p99 ms', (r) => `${r.detail.rps} · ${r.detail.p50} · ${r.detail.p99}`);
row('list of 20 products (page cache), req/s · p50 · p99 ms', (r) => `${r.list.rps} · ${r.list.p50} · ${r.list.p99}`);
row('list of 20 products (every request queries the database), req/s · p50 · p99 ms', (r) => `${r.list_db.rps} · ${r.list_db.p50} · ${r.list_db.p99}`);
row('search (filters, facets), req/s · p50 · p95 · p99 ms', (r) => `${r.search.rps} · ${r.search.p50} · ${r.search.p95} · ${r.search.p99}`);
row('checkout, 5 hot SKUs, 50 buyers: orders/s · p50 · p99 ms', (r) => `${r.checkout.rps} · ${r.checkout.p50} · ${r.checkout.p99}`);
row('product page ÷ Medusa (62 req/s)', (r) => `${Math.round(r.detail.rps / 62)}×`);
row('list ÷ Medusa (660 req/s): page cache · database', (r) => `${Math.round(r.list.rps / 660)}× · ${Math.round(r.list_db.rps / 660)}×`);
