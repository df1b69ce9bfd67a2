// Start-up failures end the process with status 1 and a message on stderr,
// promptly (never a hang, never an abort).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SOUQ_BIN } from './harness.mjs';

function run(args, timeout = 15_000) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-start-'));
  return new Promise((resolve) => {
    const proc = spawn(SOUQ_BIN, args, { cwd, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.stdout.resume();
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      fs.rmSync(cwd, { recursive: true, force: true });
      resolve({ code, signal, stderr });
    });
  });
}

test('a port already in use: exit 1 with the reason', async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address();
  try {
    const r = await run(['serve', '--listen', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1, `exit ${r.code} ${r.signal} ${r.stderr}`);
    assert.match(r.stderr, /souq: .*(in use|Address)/i);
  } finally {
    blocker.close();
  }
});

test('an unsupported database URL: exit 1 naming the accepted forms', async () => {
  const r = await run(['serve', '--listen', '127.0.0.1:0', '--database', 'mysql://x/y']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /sqlite:PATH or postgres:/);
});

test('an unreachable PostgreSQL server: exit 1 with libpq\'s reason', async () => {
  const r = await run(['serve', '--listen', '127.0.0.1:0', '--database', 'postgres://nobody@127.0.0.1:1/none']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to PostgreSQL/);
});

test('a malformed --listen and an unknown option: exit non-zero with a message', async () => {
  const bad = await run(['serve', '--listen', 'nonsense']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /--listen/);
  const unknown = await run(['serve', '--no-such-flag']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no-such-flag/);
});
