// `souq worker` as its own process: a server with --workers 0 enqueues, and a
// separate worker process on the same database (SQLite file or PostgreSQL
// database) runs the jobs, then stops cleanly on SIGTERM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSouq, startWorker, assertSuccess, sleep } from './harness.mjs';

let server;
let worker;
after(async () => {
  worker?.kill('SIGKILL');
  await server?.stop();
});

async function recordsWith(marker) {
  const data = assertSuccess(await server.get('/api/v1/dev/records'));
  return data.filter((r) => r.payload.marker === marker);
}

test('jobs enqueued by a server without workers are run by a separate `souq worker` process', async () => {
  server = await startSouq({ args: ['--workers', '0'] });
  const marker = `w-${Date.now()}`;
  for (let i = 0; i < 20; i++) {
    assertSuccess(await server.post('/api/v1/dev/jobs', { kind: 'dev.record', payload: { marker, i } }), 202);
  }
  await sleep(800);
  assert.equal((await recordsWith(marker)).length, 0, 'the server has no workers, so nothing may run yet');

  worker = startWorker(server.dbUrl);
  const deadline = Date.now() + 15_000;
  let got = [];
  while (Date.now() < deadline) {
    got = await recordsWith(marker);
    if (got.length === 20) break;
    await sleep(150);
  }
  assert.equal(got.length, 20, `the worker ran ${got.length} of 20 jobs`);
  assert.deepEqual(got.map((r) => r.payload.i).sort((a, b) => a - b), [...Array(20).keys()]);
  assert.ok(worker.lines.some((l) => l.msg === 'workers running'), 'the worker logs that it runs');

  worker.kill('SIGTERM');
  assert.equal(await worker.exited, 0);
  assert.equal(worker.lines.at(-1)?.msg, 'stopped');
});
