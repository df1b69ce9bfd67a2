// Local stand-ins for the services the notifications module talks to:
//
//   startFakeFcm()   Firebase Cloud Messaging HTTP v1 (POST /v1/projects/{id}/messages:send)
//                    and Google's OAuth2 token endpoint (the JWT-bearer grant a service
//                    account uses), with a service-account JSON file to point souq at;
//   startSmtpSink()  an SMTP server that keeps every message it receives, parsed;
//   startFakeStripe() the parts of Stripe's API the payments module calls
//                    (POST /v1/payment_intents, POST /v1/transfers).
//
// All listen on 127.0.0.1 and a free port; close() stops them and removes their files.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(server.address().port); });
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const fcmError = (code, status, message, errorCode) => ({
  error: {
    code, status, message,
    ...(errorCode ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] } : {}),
  },
});

/**
 * A fake FCM HTTP v1 API and OAuth2 token endpoint.
 *
 * Returns {
 *   projectId, baseUrl, tokenUrl, credentialsFile, credentials, clientEmail,
 *   tokens          access tokens issued, in order
 *   tokenRequests   every token request: {at, ok, status, claims, header, error}
 *   sends           every messages:send request: {at, token, message, authorization, status, name, path}
 *   setResponse(token, spec)  script what a device token answers:
 *                     'unregistered'                → 404 NOT_FOUND / UNREGISTERED, every time
 *                     {unavailable: n, retryAfter}  → 503 UNAVAILABLE n times, then success
 *                     {status, body, times, headers}→ that answer (`times` times, or always), then success
 *   sendsTo(token)  the successful sends to a token
 *   close()
 * }
 *
 * opts.fileTokenUri  the token_uri written in the credentials file (default: tokenUrl);
 *                    point it elsewhere to check that --fcm-token-url overrides it.
 * opts.tokenTtl      expires_in of issued tokens (default 3599)
 */
