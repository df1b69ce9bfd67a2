// Jobs end to end through the dev routes: POST /api/v1/dev/jobs → worker → dev_records.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startSouq, assertSuccess, RFC3339_UTC, sleep } from './harness.mjs';

let s;
before(async () => { s = await startSouq(); });
after(async () => { await s?.stop(); });

async function records() {
  const data = assertSuccess(await s.get('/api/v1/dev/records'));
  assert.ok(Array.isArray(data), `records is not an array: ${JSON.stringify(data)}`);
  return data;
}

async function enqueue(payload, delayMs = 0) {
  const data = assertSuccess(await s.post('/api/v1/dev/jobs', { kind: 'dev.record', payload, delay_ms: delayMs }), 202);
  assert.match(data.job_id, /^job_\S+$/, JSON.stringify(data));
  return data.job_id;
}

async function waitForMarker(marker, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const found = (await records()).filter((r) => r.payload?.marker === marker);
    if (found.length) return found;
    if (Date.now() > deadline) return [];
    await sleep(150);
  }
}

test('a dev.record job runs once and its payload lands in /api/v1/dev/records', async () => {
  const marker = crypto.randomUUID();
  const payload = { marker, n: 1, nested: { list: [1, 'two', null], text: 'héllo ✓' } };
  const jobId = await enqueue(payload);
  const found = await waitForMarker(marker);
  assert.equal(found.length, 1, `record not seen within 10 s (or more than once): ${JSON.stringify(found)}`);
  await sleep(1000);
  const again = (await records()).filter((r) => r.payload?.marker === marker);
  assert.equal(again.length, 1, `recorded ${again.length} times`);
  const r = again[0];
  assert.deepEqual(Object.keys(r).sort(), ['job_id', 'payload', 'ran_at']);
  assert.equal(r.job_id, jobId);
  assert.deepEqual(r.payload, payload);
  assert.match(r.ran_at, RFC3339_UTC);
  assert.ok(Math.abs(Date.parse(r.ran_at) - Date.now()) < 60_000, `ran_at ${r.ran_at}`);
});

test('delay_ms 1500: not run after 500 ms, run later', async () => {
  const marker = crypto.randomUUID();
  const t0 = Date.now();
  const jobId = await enqueue({ marker }, 1500);
  await sleep(Math.max(0, 500 - (Date.now() - t0)));
  const early = (await records()).filter((r) => r.payload?.marker === marker);
  assert.equal(early.length, 0, `ran before its delay: ${JSON.stringify(early)}`);
  const found = await waitForMarker(marker, 10_000);
  const took = Date.now() - t0;
  assert.equal(found.length, 1, 'delayed job did not run within 10 s');
  assert.equal(found[0].job_id, jobId);
  assert.ok(took >= 1400, `ran after ${took} ms`);
});

test('20 jobs enqueued at once each run exactly once', async () => {
  const markers = Array.from({ length: 20 }, () => crypto.randomUUID());
  const ids = await Promise.all(markers.map((marker, i) => enqueue({ marker, i })));
  assert.equal(new Set(ids).size, 20, 'job ids are not unique');
  const deadline = Date.now() + 15_000;
  let seen;
  for (;;) {
    const all = await records();
    seen = markers.map((m) => all.filter((r) => r.payload?.marker === m).length);
    if (seen.every((n) => n >= 1) || Date.now() > deadline) break;
    await sleep(200);
  }
  await sleep(1000);
  const all = await records();
  seen = markers.map((m) => all.filter((r) => r.payload?.marker === m).length);
  assert.deepEqual(seen, markers.map(() => 1), 'runs per job');
});
