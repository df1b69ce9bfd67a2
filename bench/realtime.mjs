// Realtime benchmark (issue 5): one souq server on SQLite, measured from one
// Node process on the same machine.
//
//   1. holds N WebSocket connections (default 10,000), each subscribed to a
//      channel of its own, and reports the server's memory per connection;
//   2. with those held, fan-out latency for a 2-party conversation: signed
//      HTTP publishes at RATE/s (default 1,000) to a channel with two
//      subscribers, publish → delivery p50/p99 (both clocks are this process's);
//   3. HTTP publish throughput with 10 subscribers: wrk posting one signed
//      event over 50 connections; every delivery is counted.
//
//   node bench/realtime.mjs [connections] [rate] [seconds] [publishing connections]
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';

const CONNECTIONS = Number(process.argv[2] ?? 10000);
const RATE = Number(process.argv[3] ?? 1000);
const SECONDS = Number(process.argv[4] ?? 10);
const WRK_CONNECTIONS = Number(process.argv[5] ?? 50);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const SECRET = 'bench-secret-bench-secret-bench-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

function signedPath(method, urlPath, body) {
  const params = { auth_key: 'souq', auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body) params.body_md5 = crypto.createHash('md5').update(body).digest('hex');
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = crypto.createHmac('sha256', SECRET).update(`${method}\n${urlPath}\n${query}`).digest('hex');
  return `${urlPath}?${query}&auth_signature=${signature}`;
}

async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-bench-rt-'));
  const proc = spawn(path.join(REPO, 'build', 'souq'), ['serve', '--listen', '127.0.0.1:0', '--database', `sqlite:${dir}/souq.db`,
    '--realtime-secret', SECRET, '--log-level', 'warn', '--realtime-max-connections', String(CONNECTIONS + 100)],
  { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  // The port is in the "listening" line, which warn level hides: find it from /proc.
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    try {
      const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
      const line = out.split('\n').find((l) => l.includes(`pid=${proc.pid},`));
      if (line) {
        const port = Number(/127\.0\.0\.1:(\d+)/.exec(line)[1]);
        return { proc, port, dir };
      }
    } catch { /* not yet */ }
  }
  throw new Error('souq did not start');
}

