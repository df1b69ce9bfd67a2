// Start-up on an empty folder, graceful shutdown (SIGTERM / SIGINT), shutdown timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSouq, assertSuccess, tryConnect, RawClient, sleep } from './harness.mjs';

const lastLog = (s) => s.logs.at(-1);

test('graceful shutdown: the in-flight request finishes, new connections are refused, exit 0, "stopped"', async () => {
  const s = await startSouq();
  try {
    const t0 = Date.now();
    const inflight = s.get('/api/v1/dev/sleep?ms=1500');
    await sleep(200);
    s.kill('SIGTERM');
    await sleep(300);
    // the listener is closed while the request is still running
    const c = await tryConnect(s.port);
    assert.equal(s.exitInfo, null, `exited before the in-flight request finished\n${s.describe()}`);
    assert.deepEqual(c, { connected: false, code: 'ECONNREFUSED' }, 'a new connection during the drain');
    const res = await inflight;
    assert.deepEqual(assertSuccess(res), { slept_ms: 1500 });
    assert.ok(Date.now() - t0 >= 1400, 'sleep returned early');
    const code = await s.stop();
    assert.equal(code, 0, s.describe());
    assert.equal(lastLog(s).msg, 'stopped', s.describe());
    assert.deepEqual(await tryConnect(s.port), { connected: false, code: 'ECONNREFUSED' });
  } finally {
    await s.stop('SIGKILL');
  }
});

test('graceful shutdown closes idle keep-alive connections promptly', async () => {
  const s = await startSouq({ args: ['--header-timeout', '30'] });
  const c = await RawClient.connect(s.port);
  try {
    await c.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res?.status, 200);
    const t0 = Date.now();
    s.kill('SIGTERM');
    assert.ok(await c.waitClose(5000), 'idle keep-alive connection still open 5 s after SIGTERM');
    assert.equal(await s.stop(), 0, s.describe());
    assert.ok(Date.now() - t0 < 8000, 'shutdown took too long');
    assert.equal(lastLog(s).msg, 'stopped', s.describe());
  } finally {
    c.destroy();
    await s.stop('SIGKILL');
  }
});

test('--shutdown-timeout bounds the drain: exit 0 although a request is still sleeping', async () => {
  const s = await startSouq({ args: ['--shutdown-timeout', '1'] });
  try {
    const inflight = s.get('/api/v1/dev/sleep?ms=20000').catch((err) => err);
    await sleep(300);
    const t0 = Date.now();
    const code = await s.stop('SIGTERM', { timeout: 10_000 });
    const took = Date.now() - t0;
    assert.equal(code, 0, s.describe());
    assert.ok(took < 6000, `took ${took} ms with --shutdown-timeout 1`);
    assert.equal(lastLog(s).msg, 'stopped', s.describe());
    const r = await inflight;
    assert.ok(r instanceof Error || r.status !== 200, 'the 20 s sleep cannot have completed');
  } finally {
    await s.stop('SIGKILL');
  }
});

test('empty folder, no --database (default sqlite:./var/souq.db — sqlite on every run): serves, creates var/souq.db, SIGINT exits 0', async () => {
  const s = await startSouq({ database: false });
  try {
    assert.ok(!s.args.includes('--database'));
    const status = assertSuccess(await s.get('/api/v1/status'));
    assert.equal(status.database, 'sqlite');
    assert.deepEqual(assertSuccess(await s.get('/readyz')).checks, { database: 'ok', migrations: 'ok' });
    assert.ok(fs.existsSync(path.join(s.cwd, 'var', 'souq.db')), `no var/souq.db in ${s.cwd}: ${fs.readdirSync(s.cwd)}`);
    const code = await s.stop('SIGINT');
    assert.equal(code, 0, s.describe());
    assert.equal(lastLog(s).msg, 'stopped', s.describe());
  } finally {
    await s.stop('SIGKILL');
  }
});

test('restart on the same database: same migrations count, ready, data kept', async () => {
  // the same database URL twice in a row (sqlite file or postgres database)
  const a = await startSouq();
  let b;
  try {
    const m1 = assertSuccess(await a.get('/api/v1/status')).migrations;
    const marker = `restart-${Date.now()}`;
    assertSuccess(await a.post('/api/v1/dev/jobs', { kind: 'dev.record', payload: { marker }, delay_ms: 0 }), 202);
    const deadline = Date.now() + 10_000;
    const has = async (srv) => assertSuccess(await srv.get('/api/v1/dev/records')).some((r) => r.payload?.marker === marker);
    while (!(await has(a))) {
      assert.ok(Date.now() < deadline, 'job did not run within 10 s');
      await sleep(200);
    }
    // keep the database: stop the process without the harness' cleanup of folder/db
    a.kill('SIGTERM');
    await a.exited;
    assert.equal(a.exitInfo.code, 0, a.describe());
    const dbUrl = a.dbUrl;
    b = await startSouq({ database: dbUrl });
    const st = assertSuccess(await b.get('/api/v1/status'));
    assert.equal(st.migrations, m1);
    assertSuccess(await b.get('/readyz'));
    assert.ok(await has(b), 'the record written before the restart is gone');
  } finally {
    await b?.stop();
    await a.stop();
  }
});

test('configuration from the environment: SOUQ_DATABASE, SOUQ_CORS_ORIGINS, SOUQ_MAX_BODY (sqlite on every run)', async () => {
  const s = await startSouq({
    database: false,
    env: { SOUQ_DATABASE: 'sqlite:./from-env/db.sqlite', SOUQ_CORS_ORIGINS: 'https://env.example', SOUQ_MAX_BODY: '2048' },
  });
  try {
    assert.equal(assertSuccess(await s.get('/api/v1/status')).database, 'sqlite');
    assert.ok(fs.existsSync(path.join(s.cwd, 'from-env', 'db.sqlite')), `no from-env/db.sqlite in ${s.cwd}`);
    assert.ok(!fs.existsSync(path.join(s.cwd, 'var', 'souq.db')), 'the default database was created although SOUQ_DATABASE is set');
    const res = await s.get('/healthz', { headers: { Origin: 'https://env.example' } });
    assert.equal(res.headers['access-control-allow-origin'], 'https://env.example');
    // 2000 bytes fit under SOUQ_MAX_BODY=2048 (the default is 1 MiB, so only the boundary above it tells)
    const doc = `{"s":"${'x'.repeat(1992)}"}`;
    assert.deepEqual(assertSuccess(await s.post('/api/v1/dev/echo', doc)), JSON.parse(doc));
    const big = `{"s":"${'x'.repeat(2100)}"}`;
    const r = await s.post('/api/v1/dev/echo', big).catch((err) => err);
    assert.ok(r instanceof Error || r.status === 413, `a 2108-byte body with SOUQ_MAX_BODY=2048: ${r.status}`);
  } finally {
    await s.stop();
  }
});
