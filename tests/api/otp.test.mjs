// Phone sign-in with one-time codes: through the dev SMS provider, and
// through the Twilio provider against a local server that speaks Twilio's
// Messages API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startSouq, assertSuccess, assertError, sleep } from './harness.mjs';

let s;
before(async () => { s = await startSouq({ args: ['--otp-resend-cooldown', '1', '--otp-per-ip-per-hour', '1000'] }); });
after(async () => { await s?.stop(); });

let phoneCounter = 0;
const newPhone = () => `+2010${String(Date.now() % 10_000_000).padStart(7, '0')}${phoneCounter++ % 10}`;

async function lastCode(phone, server = s) {
  for (let i = 0; i < 100; i++) {
    const msgs = assertSuccess(await server.get(`/api/v1/dev/sms?to=${encodeURIComponent(phone)}`));
    const m = msgs.find((x) => x.purpose === 'otp');  // the newest; wait until the job has recorded it
    if (m?.status === 'recorded') return m.body.match(/\b(\d{6})\b/)[1];
    await sleep(50);
  }
  throw new Error(`no OTP recorded for ${phone}`);
}

test('request then verify: the first success creates the account, the next signs in to it', async () => {
  const phone = newPhone();
  const sent = assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  assert.deepEqual(sent, { sent: true, expires_in: 600, resend_after: 1 });
  const first = assertSuccess(await s.post('/api/v1/auth/otp/verify', { phone, code: await lastCode(phone), display_name: 'Omar' }));
  assert.equal(first.new_user, true);
  assert.equal(first.user.phone, phone);
  assert.equal(first.user.display_name, 'Omar');
  assert.deepEqual(first.user.roles, ['buyer']);
  assertSuccess(await s.get('/api/v1/users/me', { headers: { Authorization: `Bearer ${first.access_token}` } }));
  await sleep(1100);
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const second = assertSuccess(await s.post('/api/v1/auth/otp/verify', { phone, code: await lastCode(phone) }));
  assert.equal(second.new_user, false);
  assert.equal(second.user.id, first.user.id);
});

test('the answer to a request is the same for a known and an unknown phone', async () => {
  const known = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone: known }), 202);
  assertSuccess(await s.post('/api/v1/auth/otp/verify', { phone: known, code: await lastCode(known) }));
  await sleep(1100);
  const a = await s.post('/api/v1/auth/otp/request', { phone: known });
  const b = await s.post('/api/v1/auth/otp/request', { phone: newPhone() });
  assert.equal(a.status, b.status);
  assert.deepEqual(a.json.data, b.json.data);
});

test('a code is single use and allows three attempts', async () => {
  const phone = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const code = await lastCode(phone);
  const wrong = code === '000000' ? '111111' : '000000';
  const r1 = await s.post('/api/v1/auth/otp/verify', { phone, code: wrong });
  assertError(r1, 401, 'otp_invalid');
  assert.equal(r1.json.error.details.attempts_left, 2);
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: wrong }), 401, 'otp_invalid');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: wrong }), 401, 'otp_attempts_exceeded');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code }), 401, 'otp_attempts_exceeded',
    'the right code after three wrong ones is refused');
  await sleep(1100);
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const fresh = await lastCode(phone);
  assertSuccess(await s.post('/api/v1/auth/otp/verify', { phone, code: fresh }));
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: fresh }), 401, 'otp_invalid', 'single use');
});

test('asking again keeps the earlier code valid (somebody else asking cannot void it); a sign-in spends them all', async () => {
  const phone = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const first = await lastCode(phone);
  await sleep(1100);
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const second = await lastCode(phone);
  assertSuccess(await s.post('/api/v1/auth/otp/verify', { phone, code: first }), 200);
  if (second !== first) assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: second }), 401, 'otp_invalid');
});

test('a wrong guess counts against every live code of the phone', async () => {
  const phone = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const first = await lastCode(phone);
  await sleep(1100);
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const second = await lastCode(phone);
  const wrong = ['000000', '111111', '222222'].find((c) => c !== first && c !== second);
  for (let i = 0; i < 2; i++) assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: wrong }), 401, 'otp_invalid');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: wrong }), 401, 'otp_attempts_exceeded');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code: first }), 401, 'otp_attempts_exceeded', 'no guesses left on any code');
});

