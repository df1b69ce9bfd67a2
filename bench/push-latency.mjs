// Push latency (issue 5, seed 000: "buyer receives push < 5 s", p95): from the
// API call that sends a chat message to the FCM request for the recipient's
// device arriving at a local server that speaks FCM HTTP v1 (the same fake the
// tests use: OAuth2 token exchange + messages:send). The recipient has a
// device and no open socket, so every message must become a push. Path:
// POST message → outbox job → notification + push job → FCM send.
//
//   node bench/push-latency.mjs [messages per phase] [rates …]
// Phases send at each rate in turn (default 10/s, 50/s, 200/s); SOUQ_TEST_DB=postgres
// runs it on PostgreSQL (the harness needs SOUQ_PG_* from scripts/test; default SQLite).
import os from 'node:os';
import { startSouq, assertSuccess, sleep } from '../tests/api/harness.mjs';
import { startFakeFcm } from '../tests/api/fakes.mjs';
import { register, makeAdmin, makeSeller, postRequest, makeOffer, auth } from '../tests/api/people.mjs';

const COUNT = Number(process.argv[2] ?? 200);
const RATES = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [10, 50, 200];

const fcm = await startFakeFcm();
const s = await startSouq({
  args: ['--push-provider', 'fcm', '--fcm-credentials', fcm.credentialsFile, '--fcm-base-url', fcm.baseUrl],
});
const machine = `${os.cpus().length} × ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.release()}`;
console.log(`souq on ${s.engine}, port ${s.port}; ${machine}`);

const admin = await makeAdmin(s);
const buyer = await register(s, 'buyer');
const seller = await makeSeller(s, admin, 'seller');
const request = await postRequest(s, buyer);
const offer = await makeOffer(s, seller, request.id);
const conversation = assertSuccess(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id }, auth(seller)), 201);
const token = `bench-device-token-${Date.now()}`;
assertSuccess(await s.request('PUT', '/api/v1/devices/bench-phone', { body: { platform: 'android', push_token: token }, ...auth(buyer) }));

// Message id → when its push reached FCM (the entry's time is its arrival;
// the message is filled in once its body is read).
const arrived = new Map();
function collect() {
  for (const e of fcm.sends) {
    const id = e.message?.data?.message_id;
    if (id && e.token === token && !arrived.has(id)) arrived.set(id, e.at);
  }
}

async function phase(rate, count) {
  const started = new Map();
  const sends = [];
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    const at = Date.now();
    sends.push(s.post(`/api/v1/conversations/${conversation.id}/messages`, { body: `message ${i} at ${rate}/s` }, auth(seller))
      .then((res) => { started.set(assertSuccess(res, 201).id, at); }));
  }
  await Promise.all(sends);
  const deadline = Date.now() + 30_000;
  for (;;) {
    collect();
    if ([...started.keys()].every((id) => arrived.has(id)) || Date.now() > deadline) break;
    await sleep(50);
  }
  const latencies = [...started].map(([id, at]) => (arrived.has(id) ? arrived.get(id) - at : Infinity)).sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  const lost = latencies.filter((x) => x === Infinity).length;
  console.log(`${String(rate).padStart(4)} msg/s × ${count}: push p50 ${pick(0.5)} ms, p95 ${pick(0.95)} ms, p99 ${pick(0.99)} ms,` +
    ` max ${latencies.at(-1)} ms; not pushed within 30 s: ${lost}`);
}

await phase(5, 10);  // warm-up (token exchange, caches)
for (const rate of RATES) await phase(rate, COUNT);
console.log(`OAuth2 token requests: ${fcm.tokenRequests.length}; FCM sends: ${fcm.sends.length}`);
await s.stop?.();
await fcm.close();
process.exit(0);