export async function startFakeFcm({ projectId = 'souq-test-project', fileTokenUri, tokenTtl = 3599 } = {}) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const pem = await exportPKCS8(privateKey);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'souq-fake-fcm-'));
  const clientEmail = `souq-push@${projectId}.iam.gserviceaccount.com`;

  const tokens = [];
  const tokenRequests = [];
  const sends = [];
  const scripted = new Map(); // device token → { kind, left, ... }
  const issued = new Set();

  const fake = {
    projectId, clientEmail, tokens, tokenRequests, sends,
    baseUrl: null, tokenUrl: null, credentialsFile: null, credentials: null,
    setResponse(token, spec) {
      if (spec === 'unregistered') scripted.set(token, { kind: 'unregistered', left: Infinity });
      else if (spec && spec.unavailable !== undefined) scripted.set(token, { kind: 'unavailable', left: spec.unavailable, retryAfter: spec.retryAfter });
      else if (spec && spec.status) scripted.set(token, { kind: 'custom', left: spec.times ?? Infinity, status: spec.status, body: spec.body, headers: spec.headers ?? {} });
      else scripted.delete(token);
    },
    sendsTo(token) { return sends.filter((x) => x.token === token && x.status === 200); },
    close: null,
  };

  async function tokenEndpoint(req, res) {
    const entry = { at: Date.now(), ok: false, status: 400, claims: null, header: null, error: null };
    tokenRequests.push(entry);
    const fail = (description, status = 400) => {
      entry.error = description;
      entry.status = status;
      sendJson(res, status, { error: 'invalid_grant', error_description: description });
    };
    const type = String(req.headers['content-type'] ?? '');
    const text = await readBody(req);
    if (!type.startsWith('application/x-www-form-urlencoded')) return fail(`Content-Type must be application/x-www-form-urlencoded, not ${JSON.stringify(type)}`);
    const form = new URLSearchParams(text);
    if (form.get('grant_type') !== JWT_BEARER) {
      entry.error = `grant_type ${JSON.stringify(form.get('grant_type'))}`;
      return sendJson(res, 400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${form.get('grant_type')}` });
    }
    const assertion = form.get('assertion');
    if (!assertion) return fail('Missing required parameter: assertion');
    let verified;
    try {
      verified = await jwtVerify(assertion, publicKey, { algorithms: ['RS256'], issuer: clientEmail, audience: fake.tokenUrl });
    } catch (err) {
      return fail(`Invalid JWT: ${err.code ?? ''} ${err.message}`);
    }
    const { payload, protectedHeader } = verified;
    entry.claims = payload;
    entry.header = protectedHeader;
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    if (!scopes.includes(FCM_SCOPE)) return fail(`Invalid scope: ${JSON.stringify(payload.scope)}`);
    if (!Number.isInteger(payload.iat) || !Number.isInteger(payload.exp)) return fail('iat and exp must be present (integers)');
    if (payload.exp - payload.iat > 3600) return fail(`Invalid JWT: exp - iat = ${payload.exp - payload.iat} s, more than an hour`);
    if (payload.exp <= payload.iat) return fail('Invalid JWT: exp is not after iat');
    const now = Math.floor(Date.now() / 1000);
    if (payload.iat > now + 300) return fail('Invalid JWT: iat is in the future');
    const accessToken = `ya29.fake-${crypto.randomBytes(24).toString('base64url')}`;
    issued.add(accessToken);
    tokens.push(accessToken);
    entry.ok = true;
    entry.status = 200;
    sendJson(res, 200, { access_token: accessToken, expires_in: tokenTtl, token_type: 'Bearer' });
  }

  async function sendEndpoint(req, res, project) {
    const entry = { at: Date.now(), path: req.url, token: null, message: null, authorization: req.headers.authorization ?? null, status: 0, name: null };
    sends.push(entry);
    const answer = (status, body, headers) => { entry.status = status; sendJson(res, status, body, headers); };
    const text = await readBody(req);
    const m = /^Bearer (.+)$/.exec(entry.authorization ?? '');
    if (!m || !issued.has(m[1])) {
      return answer(401, fcmError(401, 'UNAUTHENTICATED',
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.'));
    }
    if (project !== projectId) return answer(404, fcmError(404, 'NOT_FOUND', `Project ${project} not found.`));
    let body;
    try { body = JSON.parse(text); } catch { return answer(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.')); }
    const message = body?.message;
    entry.message = message ?? null;
    if (!message || typeof message !== 'object' || Array.isArray(message)) {
      return answer(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Unknown name or missing "message".'));
    }
    entry.token = typeof message.token === 'string' ? message.token : null;
    if (!entry.token) return answer(400, fcmError(400, 'INVALID_ARGUMENT', 'The message must name a target (token).', 'INVALID_ARGUMENT'));
    if (message.data !== undefined) {
      if (!message.data || typeof message.data !== 'object' || Array.isArray(message.data)) {
        return answer(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at \'message.data\': not a map.', 'INVALID_ARGUMENT'));
      }
      for (const [k, v] of Object.entries(message.data)) {
        if (typeof v !== 'string') {
          return answer(400, fcmError(400, 'INVALID_ARGUMENT', `Invalid value at 'message.data[${k}].value' (TYPE_STRING), ${JSON.stringify(v)}`, 'INVALID_ARGUMENT'));
        }
      }
    }
    if (message.notification !== undefined) {
      const n = message.notification;
      if (!n || typeof n !== 'object' || Array.isArray(n) || ['title', 'body'].some((k) => n[k] !== undefined && typeof n[k] !== 'string')) {
        return answer(400, fcmError(400, 'INVALID_ARGUMENT', 'Invalid value at \'message.notification\'.', 'INVALID_ARGUMENT'));
      }
    }
    const script = scripted.get(entry.token);
    if (script && script.left > 0) {
      script.left -= 1;
      if (script.kind === 'unregistered') {
        return answer(404, fcmError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'));
      }
      if (script.kind === 'unavailable') {
        return answer(503, fcmError(503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'),
          script.retryAfter !== undefined ? { 'Retry-After': String(script.retryAfter) } : {});
      }
      return answer(script.status, script.body ?? {}, script.headers);
    }
    entry.name = `projects/${projectId}/messages/${Date.now()}${crypto.randomInt(1e6)}`;
    return answer(200, { name: entry.name });
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let handled;
    if (req.method === 'POST' && url.pathname === '/token') {
      handled = tokenEndpoint(req, res);
    } else {
      const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname);
      if (req.method === 'POST' && m) handled = sendEndpoint(req, res, decodeURIComponent(m[1]));
      else handled = Promise.resolve(sendJson(res, 404, fcmError(404, 'NOT_FOUND', `No ${req.method} ${url.pathname} here.`)));
    }
    handled.catch((err) => { try { sendJson(res, 500, fcmError(500, 'INTERNAL', String(err?.stack ?? err))); } catch { /* gone */ } });
  });
  const port = await listen(server);
  fake.baseUrl = `http://127.0.0.1:${port}`;
  fake.tokenUrl = `${fake.baseUrl}/token`;
  fake.credentials = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: crypto.randomBytes(20).toString('hex'),
    private_key: pem,
    client_email: clientEmail,
    client_id: String(100000000000000000000n + BigInt(crypto.randomInt(1e9))),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: fileTokenUri ?? fake.tokenUrl,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
  fake.credentialsFile = path.join(dir, 'service-account.json');
  fs.writeFileSync(fake.credentialsFile, JSON.stringify(fake.credentials, null, 2), { mode: 0o600 });
  // For tests of the fake itself: an assertion as a service account would sign it.
  fake.signAssertion = (claims = {}, { expiresIn = '1h', audience = fake.tokenUrl } = {}) =>
    new SignJWT({ scope: FCM_SCOPE, ...claims }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: fake.credentials.private_key_id })
      .setIssuer(clientEmail).setAudience(audience).setIssuedAt().setExpirationTime(expiresIn).sign(privateKey);
  fake.close = () => new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return fake;
}

/**
 * An SMTP server (no TLS, authentication optional) keeping every message.
 * Returns {
 *   url       smtp://127.0.0.1:PORT
 *   port
 *   messages  [{at, from (address), fromName, fromText, to ([addresses]), subject, text, html,
 *               headers (lower-case name → value), envelope: {from, to}, raw (Buffer)}]
 *   auths     [{username, password, method}] of AUTH commands received
 *   close()
 * }
 */
export async function startSmtpSink() {
  const rejected = new Set();  // recipients answered 550 (a permanent refusal)
  const rcptAttempts = [];
  const messages = [];
  const auths = [];
  const errors = [];
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    banner: 'souq test sink',
    size: 10 * 1024 * 1024,
    onRcptTo(address, session, callback) {
      rcptAttempts.push(address.address);
      if (!rejected.has(address.address)) return callback();
      const err = new Error('5.1.1 mailbox unavailable');
      err.responseCode = 550;
      return callback(err);
    },
    onAuth(a, session, callback) {
      auths.push({ username: a.username, password: a.password, method: a.method });
      callback(null, { user: a.username });
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', (err) => { errors.push(err); callback(err); });
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then((mail) => {
          const from = mail.from?.value?.[0];
          const addresses = (field) => [field ?? []].flat().flatMap((a) => a.value ?? []).map((v) => v.address);
          messages.push({
            at: Date.now(),
            from: from?.address ?? null,
            fromName: from?.name ?? null,
            fromText: mail.from?.text ?? null,
            to: addresses(mail.to),
            cc: addresses(mail.cc),
            subject: mail.subject ?? null,
            text: mail.text ?? null,
            html: mail.html || null,
            headers: Object.fromEntries([...mail.headers].map(([k, v]) => [k, v])),
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
              to: session.envelope.rcptTo.map((r) => r.address),
            },
            user: session.user ?? null,
            raw,
          });
          callback();
        }, (err) => { errors.push(err); callback(err); });
      });
    },
  });
  server.on('error', (err) => errors.push(err));
  const port = await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.server.address().port));
  });
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    rejected,
    rcptAttempts,
    auths,
    errors,
    /** Messages to this address (the envelope's or the To header's). */
    to(address) {
      const a = address.toLowerCase();
      return messages.filter((m) => m.envelope.to.some((x) => x.toLowerCase() === a) || m.to.some((x) => x?.toLowerCase() === a));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// Stripe's form encoding, read back: "metadata[a]=1&x[y][z]=2" → {metadata: {a: '1'}, x: {y: {z: '2'}}}.
export function parseStripeForm(text) {
  const out = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!m) { out[key] = value; continue; }
    const path = [m[1], ...[...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1])];
    let at = out;
    for (const part of path.slice(0, -1)) {
      if (typeof at[part] !== 'object' || at[part] === null) at[part] = {};
      at = at[part];
    }
    at[path.at(-1)] = value;
  }
  return out;
}

