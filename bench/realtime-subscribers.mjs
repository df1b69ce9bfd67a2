// A worker thread of bench/realtime.mjs: `count` subscribers to `channel`
// that count what they receive and report when asked.
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';

const { port, channel, count } = workerData;
let delivered = 0;
const closes = [];
const sockets = [];
await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/app/souq?protocol=7&client=bench&version=1`, { perMessageDeflate: false });
  ws.on('error', reject);
  ws.on('close', (code) => closes.push(code));
  ws.on('message', (raw) => {
    const text = raw.toString();
    if (text.includes('"tick"')) { delivered++; return; }
    const f = JSON.parse(text);
    if (f.event === 'pusher:connection_established') ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
    else if (f.event === 'pusher_internal:subscription_succeeded') resolve();
  });
  sockets.push(ws);
})));
parentPort.postMessage({ ready: true });
parentPort.on('message', () => {
  parentPort.postMessage({ delivered, closes });
  for (const ws of sockets) ws.terminate();
  parentPort.close();
});
