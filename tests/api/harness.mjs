// Black-box harness for the `souq` binary (contract: docs/server-contract.md).
//
// startSouq() runs the real binary on 127.0.0.1 and a free port with a fresh database
// (SOUQ_TEST_DB=sqlite (default) | postgres) in a fresh temporary working folder, and
// returns a handle to talk to it. Every process, temporary folder and cluster this module
// starts is removed when the test file ends, also when it ends early.
//
// Env:
//   SOUQ_BIN          the binary (default <repo>/build/souq)
//   SOUQ_TEST_DB      sqlite | postgres
//   SOUQ_TEST_PG_URL  admin URL of a running cluster (tests/support/pg-cluster.sh start DIR);
//                     without it, a postgres run starts its own cluster for this file.
//   SOUQ_TEST_KEEP=1  keep temporary folders (for debugging)

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SOUQ_BIN = process.env.SOUQ_BIN || path.join(REPO, 'build', 'souq');
export const ENGINE = (process.env.SOUQ_TEST_DB || 'sqlite').toLowerCase();
if (ENGINE !== 'sqlite' && ENGINE !== 'postgres') {
  throw new Error(`SOUQ_TEST_DB must be sqlite or postgres, not ${JSON.stringify(ENGINE)}`);
}
const PG_CLUSTER = path.join(REPO, 'tests', 'support', 'pg-cluster.sh');
const KEEP = process.env.SOUQ_TEST_KEEP === '1';

// Loaded lazily: openapi.mjs imports this module too.
let checkResponseFn = null;
async function specChecker() {
  checkResponseFn ??= (await import('./openapi.mjs')).checkResponse;
  return checkResponseFn;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- cleanup

const liveServers = new Set(); // server handles not yet stopped
const tempDirs = new Set();
let ownCluster = null; // { dir } when this process started a cluster itself

function cleanupSync() {
  for (const s of liveServers) {
    try { s.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  liveServers.clear();
  if (!KEEP) {
    for (const d of tempDirs) {
      try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
  tempDirs.clear();
  if (ownCluster) {
    spawnSync(PG_CLUSTER, ['stop', ownCluster.dir], { stdio: 'ignore', timeout: 60_000 });
    ownCluster = null;
  }
}

process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    cleanupSync();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

// After the last test of the file: stop whatever a test forgot to stop.
after(async () => {
  await Promise.all([...liveServers].map((s) => s.stop('SIGKILL').catch(() => {})));
});

function makeTempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

function removeTempDir(d) {
  tempDirs.delete(d);
  if (!KEEP) fs.rmSync(d, { recursive: true, force: true });
}

// ---------------------------------------------------------------- postgres

function run(cmd, args, { timeout = 60_000, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, env: env ?? process.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n$ ${cmd} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

let clusterPromise = null;

/** Admin URL of the PostgreSQL cluster tests use (starting one for this process if needed). */
export async function pgAdminUrl() {
  if (process.env.SOUQ_TEST_PG_URL) return process.env.SOUQ_TEST_PG_URL;
  clusterPromise ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-pg-'));
    ownCluster = { dir };
    const { stdout } = await run(PG_CLUSTER, ['start', dir], { timeout: 180_000 });
    const url = stdout.trim().split('\n').pop();
    if (!/^postgres:\/\//.test(url)) throw new Error(`pg-cluster.sh printed ${JSON.stringify(stdout)}`);
    return url;
  })();
  return clusterPromise;
}

function withDbName(adminUrl, name) {
  const m = /^(postgres(?:ql)?:\/\/[^/]+)(\/[^?]*)?(\?.*)?$/.exec(adminUrl);
  if (!m) throw new Error(`cannot parse postgres URL ${adminUrl}`);
  return `${m[1]}/${name}${m[3] ?? ''}`;
}

const psqlEnv = () => ({ ...process.env, PGCONNECT_TIMEOUT: '10' });

/** Run one SQL statement on the admin database. */
export async function psqlAdmin(sql) {
  const admin = await pgAdminUrl();
  const { stdout } = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', admin, '-c', sql], { env: psqlEnv() });
  return stdout;
}

async function createPgDatabase() {
  const name = `souq_t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = await pgAdminUrl();
  await psqlAdmin(`CREATE DATABASE "${name}"`);
  return { name, url: withDbName(admin, name) };
}

async function dropPgDatabase(name) {
  try {
    await psqlAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } catch { /* best effort: the cluster is thrown away anyway */ }
}

// ---------------------------------------------------------------- HTTP client

function hasHeader(h, name) {
  return Object.keys(h).some((k) => k.toLowerCase() === name);
}

/**
 * One HTTP request on a fresh connection (no keep-alive pooling).
 * body: object/array/number/boolean/null → JSON (Content-Type application/json added);
 *       string/Buffer → sent as is (Content-Type application/json added unless raw:true
 *       or the caller set one).
 * Returns { status, headers (lower-case names), rawHeaders, text, json, body }.
 */
export function httpRequest(port, method, urlPath, { body, headers = {}, raw = false, timeout = 20_000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    let payload = null;
    if (body !== undefined) {
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
      } else {
        payload = Buffer.from(JSON.stringify(body), 'utf8');
      }
      if (!raw && !hasHeader(h, 'content-type')) h['Content-Type'] = 'application/json';
      if (!hasHeader(h, 'content-length') && !hasHeader(h, 'transfer-encoding')) h['Content-Length'] = String(payload.length);
    }
    const req = http.request({ host, port, method, path: urlPath, headers: h, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${urlPath}: no response within ${timeout} ms`)), timeout);
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err) => { clearTimeout(timer); reject(err); });
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        if (text.length) { try { json = JSON.parse(text); } catch { json = undefined; } }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, text, json, body: buf });
      });
    });
    if (payload) req.end(payload); else req.end();
  });
}