function connect(port, channel, onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/souq?protocol=7&client=bench&version=1`, { perMessageDeflate: false });
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const f = JSON.parse(raw);
      if (f.event === 'pusher:connection_established') ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
      else if (f.event === 'pusher_internal:subscription_succeeded') resolve(ws);
      else if (onEvent) onEvent(f);
    });
  });
}

// Ten subscribers to `channel` in two worker threads (so that they keep up);
// resolves once all are subscribed, with report() → {delivered, closes}.
async function tenSubscribers(port, channel) {
  const workers = [0, 1].map(() => new Worker(new URL('./realtime-subscribers.mjs', import.meta.url),
    { workerData: { port, channel, count: 5 } }));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  return {
    async report() {
      const parts = await Promise.all(workers.map((w) => new Promise((r) => { w.once('message', r); w.postMessage('report'); })));
      return { delivered: parts.reduce((n, r) => n + r.delivered, 0), closes: parts.flatMap((r) => r.closes) };
    },
  };
}

function percentile(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]; }

const { proc, port, dir } = await startServer();
const machine = `${os.cpus().length} cores, ${os.cpus()[0].model}`;
console.log(`souq pid ${proc.pid} on port ${port}; ${machine}`);
try {
  // 1. Many idle connections.
  const before = rssKiB(proc.pid);
  const held = [];
  const started = Date.now();
  for (let i = 0; i < CONNECTIONS; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(CONNECTIONS, i + 500); j++) batch.push(connect(port, `idle.${j}`));
    held.push(...(await Promise.all(batch)));
  }
  await sleep(500);
  const after = rssKiB(proc.pid);
  const perConn = ((after - before) * 1024) / CONNECTIONS;
  console.log(`held ${held.length} connections (each subscribed) in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
    `server RSS ${Math.round(before / 1024)} MiB → ${Math.round(after / 1024)} MiB: ${(perConn / 1024).toFixed(1)} KiB per connection`);

  // 2. Fan-out latency, 2 subscribers, RATE publishes a second.
  const latencies = [];
  const onEvent = (f) => { if (f.event === 'message') latencies.push(performance.now() - JSON.parse(f.data).t); };
  const parties = [await connect(port, 'conversation-bench', onEvent), await connect(port, 'conversation-bench', onEvent)];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  // One signed publish through the HTTP API.
  const publish = (channel, name, data) => new Promise((resolve, reject) => {
    const body = JSON.stringify({ name, channels: [channel], data: JSON.stringify(data) });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: signedPath('POST', '/apps/souq/events', body), agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`publish: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  // Open loop: `count` publishes at `rate` a second, whatever the answers
  // take; resolves with the seconds it took to send them all.
  const paced = async (rate, count, send) => {
    const begin = performance.now(), pending = [];
    for (let i = 0; i < count; i++) {
      const wait = begin + (i * 1000) / rate - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(send(i));
    }
    await Promise.all(pending);
    return (performance.now() - begin) / 1000;
  };
  const total = RATE * SECONDS;
  const t0 = performance.now();
  await paced(RATE, total, (n) => publish('conversation-bench', 'message', { n, t: performance.now() }));
  await sleep(1000);
  const sorted = latencies.slice().sort((a, b) => a - b);
  const achieved = total / ((performance.now() - t0 - 1000) / 1000);
  console.log(`fan-out: ${total} publishes at ${RATE}/s (achieved ${achieved.toFixed(0)}/s) to 2 subscribers, ` +
    `${latencies.length}/${total * 2} delivered; publish→delivery p50 ${percentile(sorted, 0.5).toFixed(2)} ms, ` +
    `p99 ${percentile(sorted, 0.99).toFixed(2)} ms, max ${sorted[sorted.length - 1].toFixed(2)} ms`);
  for (const p of parties) p.close();

  // 3a. Sustained rate with every delivery made: open-loop publishes at
  // rising rates to 10 subscribers (worker threads), until one is lost or
  // the publisher cannot keep the rate.
  for (const rate of [2000, 4000, 8000, 12000, 16000]) {
    const subs = await tenSubscribers(port, 'sustained');
    const n = rate * 3;
    const took = await paced(rate, n, (i) => publish('sustained', 'tick', { n: i }));
    await sleep(1500);
    const { delivered: got, closes } = await subs.report();
    console.log(`sustained: ${n} publishes asked at ${rate}/s, sent at ${(n / took).toFixed(0)}/s → ${got}/${n * 10} deliveries to 10 subscribers` +
      `${closes.length ? ' (subscribers closed)' : ''}`);
    if (got < n * 10) break;
  }

  // 3. Publish throughput, 10 subscribers (in two worker threads, so that
  // they keep up), wrk over 50 connections.
  const ten = await tenSubscribers(port, 'throughput');
  const body = JSON.stringify({ name: 'tick', channels: ['throughput'], data: '{"price":1250}' });
  const script = path.join(dir, 'publish.lua');
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
  const out = await new Promise((resolve, reject) => {
    const w = spawn('wrk', ['-t1', `-c${WRK_CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', script, `http://127.0.0.1:${port}${signedPath('POST', '/apps/souq/events', body)}`]);
    let text = '';
    w.stdout.on('data', (d) => { text += d; });
    w.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}`))));
  });
  await sleep(2000);
  const { delivered, closes } = await ten.report();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)[1];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  console.log(`publish throughput: ${rps.toFixed(0)} signed publishes/s over ${WRK_CONNECTIONS} connections, p99 ${p99}; ` +
    `${requests} publishes → ${delivered} deliveries to 10 subscribers (${(delivered / Math.max(1, requests)).toFixed(2)} per publish)` +
    `${non2xx ? `; NON-2xx: ${non2xx[1]}` : ''}${closes.length ? `; subscribers closed by the server: ${closes.join(',')}` : ''}`);
  for (const ws of held) ws.terminate();
} finally {
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('close', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