test('brute force: twenty racing guesses at one code get at most three tries', async () => {
  const phone = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const code = await lastCode(phone);
  const guesses = Array.from({ length: 20 }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0'));
  const results = await Promise.all(guesses.map((g) => s.post('/api/v1/auth/otp/verify', { phone, code: g })));
  assert.ok(results.every((r) => r.status === 401), results.map((r) => r.status).join(','));
  // Three attempts are counted: two answered otp_invalid, the third exhausts the code.
  const invalid = results.filter((r) => r.json?.error?.code === 'otp_invalid').length;
  assert.ok(invalid <= 2, `more than three guesses were judged: ${invalid} otp_invalid answers`);
  assertError(await s.post('/api/v1/auth/otp/verify', { phone, code }), 401, 'otp_attempts_exceeded');
});

test('resend cool-down and per-phone hourly limit answer 429 with Retry-After', async () => {
  const phone = newPhone();
  assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  const again = await s.post('/api/v1/auth/otp/request', { phone });
  assertError(again, 429, 'otp_cooldown');
  assert.ok(Number(again.headers['retry-after']) >= 1);
  const racing = await Promise.all(Array.from({ length: 8 }, () => s.post('/api/v1/auth/otp/request', { phone: newPhone() })));
  assert.ok(racing.every((r) => r.status === 202), 'different phones are not held back');
  for (let i = 1; i < 5; i++) {
    await sleep(1050);
    assertSuccess(await s.post('/api/v1/auth/otp/request', { phone }), 202);
  }
  await sleep(1050);
  assertError(await s.post('/api/v1/auth/otp/request', { phone }), 429, 'otp_rate_limited');
});

test('limits are per phone and address: somebody else asking from elsewhere does not hold the owner back, up to a cap', async () => {
  const t = await startSouq({ args: ['--trust-proxy', '--otp-per-phone-per-hour', '1', '--otp-resend-cooldown', '60'] });
  const from = (ip) => ({ headers: { 'X-Forwarded-For': ip } });
  try {
    const phone = newPhone();
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }, from('198.51.100.7')), 202);
    assertError(await t.post('/api/v1/auth/otp/request', { phone }, from('198.51.100.7')), 429, 'otp_cooldown');
    // the owner, elsewhere, still gets a code, and it works
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }, from('203.0.113.9')), 202);
    assertSuccess(await t.post('/api/v1/auth/otp/verify', { phone, code: await lastCode(phone, t) }, from('203.0.113.9')));
    // three addresses per phone per hour at most (3 x --otp-per-phone-per-hour)
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }, from('192.0.2.1')), 202);
    const capped = await t.post('/api/v1/auth/otp/request', { phone }, from('192.0.2.2'));
    assertError(capped, 429, 'otp_rate_limited');
    assert.equal(capped.headers['retry-after'], '3600');
  } finally {
    await t.stop();
  }
});

test('wrong codes per phone per day are capped: then even the right code is 429 and nothing is created', async () => {
  const t = await startSouq({ args: ['--otp-failures-per-phone', '4', '--otp-resend-cooldown', '1'] });
  try {
    const phone = newPhone();
    for (let round = 0; round < 2; round++) {
      if (round) await sleep(1100);
      assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
      const code = await lastCode(phone, t);
      const wrong = code === '000000' ? '111111' : '000000';
      for (let i = 0; i < 2; i++) assertError(await t.post('/api/v1/auth/otp/verify', { phone, code: wrong }), 401, 'otp_invalid');
    }
    await sleep(1100);
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
    const locked = await t.post('/api/v1/auth/otp/verify', { phone, code: await lastCode(phone, t) });
    assertError(locked, 429, 'too_many_attempts');
    assert.ok(Number(locked.headers['retry-after']) > 0);
    // another phone from the same address is not affected
    const other = newPhone();
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone: other }), 202);
    assertSuccess(await t.post('/api/v1/auth/otp/verify', { phone: other, code: await lastCode(other, t) }));
  } finally {
    await t.stop();
  }
});

test('per-IP hourly limit: a fourth code from one address in an hour is 429', async () => {
  const t = await startSouq({ args: ['--otp-per-ip-per-hour', '3'] });
  try {
    for (let i = 0; i < 3; i++) assertSuccess(await t.post('/api/v1/auth/otp/request', { phone: newPhone() }), 202);
    const refused = await t.post('/api/v1/auth/otp/request', { phone: newPhone() });
    assertError(refused, 429, 'otp_rate_limited');
    assert.equal(refused.headers['retry-after'], '3600');
  } finally {
    await t.stop();
  }
});

test('an expired code is refused even when it is right', async () => {
  const t = await startSouq({ args: ['--otp-ttl', '5', '--otp-resend-cooldown', '1'] });
  try {
    const phone = newPhone();
    const sent = assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
    assert.equal(sent.expires_in, 5);
    const code = await lastCode(phone, t);
    await sleep(5500);
    assertError(await t.post('/api/v1/auth/otp/verify', { phone, code }), 401, 'otp_invalid');
  } finally {
    await t.stop();
  }
});