/** Try to open a TCP connection; resolves { connected: true } or { connected: false, code }. */
export function tryConnect(port, { timeout = 3000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const timer = setTimeout(() => { sock.destroy(); resolve({ connected: false, code: 'TIMEOUT' }); }, timeout);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve({ connected: true }); });
    sock.once('error', (err) => { clearTimeout(timer); resolve({ connected: false, code: err.code }); });
  });
}

// ---------------------------------------------------------------- raw sockets

/** A raw TCP client that can parse HTTP/1.1 responses as they arrive. */
export class RawClient {
  static connect(port, { host = '127.0.0.1', timeout = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect to ${port} timed out`)); }, timeout);
      sock.once('connect', () => { clearTimeout(timer); resolve(new RawClient(sock)); });
      sock.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.closed = false;
    this.closedAt = null;
    this.error = null; // e.g. ECONNRESET / EPIPE
    this._wakers = [];
    sock.setNoDelay(true);
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._wake(); });
    sock.on('error', (err) => { this.error ??= err; });
    sock.on('close', () => { this.closed = true; this.closedAt = Date.now(); this._wake(); });
    sock.on('end', () => { /* half-close from server: wait for 'close' */ sock.end(); });
  }

  _wake() {
    const w = this._wakers;
    this._wakers = [];
    for (const f of w) f();
  }

  _waitEvent(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this._wakers = this._wakers.filter((f) => f !== done); resolve(false); }, ms);
      const done = () => { clearTimeout(t); resolve(true); };
      this._wakers.push(done);
    });
  }

  /** Write bytes; errors (EPIPE, ECONNRESET) are recorded in this.error, not thrown. */
  write(data) {
    if (this.closed || this.sock.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      try {
        this.sock.write(data, (err) => { if (err) this.error ??= err; resolve(!err); });
      } catch (err) {
        this.error ??= err;
        resolve(false);
      }
    });
  }

  /** Everything received so far as text. */
  get text() { return this.buf.toString('latin1'); }

  _tryParse() {
    const headEnd = this.buf.indexOf('\r\n\r\n', this.pos, 'latin1');
    if (headEnd < 0) return undefined;
    const head = this.buf.subarray(this.pos, headEnd).toString('latin1');
    const lines = head.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
    const headers = {};
    const headerList = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headerList.push([name, value]);
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const status = Number(m[2]);
    let p = headEnd + 4;
    let body;
    if (status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      for (;;) {
        const le = this.buf.indexOf('\r\n', p, 'latin1');
        if (le < 0) return undefined;
        const size = parseInt(this.buf.subarray(p, le).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        p = le + 2;
        if (size === 0) {
          const te = this.buf.indexOf('\r\n\r\n', p - 2, 'latin1');
          if (te < 0) return undefined;
          p = te + 4;
          break;
        }
        if (this.buf.length < p + size + 2) return undefined;
        parts.push(this.buf.subarray(p, p + size));
        p += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (this.buf.length < p + n) return undefined;
      body = this.buf.subarray(p, p + n);
      p += n;
    } else {
      if (!this.closed) return undefined; // body runs until close
      body = this.buf.subarray(p);
      p = this.buf.length;
    }
    this.pos = p;
    const text = body.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { httpVersion: m[1], status, reason: m[3] ?? '', headers, headerList, body, text, json };
  }

  /** Next complete response, or null if the connection closed before one arrived. */
  async readResponse(timeout = 10_000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const r = this._tryParse();
      if (r) return r;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete response within ${timeout} ms; got ${JSON.stringify(this.text.slice(this.pos, this.pos + 500))}`);
      await this._waitEvent(left);
    }
  }

  /** Resolves true once the server has closed the connection, false after `timeout` ms. */
  async waitClose(timeout = 5000) {
    const deadline = Date.now() + timeout;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this._waitEvent(left);
    }
    return true;
  }

  destroy() { this.sock.destroy(); }
}