const stripeError = (type, message, extra = {}) => ({ error: { type, message, ...extra } });

/**
 * A fake of Stripe's API: POST /v1/payment_intents and POST /v1/transfers, with
 * form-encoded bodies, a Bearer secret key, and Idempotency-Key honoured as
 * Stripe does (the same key and parameters replay the first answer with
 * `Idempotent-Replayed: true`; the same key with other parameters is a 400
 * idempotency_error).
 *
 * Returns {
 *   baseUrl, secretKey
 *   requests        every request: {at, method, path, authorization, idempotencyKey, contentType,
 *                   form (parsed), raw, status, body (the answer), replayed}
 *   intents         Map id → payment intent made
 *   transfers       Map id → transfer made
 *   fail(path, {status, body, times})   the next `times` (default: every) requests to path
 *                   answer this (default 500 api_error) instead; fail(path, null) stops it
 *   down(true|false)  every connection is dropped without an answer while down
 *   requestsTo(path)  the requests to a path
 *   close()
 * }
 */
export async function startFakeStripe({ secretKey = 'sk_test_x' } = {}) {
  const requests = [];
  const intents = new Map();
  const transfers = new Map();
  const scripted = new Map(); // path → {status, body, left}
  const idempotency = new Map(); // key → {path, raw, status, body}
  let isDown = false;
  const newId = (prefix) => `${prefix}_${crypto.randomBytes(12).toString('hex')}`;

  const fake = {
    secretKey, requests, intents, transfers, baseUrl: null,
    fail(p, spec) {
      if (!spec) scripted.delete(p);
      else scripted.set(p, { status: spec.status ?? 500, body: spec.body ?? stripeError('api_error', 'Something went wrong on Stripe\'s end.'), left: spec.times ?? Infinity });
    },
    down(on = true) { isDown = on; },
    requestsTo(p) { return requests.filter((r) => r.path === p); },
    close: null,
  };

  function paymentIntent(form, entry) {
    const amount = Number(form.amount);
    if (!/^\d+$/.test(form.amount ?? '') || amount < 1) {
      return [400, stripeError('invalid_request_error', 'Invalid positive integer', { code: 'parameter_invalid_integer', param: 'amount' })];
    }
    if (!/^[a-z]{3}$/.test(form.currency ?? '')) {
      return [400, stripeError('invalid_request_error', `Invalid currency: ${form.currency}`, { code: 'parameter_invalid_string', param: 'currency' })];
    }
    const id = newId('pi');
    const intent = {
      id, object: 'payment_intent', amount, amount_received: 0, currency: form.currency,
      automatic_payment_methods: form.automatic_payment_methods ? { enabled: form.automatic_payment_methods.enabled === 'true' } : null,
      client_secret: `${id}_secret_${crypto.randomBytes(12).toString('hex')}`,
      created: Math.floor(entry.at / 1000), description: form.description ?? null, livemode: false,
      metadata: form.metadata ?? {}, status: 'requires_payment_method', last_payment_error: null,
    };
    intents.set(id, intent);
    return [200, intent];
  }

  function transfer(form, entry) {
    const amount = Number(form.amount);
    if (!/^\d+$/.test(form.amount ?? '') || amount < 1) {
      return [400, stripeError('invalid_request_error', 'Invalid positive integer', { code: 'parameter_invalid_integer', param: 'amount' })];
    }
    if (!/^[a-z]{3}$/.test(form.currency ?? '')) {
      return [400, stripeError('invalid_request_error', `Invalid currency: ${form.currency}`, { param: 'currency' })];
    }
    if (!/^acct_[A-Za-z0-9]+$/.test(form.destination ?? '')) {
      return [400, stripeError('invalid_request_error', `No such destination: '${form.destination}'`, { code: 'resource_missing', param: 'destination' })];
    }
    const id = newId('tr');
    const t = {
      id, object: 'transfer', amount, amount_reversed: 0, currency: form.currency, destination: form.destination,
      created: Math.floor(entry.at / 1000), livemode: false, metadata: form.metadata ?? {}, reversed: false,
    };
    transfers.set(id, t);
    return [200, t];
  }

  const server = http.createServer(async (req, res) => {
    if (isDown) { req.socket.destroy(); return; }
    const url = new URL(req.url, 'http://127.0.0.1');
    const raw = await readBody(req);
    const entry = {
      at: Date.now(), method: req.method, path: url.pathname, authorization: req.headers.authorization ?? null,
      idempotencyKey: req.headers['idempotency-key'] ?? null, contentType: req.headers['content-type'] ?? null,
      raw, form: null, status: 0, body: null, replayed: false,
    };
    requests.push(entry);
    const answer = (status, body, headers = {}) => {
      entry.status = status;
      entry.body = body;
      sendJson(res, status, body, { 'Request-Id': `req_${crypto.randomBytes(8).toString('hex')}`, ...headers });
    };
    if (entry.authorization !== `Bearer ${secretKey}`) {
      const shown = /^Bearer (.*)$/.exec(entry.authorization ?? '')?.[1];
      return answer(401, stripeError('invalid_request_error', shown === undefined
        ? 'You did not provide an API key.' : `Invalid API Key provided: ${shown.slice(0, 8)}****`));
    }
    const handler = req.method === 'POST' && { '/v1/payment_intents': paymentIntent, '/v1/transfers': transfer }[url.pathname];
    if (!handler) return answer(404, stripeError('invalid_request_error', `Unrecognized request URL (${req.method}: ${url.pathname}).`));
    if (!String(entry.contentType).startsWith('application/x-www-form-urlencoded')) {
      return answer(400, stripeError('invalid_request_error', 'Stripe takes form-encoded bodies (application/x-www-form-urlencoded).'));
    }
    entry.form = parseStripeForm(raw);
    const script = scripted.get(url.pathname);
    if (script && script.left > 0) {
      script.left -= 1;
      return answer(script.status, script.body);
    }
    if (entry.idempotencyKey) {
      const seen = idempotency.get(entry.idempotencyKey);
      if (seen) {
        if (seen.path !== url.pathname || seen.raw !== raw) {
          return answer(400, stripeError('idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.'));
        }
        entry.replayed = true;
        return answer(seen.status, seen.body, { 'Idempotent-Replayed': 'true', 'Original-Request': seen.requestId });
      }
    }
    const [status, body] = handler(entry.form, entry);
    if (entry.idempotencyKey && status < 500) {
      idempotency.set(entry.idempotencyKey, { path: url.pathname, raw, status, body, requestId: `req_${entry.at}` });
    }
    return answer(status, body);
  });
  const port = await listen(server);
  fake.baseUrl = `http://127.0.0.1:${port}`;
  fake.close = () => new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
  return fake;
}