test('malformed phones and codes are 422 and send nothing', async () => {
  for (const phone of ['01001234567', '+0123456789', '+20 100 123', '+1234', 'phone']) {
    assertError(await s.post('/api/v1/auth/otp/request', { phone }), 422, 'validation_failed');
  }
  assertError(await s.post('/api/v1/auth/otp/verify', { phone: newPhone(), code: '12a456' }), 422, 'validation_failed');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone: newPhone(), code: '1234567' }), 422, 'validation_failed');
  assertError(await s.post('/api/v1/auth/otp/verify', { phone: newPhone(), code: '123456' }), 401, 'otp_invalid');
});

test('the twilio provider posts to the Messages API with Basic auth, and the code it carried signs in', async () => {
  const received = [];
  const twilio = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'],
        form: Object.fromEntries(new URLSearchParams(body)) });
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ sid: `SM${received.length}abc`, status: 'queued' }));
    });
  });
  await new Promise((r) => twilio.listen(0, '127.0.0.1', r));
  const sid = 'AC0123456789abcdef0123456789abcdef';
  const t = await startSouq({ args: ['--sms-provider', 'twilio', '--twilio-base-url', `http://127.0.0.1:${twilio.address().port}`,
    '--twilio-account-sid', sid, '--twilio-auth-token', 'tok3n', '--twilio-from', '+15005550006'] });
  try {
    const phone = newPhone();
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
    for (let i = 0; i < 100 && received.length === 0; i++) await sleep(50);
    assert.equal(received.length, 1);
    const m = received[0];
    assert.equal(m.method, 'POST');
    assert.equal(m.url, `/2010-04-01/Accounts/${sid}/Messages.json`);
    assert.equal(m.auth, `Basic ${Buffer.from(`${sid}:tok3n`).toString('base64')}`);
    assert.match(m.type, /^application\/x-www-form-urlencoded/);
    assert.equal(m.form.To, phone);
    assert.equal(m.form.From, '+15005550006');
    const code = m.form.Body.match(/\b(\d{6})\b/)[1];
    const ok = assertSuccess(await t.post('/api/v1/auth/otp/verify', { phone, code }));
    assert.equal(ok.user.phone, phone);
    const sms = assertSuccess(await t.get(`/api/v1/dev/sms?to=${encodeURIComponent(phone)}`));
    assert.equal(sms[0].status, 'sent');
    assert.equal(sms[0].provider, 'twilio');
    assert.equal(sms[0].provider_message_id, 'SM1abc');
  } finally {
    await t.stop();
    twilio.close();
  }
});

test('a twilio error is retried: the message is sent once the gateway recovers', async () => {
  let calls = 0;
  const twilio = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      if (calls === 1) {
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ code: 20503, message: 'Service unavailable' }));
      } else {
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ sid: 'SMretry', status: 'queued' }));
      }
    });
  });
  await new Promise((r) => twilio.listen(0, '127.0.0.1', r));
  const t = await startSouq({ args: ['--sms-provider', 'twilio', '--twilio-base-url', `http://127.0.0.1:${twilio.address().port}`,
    '--twilio-account-sid', 'AC1', '--twilio-auth-token', 'x', '--twilio-from', 'MG0123'] });
  try {
    const phone = newPhone();
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
    let sms;
    for (let i = 0; i < 100; i++) {
      sms = assertSuccess(await t.get(`/api/v1/dev/sms?to=${encodeURIComponent(phone)}`))[0];
      if (sms.status === 'sent') break;
      await sleep(100);
    }
    assert.equal(sms.status, 'sent', JSON.stringify(sms));
    assert.equal(calls, 2);
  } finally {
    await t.stop();
    twilio.close();
  }
});

test('a message the gateway keeps refusing ends as failed when its job gives up', async () => {
  let calls = 0;
  const twilio = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ code: 21211, message: "The 'To' number is not a valid phone number." }));
    });
  });
  await new Promise((r) => twilio.listen(0, '127.0.0.1', r));
  const t = await startSouq({ args: ['--sms-provider', 'twilio', '--twilio-base-url', `http://127.0.0.1:${twilio.address().port}`,
    '--twilio-account-sid', 'AC1', '--twilio-auth-token', 'x', '--twilio-from', '+15005550006'] });
  try {
    const phone = newPhone();
    assertSuccess(await t.post('/api/v1/auth/otp/request', { phone }), 202);
    let sms;
    for (let i = 0; i < 300; i++) {  // five attempts with backoff: about 15 s
      sms = assertSuccess(await t.get(`/api/v1/dev/sms?to=${encodeURIComponent(phone)}`))[0];
      if (sms.status === 'failed') break;
      await sleep(100);
    }
    assert.equal(sms.status, 'failed', JSON.stringify(sms));
    assert.match(sms.error, /twilio answered 400: The 'To' number/);
    assert.equal(calls, 5);
  } finally {
    await t.stop();
    twilio.close();
  }
});