// ---------------------------------------------------------------- metrics

/** Parse Prometheus text format into [{ name, labels, value }]. */
export function parseMetrics(text) {
  const out = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
    const name = line.slice(0, i);
    const labels = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') { i++; break; }
        const eq = line.indexOf('=', i);
        if (eq < 0) throw new Error(`bad metrics line: ${line}`);
        const key = line.slice(i, eq).trim();
        i = eq + 1;
        if (line[i] !== '"') throw new Error(`bad metrics line: ${line}`);
        i++;
        let v = '';
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\') {
            i++;
            v += line[i] === 'n' ? '\n' : line[i];
          } else {
            v += line[i];
          }
          i++;
        }
        if (line[i] !== '"') throw new Error(`bad metrics line: ${line}`);
        i++;
        labels[key] = v;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const vs = rest[0];
    const value = vs === '+Inf' ? Infinity : vs === '-Inf' ? -Infinity : Number(vs);
    out.push({ name, labels, value, line });
  }
  return out;
}

/** Samples with this name whose labels include `labels`. */
export function findSamples(samples, name, labels = {}) {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** Sum of matching samples (0 when none: a counter that was never incremented). */
export function metricValue(samples, name, labels = {}) {
  return findSamples(samples, name, labels).reduce((a, s) => a + s.value, 0);
}

// ---------------------------------------------------------------- envelopes

export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
export const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

function show(res) {
  return `HTTP ${res.status} ${JSON.stringify(res.headers)}\n${res.text?.slice(0, 2000)}`;
}

function assertMeta(res) {
  const meta = res.json.meta;
  assert.equal(typeof meta, 'object', `meta missing: ${show(res)}`);
  assert.ok(meta !== null, `meta is null: ${show(res)}`);
  assert.equal(typeof meta.request_id, 'string', `meta.request_id: ${show(res)}`);
  assert.ok(meta.request_id.length > 0, `empty meta.request_id: ${show(res)}`);
  assert.equal(res.headers['x-request-id'], meta.request_id, `X-Request-Id header ≠ meta.request_id: ${show(res)}`);
  assert.match(meta.timestamp, RFC3339_UTC, `meta.timestamp not RFC 3339 UTC: ${show(res)}`);
  const t = Date.parse(meta.timestamp);
  assert.ok(Math.abs(t - Date.now()) < 5 * 60_000, `meta.timestamp ${meta.timestamp} is not now`);
}

function assertJsonType(res) {
  assert.match(res.headers['content-type'] ?? '', /^application\/json\b/i, `Content-Type: ${show(res)}`);
  assert.ok(res.json !== undefined, `body is not JSON: ${show(res)}`);
}

/** Assert a success envelope with this status; returns `data`. */
export function assertSuccess(res, status = 200) {
  assert.equal(res.status, status, `expected HTTP ${status}: ${show(res)}`);
  assertJsonType(res);
  assert.deepEqual(Object.keys(res.json).sort(), ['data', 'meta', 'status'], `envelope keys: ${show(res)}`);
  assert.equal(res.json.status, 'success', show(res));
  assertMeta(res);
  return res.json.data;
}

/** Assert an error envelope with this status and code; returns `error`. */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected HTTP ${status} ${code}: ${show(res)}`);
  assertJsonType(res);
  assert.deepEqual(Object.keys(res.json).sort(), ['error', 'meta', 'status'], `envelope keys: ${show(res)}`);
  assert.equal(res.json.status, 'error', show(res));
  const e = res.json.error;
  assert.equal(e?.code, code, `error.code: ${show(res)}`);
  assert.equal(typeof e.message, 'string', `error.message: ${show(res)}`);
  assert.ok(e.message.length > 0, `empty error.message: ${show(res)}`);
  for (const k of Object.keys(e)) assert.ok(['code', 'message', 'details'].includes(k), `unexpected error.${k}: ${show(res)}`);
  if ('details' in e) assert.ok(e.details !== null && typeof e.details === 'object', `error.details: ${show(res)}`);
  assertMeta(res);
  return e;
}

// ---------------------------------------------------------------- a worker

/**
 * Start `souq worker --dev` on a database (the caller stops it with kill()).
 * Returns { proc, lines (its JSON log lines), exited (a promise of the exit code), kill(signal) }.
 */
export function startWorker(dbUrl, args = []) {
  const proc = spawn(SOUQ_BIN, ['worker', '--dev', '--workers', '2', '--database', dbUrl, ...args], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    try { lines.push(JSON.parse(l)); } catch { lines.push({ raw: l }); }
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
  const worker = { proc, lines, exited, kill: (sig) => proc.kill(sig) };
  liveWorkers.add(worker);
  exited.then(() => liveWorkers.delete(worker));
  return worker;
}
const liveWorkers = new Set();
process.on('exit', () => { for (const w of liveWorkers) try { w.proc.kill('SIGKILL'); } catch { /* gone */ } });

// ---------------------------------------------------------------- the server

/**
 * Start `souq serve` and wait until it is ready.
 * opts.args      extra command-line arguments (appended last)
 * opts.dev       false → no --dev (default: --dev)
 * opts.database  false → no --database at all (default path ./var/souq.db in the fresh cwd);
 *                a string → that URL; default → a fresh database of SOUQ_TEST_DB
 *                (opts.startDb === false means the same as database:false)
 * opts.rateLimit false → leave the server's default rate limit; default: `--rate-limit 0`
 *                unless opts.args sets --rate-limit (so suites are not throttled)
 * opts.env       extra environment (SOUQ_* of the test process are not passed on)
 * opts.waitReady false → return once listening, without waiting for /readyz
 */
export async function startSouq(opts = {}) {
  if (!fs.existsSync(SOUQ_BIN)) {
    throw new Error(`souq binary not found at ${SOUQ_BIN} (build it first, or set SOUQ_BIN)`);
  }
  const cwd = makeTempDir('souq-t-');
  const useDefaultDb = opts.database === false || opts.startDb === false;
  let dbUrl = null;
  let pgDb = null;
  let engine = 'sqlite';
  if (useDefaultDb) {
    dbUrl = null;
  } else if (typeof opts.database === 'string') {
    dbUrl = opts.database;
    engine = dbUrl.startsWith('postgres') ? 'postgres' : 'sqlite';
  } else if (ENGINE === 'postgres') {
    const db = await createPgDatabase();
    pgDb = db.name;
    dbUrl = db.url;
    engine = 'postgres';
  } else {
    dbUrl = `sqlite:${path.join(cwd, 'souq.db')}`;
  }

  const extra = (opts.args ?? []).map(String);
  const args = ['serve', '--listen', opts.listen ?? '127.0.0.1:0'];
  if (opts.dev !== false) args.push('--dev');
  if (dbUrl) args.push('--database', dbUrl);
  const setsRateLimit = extra.some((a) => a === '--rate-limit' || a.startsWith('--rate-limit='));
  if (opts.rateLimit !== false && !setsRateLimit) args.push('--rate-limit', '0');
  args.push(...extra);

  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SOUQ_')) env[k] = v;
  Object.assign(env, opts.env ?? {});

  const proc = spawn(SOUQ_BIN, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  let stderr = '';
  let waiters = [];
  let exitInfo = null;
  let spawnError = null;

  const exited = new Promise((resolve) => {
    proc.on('error', (err) => { spawnError = err; exitInfo ??= { code: null, signal: null, error: err }; resolve(exitInfo); });
    proc.on('close', (code, signal) => { exitInfo = { code, signal }; resolve(exitInfo); });
  });
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  exited.then(notify);

  readline.createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
    let obj;
    try {
      obj = JSON.parse(line);
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) obj = { _raw: line, _notObject: true };
    } catch {
      obj = { _raw: line, _notJson: true };
    }
    logs.push(obj);
    notify();
  });
  proc.stderr.on('data', (d) => {
    stderr += d.toString('utf8');
    if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
  });

  const server = {
    proc,
    cwd,
    dbUrl,
    engine,
    pgDb,
    args,
    logs,
    exited,
    url: null,
    port: null,
    get stderr() { return stderr; },
    get exitInfo() { return exitInfo; },

    /** Recent logs and stderr, for error messages. */
    describe(n = 40) {
      const tail = logs.slice(-n).map((l) => (l._raw !== undefined ? l._raw : JSON.stringify(l))).join('\n');
      return `souq ${args.join(' ')} (cwd ${cwd})\n` +
        `exit: ${exitInfo ? JSON.stringify(exitInfo) : 'running'}${spawnError ? ` spawn error: ${spawnError.message}` : ''}\n` +
        `--- last ${n} log lines ---\n${tail}\n--- stderr (tail) ---\n${stderr.slice(-4000)}`;
    },

    /** Wait for a log line matching pred (searching from index `from`). */
    async waitForLog(pred, { timeout = 10_000, from = 0 } = {}) {
      const deadline = Date.now() + timeout;
      let i = from;
      for (;;) {
        for (; i < logs.length; i++) if (pred(logs[i])) return logs[i];
        if (exitInfo) throw new Error(`souq exited before the expected log line\n${server.describe()}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected log line not seen within ${timeout} ms\n${server.describe()}`);
        await new Promise((resolve) => {
          const t = setTimeout(() => { waiters = waiters.filter((f) => f !== done); resolve(); }, left);
          const done = () => { clearTimeout(t); resolve(); };
          waiters.push(done);
        });
      }
    },

    async request(method, urlPath, o = {}) {
      if (!server.port) throw new Error('server not listening');
      let res;
      try {
        res = await httpRequest(server.port, method, urlPath, o);
      } catch (err) {
        // A refused or reset connection is often a crashed server: say so.
        await Promise.race([exited, sleep(200)]);
        if (exitInfo) err.message += `\n(the server has exited)\n${server.describe()}`;
        throw err;
      }
      if (!o.skipSpecCheck) (await specChecker())(method, urlPath, res);
      return res;
    },
    get(urlPath, o) { return server.request('GET', urlPath, o); },
    post(urlPath, body, o = {}) { return server.request('POST', urlPath, { ...o, body }); },

    async metrics() {
      const res = await server.get('/metrics');
      assert.equal(res.status, 200, `GET /metrics: ${res.status} ${res.text.slice(0, 500)}`);
      return parseMetrics(res.text);
    },

    /** Send a signal without waiting (then use stop() to wait for the exit code). */
    kill(signal = 'SIGTERM') {
      server.signalled = signal;
      try { proc.kill(signal); } catch { /* gone */ }
    },

    _stopping: null,
    /**
     * Send `signal` (unless kill() already sent one) and wait for the process to end, then
     * remove its folder and database. Resolves the exit code (or the signal name, or a
     * "timeout" string when it had to be killed).
     */
    stop(signal = 'SIGTERM', { timeout = 20_000 } = {}) {
      server._stopping ??= (async () => {
        if (!exitInfo) {
          if (!server.signalled) server.kill(signal);
          let timer;
          const timedOut = await Promise.race([
            exited.then(() => false),
            new Promise((resolve) => { timer = setTimeout(() => resolve(true), timeout); }),
          ]);
          clearTimeout(timer);
          if (timedOut) {
            try { proc.kill('SIGKILL'); } catch { /* gone */ }
            await exited;
            server.stopTimedOut = true;
          }
        }
        liveServers.delete(server);
        removeTempDir(cwd);
        if (pgDb) await dropPgDatabase(pgDb);
        if (server.stopTimedOut) return `timeout after ${timeout} ms (killed)`;
        return exitInfo.code ?? exitInfo.signal;
      })();
      return server._stopping;
    },
  };
  liveServers.add(server);

  try {
    const line = await server.waitForLog((l) => l.msg === 'listening', { timeout: opts.startTimeout ?? 30_000 });
    const port = Number(line.port);
    if (!Number.isInteger(port) || port <= 0) throw new Error(`"listening" log line without a valid port: ${JSON.stringify(line)}`);
    server.port = port;
    server.url = `http://127.0.0.1:${port}`;
    if (opts.waitReady !== false) {
      const deadline = Date.now() + (opts.startTimeout ?? 30_000);
      let last = null;
      for (;;) {
        try {
          last = await server.get('/readyz', { timeout: 5000 });
          if (last.status === 200) break;
        } catch (err) {
          last = { status: err.code ?? err.message, text: '' };
        }
        if (exitInfo) throw new Error('souq exited while waiting for /readyz');
        if (Date.now() > deadline) throw new Error(`/readyz not 200 in time (last: ${last.status} ${last.text})`);
        await sleep(100);
      }
    }
  } catch (err) {
    const msg = `${err.message}\n${server.describe()}`;
    await server.stop('SIGKILL');
    throw new Error(msg);
  }
  return server;
}
