// Realtime clients for tests: the real pusher-js (as browsers and Laravel
// Echo use it) and a raw `ws` socket for what pusher-js would never send.
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import Pusher from 'pusher-js';
import WebSocket from 'ws';

// A pusher-js client connected to the test server, authorised as `person`
// (or anonymous). Resolves once connected.
export async function connectPusher(s, person = null, { key = 'souq', options = {} } = {}) {
  const client = new Pusher(key, {
    cluster: 'local',
    wsHost: '127.0.0.1',
    wsPort: s.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    channelAuthorization: {
      endpoint: `http://127.0.0.1:${s.port}/api/v1/realtime/auth`,
      transport: 'ajax',
      headers: person ? { Authorization: `Bearer ${person.token}` } : {},
    },
    ...options,
  });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pusher-js did not connect: ${client.connection.state}`)), 10_000);
    client.connection.bind('connected', () => { clearTimeout(t); resolve(); });
  });
  return client;
}

// Subscribes and resolves with the channel once the server confirms, or
// rejects with the subscription error.
export function subscribe(client, name) {
  const channel = client.subscribe(name);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer to subscribing ${name}`)), 10_000);
    channel.bind('pusher:subscription_succeeded', (data) => { clearTimeout(t); channel.members_data = data; resolve(channel); });
    channel.bind('pusher:subscription_error', (err) => { clearTimeout(t); reject(Object.assign(new Error(`subscription error on ${name}`), { data: err })); });
  });
}

// Collects the events a channel receives; `next(name)` waits for the next one of that name.
export function recorder(channel) {
  const seen = [];
  let waiters = [];
  channel.bind_global((event, data) => {
    seen.push({ event, data });
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  return {
    seen,
    async next(event, ms = 10_000, from = 0) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = seen.slice(from).find((e) => e.event === event);
        if (hit) return hit.data;
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`no ${event} within ${ms} ms; saw ${JSON.stringify(seen.map((e) => e.event))}`);
        await new Promise((r) => { const t = setTimeout(r, left); waiters.push(() => { clearTimeout(t); r(); }); });
      }
    },
  };
}

// A raw WebSocket to /app/{key}: every frame it receives, parsed, and its close.
export async function rawSocket(s, path = '/app/souq?protocol=7&client=js&version=8.4.0', { expectOpen = true } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}${path}`);
  const frames = [];
  let waiters = [];
  const wake = () => { const w = waiters; waiters = []; for (const f of w) f(); };
  const sock = {
    ws, frames, closed: null,
    send(obj) { ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj)); },
    async until(pred, ms = 10_000, what = 'frame') {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = frames.find(pred);
        if (hit) return hit;
        if (sock.closed && pred === undefined) return null;
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`no ${what} within ${ms} ms; got ${JSON.stringify(frames).slice(0, 2000)} closed ${JSON.stringify(sock.closed)}`);
        await new Promise((r) => { const t = setTimeout(r, left); waiters.push(() => { clearTimeout(t); r(); }); });
      }
    },
    event(name, ms) { return sock.until((f) => f.event === name, ms, name); },
    async waitClose(ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!sock.closed) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`socket not closed within ${ms} ms; frames ${JSON.stringify(frames).slice(0, 1000)}`);
        await new Promise((r) => { const t = setTimeout(r, left); waiters.push(() => { clearTimeout(t); r(); }); });
      }
      return sock.closed;
    },
    close() { try { ws.terminate(); } catch { /* gone */ } },
  };
  ws.on('message', (data, isBinary) => {
    let f;
    try { f = JSON.parse(data.toString('utf8')); } catch { f = { raw: data.toString('utf8'), isBinary }; }
    if (typeof f.data === 'string') { try { f.parsed = JSON.parse(f.data); } catch { /* plain */ } }
    frames.push(f);
    wake();
  });
  ws.on('close', (code, reason) => { sock.closed = { code, reason: reason.toString('utf8') }; wake(); });
  ws.on('error', () => { /* close follows */ });
  if (expectOpen) {
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  }
  return sock;
}

// The socket id of a raw socket once established.
export async function socketId(sock) {
  const f = await sock.event('pusher:connection_established');
  return JSON.parse(f.data).socket_id;
}

// Registers an afterEach that closes every client handed to the returned
// function (pusher-js clients, Echo's, raw sockets) during the test.
export function closedAfterEachTest() {
  const opened = new Set();
  afterEach(() => {
    for (const c of opened) {
      try { if (c.disconnect) c.disconnect(); else c.close(); } catch { /* gone */ }
    }
    opened.clear();
  });
  return (client) => { opened.add(client); return client; };
}
