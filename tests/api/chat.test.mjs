// Chat: conversations about an offer, a transaction or a request enquiry
// between its parties only; messages (text kept exactly, client_id
// idempotency, limits), history in both directions, read markers and exact
// unread counts (also under racing writers and readers), realtime delivery
// on the conversation channels through the real pusher-js (message.created,
// conversation.read, presence with user_info, typing as a client event),
// attachments (type sniffed from the bytes, size limit, participants only)
// and reporting a message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startSouq, assertSuccess, assertError } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, makePendingSeller, postRequest, makeOffer, events, eventually } from './people.mjs';
import { connectPusher, subscribe, recorder, closedAfterEachTest } from './realtime.mjs';

let s, admin, seller, stranger;
before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  seller = await makeSeller(s, admin, 'seller');
  stranger = await register(s, 'stranger');
});
after(async () => { await s?.stop(); });

// Every client a test opens is closed after it (pusher-js would otherwise keep reconnecting).
const keep = closedAfterEachTest();

// ---------------------------------------------------------------- helpers

const open = (who, subject_type, subject_id, srv = s) => srv.post('/api/v1/conversations', { subject_type, subject_id }, auth(who));
const send = (srv, conv, who, body) => srv.post(`/api/v1/conversations/${conv.id}/messages`, body, auth(who));
const say = async (conv, who, body, srv = s) => assertSuccess(await send(srv, conv, who, typeof body === 'string' ? { body } : body), 201);
const markRead = (conv, who, message_id) =>
  s.post(`/api/v1/conversations/${conv.id}/read`, message_id === undefined ? undefined : { message_id }, auth(who));
const getConversation = async (conv, who) => assertSuccess(await s.get(`/api/v1/conversations/${conv.id}`, auth(who)));
const unreadTotal = async (who) => assertSuccess(await s.get('/api/v1/conversations/unread', auth(who))).unread_total;

// A fresh buyer with a request, the seller's offer on it, and the conversation about the offer (opened by the buyer).
async function offerChat(sel = seller, name = 'buyer') {
  const buyer = await register(s, name);
  const request = await postRequest(s, buyer);
  const offer = await makeOffer(s, sel, request.id);
  const conv = assertSuccess(await open(buyer, 'offer', offer.id), 201);
  return { buyer, request, offer, conv };
}

// Every message of a conversation, oldest first, through the history pages.
async function history(conv, who) {
  const out = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages++) {
    const res = await s.get(`/api/v1/conversations/${conv.id}/messages?limit=200${cursor ? `&cursor=${cursor}` : ''}`, auth(who));
    out.push(...assertSuccess(res));
    cursor = res.json.meta.next_cursor;
    if (!cursor) return out.reverse();
  }
  assert.fail('history did not end');
}

const roles = (conv) => Object.fromEntries(conv.participants.map((p) => [p.role, p.user.id]));
const mine = (conv, who) => conv.participants.find((p) => p.user.id === who.id);

// A real PNG (signature, IHDR, IDAT, IEND with their CRCs), padded with a tEXt chunk to `size` bytes when asked.
function crc32(buf) {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}
function png({ width = 2, height = 2, size } = {}) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const raw = Buffer.alloc(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([200, 30 * x, 60 * y], y * (1 + 3 * width) + 1 + 3 * x);
  const parts = [Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw))];
  const end = pngChunk('IEND', Buffer.alloc(0));
  let bytes = Buffer.concat([...parts, end]);
  if (size !== undefined) {
    const filler = size - bytes.length - 12;
    assert.ok(filler >= 8, `a PNG cannot be ${size} bytes`);
    bytes = Buffer.concat([...parts, pngChunk('tEXt', Buffer.from(`Comment\0${'x'.repeat(filler - 8)}`, 'latin1')), end]);
    assert.equal(bytes.length, size);
  }
  return bytes;
}
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n'
  + 'trailer << /Root 1 0 R >>\n%%EOF\n', 'latin1');

const upload = (conv, who, bytes, type, filename = 'file.png', srv = s) =>
  srv.request('POST', `/api/v1/conversations/${conv.id}/attachments?filename=${encodeURIComponent(filename)}`,
    { body: bytes, headers: { ...auth(who).headers, 'Content-Type': type } });

// ---------------------------------------------------------------- opening

test('a conversation about an offer: the buyer or the offer\'s seller opens it (201), the other party gets the same one (200); nobody else', async () => {
  const buyer = await register(s, 'offer-buyer');
  const request = await postRequest(s, buyer);
  const offer = await makeOffer(s, seller, request.id);
  // the seller opens first this time
  const made = assertSuccess(await open(seller, 'offer', offer.id), 201);
  assert.equal(made.subject_type, 'offer');
  assert.equal(made.subject_id, offer.id);
  assert.deepEqual(roles(made), { buyer: buyer.id, seller: seller.id });
  assert.deepEqual([made.message_count, made.unread_count, made.last_message, made.last_message_at], [0, 0, null, null]);
  assert.equal(made.channel, `private-conversation.${made.id}`);
  assert.equal(made.presence_channel, `presence-conversation.${made.id}`);
  const again = assertSuccess(await open(buyer, 'offer', offer.id), 200);
  assert.equal(again.id, made.id);
  assert.equal(assertSuccess(await open(seller, 'offer', offer.id), 200).id, made.id);
  // the opposite order on another offer: the buyer first, then the seller
  const other = await makeSeller(s, admin, 'offer-seller2');
  const offer2 = await makeOffer(s, other, request.id);
  const second = assertSuccess(await open(buyer, 'offer', offer2.id), 201);
  assert.notEqual(second.id, made.id);
  assert.deepEqual(roles(second), { buyer: buyer.id, seller: other.id });
  assert.equal(assertSuccess(await open(other, 'offer', offer2.id), 200).id, second.id);
  // a stranger, or a seller of another offer on the same request, is told there is no such offer
  assertError(await open(stranger, 'offer', offer.id), 404, 'not_found');
  assertError(await open(other, 'offer', offer.id), 404, 'not_found');
  assertError(await open(buyer, 'offer', 'ofr_00000000000000000000000000'), 404, 'not_found');
  assertError(await s.get(`/api/v1/conversations/${made.id}`, auth(stranger)), 404, 'not_found');
  assertError(await s.get(`/api/v1/conversations/${made.id}`, auth(other)), 404, 'not_found');
  assertError(await s.get(`/api/v1/conversations/${made.id}`), 401, 'unauthenticated');
  assert.equal((await getConversation(made, buyer)).id, made.id);
  // both parties find it in their inbox, once; the stranger's is empty
  const inbox = assertSuccess(await s.get('/api/v1/conversations', auth(buyer)));
  assert.deepEqual(inbox.map((c) => c.id).sort(), [made.id, second.id].sort());
  assert.equal(assertSuccess(await s.get('/api/v1/conversations', auth(seller))).filter((c) => c.id === made.id).length, 1);
  assert.deepEqual(assertSuccess(await s.get('/api/v1/conversations', auth(stranger))), []);
});

test('opening: unknown subject_type, missing or unknown fields → 422; anonymous → 401', async () => {
  const { offer } = await offerChat();
  let e = assertError(await open(seller, 'planet', offer.id), 422, 'validation_failed');
  assert.ok(e.details.fields.subject_type, JSON.stringify(e));
  e = assertError(await s.post('/api/v1/conversations', {}, auth(seller)), 422, 'validation_failed');
  assert.deepEqual(Object.keys(e.details.fields).sort(), ['subject_id', 'subject_type']);
  e = assertError(await s.post('/api/v1/conversations', { subject_type: 'offer' }, auth(seller)), 422, 'validation_failed');
  assert.deepEqual(Object.keys(e.details.fields), ['subject_id']);
  e = assertError(await s.post('/api/v1/conversations', { subject_id: offer.id }, auth(seller)), 422, 'validation_failed');
  assert.deepEqual(Object.keys(e.details.fields), ['subject_type']);
  e = assertError(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id, with: stranger.id }, auth(seller)), 422, 'validation_failed');
  assert.ok(e.details.fields.with, JSON.stringify(e));
  assertError(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: 7 }, auth(seller)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id }), 401, 'unauthenticated');
});

test('a conversation about a transaction: the deal\'s buyer and seller, one conversation, apart from the offer\'s', async () => {
  const { buyer, offer, conv: aboutOffer } = await offerChat(seller, 'deal-buyer');
  const deal = assertSuccess(await s.post(`/api/v1/offers/${offer.id}/accept`, undefined, auth(buyer)));
  const made = assertSuccess(await open(seller, 'transaction', deal.id), 201);
  assert.deepEqual([made.subject_type, made.subject_id], ['transaction', deal.id]);
  assert.deepEqual(roles(made), { buyer: buyer.id, seller: seller.id });
  assert.notEqual(made.id, aboutOffer.id);
  assert.equal(assertSuccess(await open(buyer, 'transaction', deal.id), 200).id, made.id);
  assertError(await open(stranger, 'transaction', deal.id), 404, 'not_found');
  assertError(await open(admin, 'transaction', deal.id), 404, 'not_found');
  assertError(await open(buyer, 'transaction', 'txn_00000000000000000000000000'), 404, 'not_found');
  // the offer's conversation goes on after the offer is accepted
  assert.equal(assertSuccess(await open(seller, 'offer', offer.id), 200).id, aboutOffer.id);
});

test('a conversation about a request: a seller\'s enquiry to its buyer, one per seller; the buyer cannot open one with themself', async () => {
  const buyer = await register(s, 'enquired');
  const request = await postRequest(s, buyer);
  const made = assertSuccess(await open(seller, 'request', request.id), 201);
  assert.deepEqual([made.subject_type, made.subject_id], ['request', request.id]);
  assert.deepEqual(roles(made), { buyer: buyer.id, seller: seller.id });
  assert.equal(assertSuccess(await open(seller, 'request', request.id), 200).id, made.id);
  const other = await makeSeller(s, admin, 'enquirer2');
  const second = assertSuccess(await open(other, 'request', request.id), 201);
  assert.notEqual(second.id, made.id);
  assert.deepEqual(roles(second), { buyer: buyer.id, seller: other.id });
  assertError(await open(buyer, 'request', request.id), 404, 'not_found');
  assertError(await open(seller, 'request', 'req_00000000000000000000000000'), 404, 'not_found');
  // each enquirer sees only their own; the buyer sees both
  assertError(await s.get(`/api/v1/conversations/${made.id}`, auth(other)), 404, 'not_found');
  const inbox = assertSuccess(await s.get('/api/v1/conversations', auth(buyer))).map((c) => c.id);
  assert.deepEqual(inbox.sort(), [made.id, second.id].sort());
  // the buyer answers in the enquiry
  assert.equal((await say(made, buyer, 'Yes, still looking')).sender_id, buyer.id);
  // a request no longer open takes no new enquiries; the ones made stay readable
  assertSuccess(await s.post(`/api/v1/requests/${request.id}/cancel`, { reason: 'bought elsewhere' }, auth(buyer)));
  const late = await makeSeller(s, admin, 'enquirer-late');
  assertError(await open(late, 'request', request.id), 404, 'not_found');
  assert.equal((await getConversation(made, seller)).message_count, 1);
});

test('only approved sellers enquire about a request: a plain user, a pending seller or an admin cannot open one as its "seller"', async () => {
  const buyer = await register(s, 'enquiry-target');
  const request = await postRequest(s, buyer);
  const plain = await register(s, 'not-a-seller');
  const pending = await makePendingSeller(s, 'pending-enquirer');
  const wrong = [];
  for (const [who, name] of [[plain, 'a plain user'], [pending, 'a pending seller'], [admin, 'an admin']]) {
    const res = await open(who, 'request', request.id);
    if (res.status !== 403 && res.status !== 404) wrong.push(`${name}: ${res.status} ${JSON.stringify(res.json?.data?.participants?.map((p) => [p.role, p.user.is_seller]))}`);
  }
  assert.deepEqual(wrong, []);
  assert.equal(assertSuccess(await open(seller, 'request', request.id), 201).subject_id, request.id);
});

// ---------------------------------------------------------------- messages

test('a text message keeps Arabic text, RTL marks and emoji exactly, in the answer, the history and the inbox', async () => {
  const { buyer, conv } = await offerChat(seller, 'arabic');
  const text = '\u200Fمرحبا، هل الهاتف ما زال متوفراً؟ \u202Bالسعر ١٥٠٠ جنيه\u202C \u2067(iPhone 13)\u2069 🙂\u200F\u200E';
  const m = await say(conv, buyer, text);
  assert.equal(m.body, text);
  assert.ok(Buffer.from(m.body, 'utf8').equals(Buffer.from(text, 'utf8')), 'the UTF-8 bytes differ');
  assert.deepEqual([m.kind, m.sender_id, m.conversation_id, m.attachments], ['text', buyer.id, conv.id, []]);
  const [stored] = await history(conv, seller);
  assert.ok(Buffer.from(stored.body, 'utf8').equals(Buffer.from(text, 'utf8')), `history: ${JSON.stringify(stored.body)}`);
  assert.deepEqual(stored, m);
  const seen = await getConversation(conv, seller);
  assert.deepEqual(seen.last_message, m);
  assert.equal(seen.last_message_at, m.created_at);
  assert.deepEqual([seen.message_count, seen.unread_count], [1, 1]);
  // line breaks and tabs inside a message are kept; other control characters are refused
  const lines = 'السطر الأول\nthe second line\r\n\tindented';
  assert.equal((await say(conv, buyer, lines)).body, lines);
  assertError(await s.post(`/api/v1/conversations/${conv.id}/messages`, { body: 'bell\u0007' }, auth(buyer)), 422, 'validation_failed');
  // the limit counts characters, not bytes: 4000 Arabic letters (8000 bytes) fit, 4001 do not
  const long = 'ب'.repeat(4000);
  assert.equal((await say(conv, seller, long)).body, long);
  assertError(await send(s, conv, seller, { body: `${long}ب` }), 422, 'validation_failed');
  assertError(await send(s, conv, seller, { body: 'x'.repeat(4001) }), 422, 'validation_failed');
});

test('long messages in Arabic or with emoji are sent wherever their 140th byte falls; the notification preview is a prefix of whole characters', async () => {
  const { buyer, conv } = await offerChat(seller, 'long-arabic');
  const paragraph = 'السلام عليكم، هل ما زال الهاتف متوفراً؟ أريد أن أعرف حالة البطارية، وهل توجد خدوش على الشاشة، وهل العلبة والشاحن الأصليان موجودان؟';
  const bodies = [0, 1, 2, 3].map((k) => `${'!'.repeat(k)}${paragraph}`).concat([`a${'🙂'.repeat(60)}`, `${'x'.repeat(139)}é and more`]);
  const problems = [];
  const sent = [];
  for (const body of bodies) {
    const res = await send(s, conv, buyer, { body });
    if (res.status !== 201) problems.push(`${res.status} for a body of ${Buffer.byteLength(body)} bytes starting ${JSON.stringify(body.slice(0, 12))}: ${res.json?.error?.code}`);
    else sent.push(res.json.data.body);
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(sent, bodies);
  const previews = (await events(s, conv.id, { type: 'message.created', full: true })).map((e) => e.payload.preview);
  assert.equal(previews.length, bodies.length);
  for (const [i, preview] of previews.entries()) {
    assert.ok(preview.length > 0 && bodies[i].startsWith(preview) && !preview.includes('\uFFFD'), `preview ${JSON.stringify(preview)} of ${JSON.stringify(bodies[i])}`);
  }
});

test('messages: client_id makes a send idempotent; empty, too long, unknown fields → 422; outsiders 404; anonymous 401', async () => {
  const { buyer, conv } = await offerChat(seller, 'idem');
  const first = await say(conv, buyer, { body: 'Is it unlocked?', client_id: 'phone-1:42' });
  const retry = assertSuccess(await send(s, conv, buyer, { body: 'Is it unlocked?', client_id: 'phone-1:42' }), 200);
  assert.deepEqual(retry, first);
  // the same key with another body is still the same message
  assert.equal(assertSuccess(await send(s, conv, buyer, { body: 'edited?', client_id: 'phone-1:42' }), 200).id, first.id);
  assert.equal((await getConversation(conv, buyer)).message_count, 1);
  assert.equal((await getConversation(conv, seller)).unread_count, 1);
  // the key is the sender's: the other party's same key is another message
  const theirs = await say(conv, seller, { body: 'Yes', client_id: 'phone-1:42' });
  assert.notEqual(theirs.id, first.id);
  assert.deepEqual((await history(conv, buyer)).map((m) => m.id), [first.id, theirs.id]);
  for (const body of [{ body: '' }, { body: '   ' }, {}, { body: null }, { body: 5 }, { attachment_ids: [] }, { body: 'x'.repeat(4001) },
    { body: 'hi', to: stranger.id }, { body: 'hi', sender_id: seller.id }, { body: 'hi', client_id: '' }, { body: 'hi', client_id: 'k'.repeat(101) }]) {
    assertError(await send(s, conv, buyer, body), 422, 'validation_failed');
  }
  assertError(await s.post(`/api/v1/conversations/${conv.id}/messages`, '[]', auth(buyer)), 400, 'invalid_body');
  assertError(await send(s, conv, stranger, { body: 'let me in' }), 404, 'not_found');
  assertError(await send(s, conv, admin, { body: 'admins are not participants either' }), 404, 'not_found');
  assertError(await send(s, { id: 'conv_00000000000000000000000000' }, buyer, { body: 'nobody' }), 404, 'not_found');
  assertError(await s.get(`/api/v1/conversations/${conv.id}/messages`, auth(stranger)), 404, 'not_found');
  assertError(await markRead(conv, stranger), 404, 'not_found');
  assertError(await s.post(`/api/v1/conversations/${conv.id}/messages`, { body: 'anon' }), 401, 'unauthenticated');
  assertError(await s.get(`/api/v1/conversations/${conv.id}/messages`), 401, 'unauthenticated');
  assertError(await s.post(`/api/v1/conversations/${conv.id}/read`), 401, 'unauthenticated');
  assertError(await s.get('/api/v1/conversations'), 401, 'unauthenticated');
  assertError(await s.get('/api/v1/conversations/unread'), 401, 'unauthenticated');
  // none of the refused sends left a trace
  const all = await history(conv, seller);
  assert.deepEqual(all.map((m) => m.id), [first.id, theirs.id]);
  assert.equal((await getConversation(conv, seller)).message_count, 2);
});

test('race: the same client_id sent eight times at once makes one message (one 201, the rest 200 with it)', async () => {
  const { buyer, conv } = await offerChat(seller, 'idem-race');
  const problems = [];
  const ROUNDS = 4;
  for (let round = 0; round < ROUNDS; round++) {
    const results = await Promise.all(Array.from({ length: 8 }, () => send(s, conv, buyer, { body: `sent on a flaky line ${round}`, client_id: `retry-${round}` })));
    const statuses = results.map((r) => r.status).sort();
    if (statuses.join() !== '200,200,200,200,200,200,200,201')
      problems.push(`round ${round}: ${results.map((r) => `${r.status}${r.status >= 300 ? ` ${r.json?.error?.code}` : ''}`).join(', ')}`);
    const ids = new Set(results.filter((r) => r.status < 300).map((r) => r.json.data.id));
    if (ids.size !== 1) problems.push(`round ${round}: ${ids.size} different messages`);
  }
  assert.deepEqual(problems, []);
  assert.equal((await history(conv, seller)).length, ROUNDS);
  const seen = await getConversation(conv, seller);
  assert.deepEqual([seen.message_count, seen.unread_count], [ROUNDS, ROUNDS]);
});

// ---------------------------------------------------------------- history

test('history: newest first in pages chained by next_cursor, each message once; after=<id> oldest first', async () => {
  const { buyer, conv } = await offerChat(seller, 'pager');
  const sent = [];
  for (let i = 1; i <= 7; i++) sent.push((await say(conv, i % 2 ? buyer : seller, `message ${i}`)).id);
  assert.deepEqual([...sent].sort(), sent, 'ids sort in sending order');
  const pages = [];
  let url = `/api/v1/conversations/${conv.id}/messages?limit=3`;
  for (;;) {
    const res = await s.get(url, auth(buyer));
    const items = assertSuccess(res);
    pages.push(items.map((m) => m.body));
    const next = res.json.meta.next_cursor;
    if (next === null) break;
    assert.equal(next, items.at(-1).id, 'next_cursor is the last item of the page');
    url = `/api/v1/conversations/${conv.id}/messages?limit=3&cursor=${next}`;
    assert.ok(pages.length < 5, 'the cursor chain does not end');
  }
  assert.deepEqual(pages, [['message 7', 'message 6', 'message 5'], ['message 4', 'message 3', 'message 2'], ['message 1']]);
  // after the first: the six others, oldest first, chained through next_cursor as the next `after`
  const newer = [];
  let after = sent[0];
  for (let n = 0; ; n++) {
    const res = await s.get(`/api/v1/conversations/${conv.id}/messages?after=${after}&limit=4`, auth(seller));
    const items = assertSuccess(res);
    newer.push(...items.map((m) => m.id));
    after = res.json.meta.next_cursor;
    if (after === null) break;
    assert.equal(after, items.at(-1).id);
    assert.ok(n < 5, 'the after chain does not end');
  }
  assert.deepEqual(newer, sent.slice(1));
  const latest = await s.get(`/api/v1/conversations/${conv.id}/messages?after=${sent[6]}`, auth(buyer));
  assert.deepEqual(assertSuccess(latest), []);
  assert.equal(latest.json.meta.next_cursor, null);
  const whole = await s.get(`/api/v1/conversations/${conv.id}/messages`, auth(buyer));
  assert.deepEqual(assertSuccess(whole).map((m) => m.id), [...sent].reverse());
  assert.equal(whole.json.meta.next_cursor, null);
  for (const q of ['limit=0', 'limit=201', 'limit=abc', `after=${sent[1]}&cursor=${sent[5]}`, 'after=nonsense', 'cursor=nonsense'])
    assertError(await s.get(`/api/v1/conversations/${conv.id}/messages?${q}`, auth(buyer)), 422, 'validation_failed');
});

test('the inbox pages by latest activity, and a new message brings a conversation to the top', async () => {
  const buyer = await register(s, 'inbox');
  const convs = [];
  for (let i = 0; i < 3; i++) {
    const request = await postRequest(s, buyer);
    const offer = await makeOffer(s, seller, request.id);
    convs.push(assertSuccess(await open(buyer, 'offer', offer.id), 201));
    await say(convs[i], seller, `offer ${i}`);
  }
  let total = 3;
  const ids = async () => {
    const out = [];
    let cursor = null;
    do {
      const res = await s.get(`/api/v1/conversations?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, auth(buyer));
      out.push(...assertSuccess(res).map((c) => c.id));
      assert.equal(res.json.meta.unread_total, total);
      cursor = res.json.meta.next_cursor;
    } while (cursor && out.length < 10);
    return out;
  };
  assert.deepEqual(await ids(), [convs[2].id, convs[1].id, convs[0].id]);
  await say(convs[0], seller, 'back to the first');
  total = 4;
  assert.deepEqual(await ids(), [convs[0].id, convs[2].id, convs[1].id]);
  assertError(await s.get('/api/v1/conversations?cursor=bogus', auth(buyer)), 422, 'validation_failed');
  assertError(await s.get('/api/v1/conversations?limit=101', auth(buyer)), 422, 'validation_failed');
});

// ---------------------------------------------------------------- unread counts

test('unread counts are exact per conversation and in total; the read marker moves forward only', async () => {
  const buyer = await register(s, 'reader');
  const other = await makeSeller(s, admin, 'reader-seller2');
  const request = await postRequest(s, buyer);
  const c1 = assertSuccess(await open(buyer, 'offer', (await makeOffer(s, seller, request.id)).id), 201);
  const c2 = assertSuccess(await open(other, 'offer', (await makeOffer(s, other, request.id)).id), 201);
  const m = [];
  for (let i = 1; i <= 3; i++) m.push(await say(c1, seller, `c1 #${i}`));
  const n = [await say(c2, other, 'c2 #1'), await say(c2, other, 'c2 #2')];
  assert.deepEqual([(await getConversation(c1, buyer)).unread_count, (await getConversation(c2, buyer)).unread_count], [3, 2]);
  assert.equal(await unreadTotal(buyer), 5);
  const inbox = await s.get('/api/v1/conversations', auth(buyer));
  assert.equal(inbox.json.meta.unread_total, 5);
  assert.deepEqual(Object.fromEntries(assertSuccess(inbox).map((c) => [c.id, c.unread_count])), { [c1.id]: 3, [c2.id]: 2 });
  // senders have nothing unread in their own messages
  assert.equal((await getConversation(c1, seller)).unread_count, 0);
  assert.equal(mine(await getConversation(c1, seller), seller).last_read_message_id, m[2].id);

  let r = assertSuccess(await markRead(c1, buyer, m[1].id));
  assert.deepEqual(r, { conversation_id: c1.id, last_read_message_id: m[1].id, unread_count: 1, unread_total: 3 });
  r = assertSuccess(await markRead(c1, buyer, m[2].id));
  assert.deepEqual(r, { conversation_id: c1.id, last_read_message_id: m[2].id, unread_count: 0, unread_total: 2 });
  // an older message does not move the marker back, nor the count
  r = assertSuccess(await markRead(c1, buyer, m[0].id));
  assert.deepEqual(r, { conversation_id: c1.id, last_read_message_id: m[2].id, unread_count: 0, unread_total: 2 });
  // the seller sees the buyer's marker (a read receipt)
  assert.equal(mine(await getConversation(c1, seller), buyer).last_read_message_id, m[2].id);
  // a message of another conversation, or none at all, is refused and changes nothing
  let e = assertError(await markRead(c1, buyer, n[1].id), 422, 'validation_failed');
  assert.ok(e.details.fields.message_id, JSON.stringify(e));
  assertError(await markRead(c1, buyer, 'msg_00000000000000000000000000'), 422, 'validation_failed');
  e = assertError(await s.post(`/api/v1/conversations/${c1.id}/read`, { message_id: m[0].id, extra: 1 }, auth(buyer)), 422, 'validation_failed');
  assert.equal(mine(await getConversation(c1, buyer), buyer).last_read_message_id, m[2].id);
  // a new message counts again
  const m4 = await say(c1, seller, 'c1 #4');
  assert.equal(await unreadTotal(buyer), 3);
  // read without a body: up to the latest
  r = assertSuccess(await markRead(c1, buyer));
  assert.deepEqual(r, { conversation_id: c1.id, last_read_message_id: m4.id, unread_count: 0, unread_total: 2 });
  r = assertSuccess(await markRead(c2, buyer));
  assert.deepEqual(r, { conversation_id: c2.id, last_read_message_id: n[1].id, unread_count: 0, unread_total: 0 });
  assert.equal(await unreadTotal(buyer), 0);
  // an empty conversation reads as nothing
  const empty = assertSuccess(await open(seller, 'request', (await postRequest(s, buyer)).id), 201);
  assert.deepEqual(assertSuccess(await markRead(empty, buyer)),
    { conversation_id: empty.id, last_read_message_id: null, unread_count: 0, unread_total: 0 });
});

test('replying reads the conversation: the sender\'s marker moves to their message, and their unread count follows it', async () => {
  const { buyer, conv } = await offerChat(seller, 'replier');
  await say(conv, seller, 'one');
  await say(conv, seller, 'two');
  assert.equal((await getConversation(conv, buyer)).unread_count, 2);
  const reply = await say(conv, buyer, 'answering without opening the read route');
  const seen = await getConversation(conv, buyer);
  assert.equal(mine(seen, buyer).last_read_message_id, reply.id, 'the sender has read up to their own message');
  // nothing from the others lies after the marker, so nothing is unread
  assert.deepEqual({ unread_count: seen.unread_count, unread_total: await unreadTotal(buyer) }, { unread_count: 0, unread_total: 0 });
  // and the read route agrees (it cannot move the marker further: it is at the latest message)
  const r = assertSuccess(await markRead(conv, buyer));
  assert.deepEqual([r.last_read_message_id, r.unread_count, r.unread_total], [reply.id, 0, 0]);
});

// The reader's count must be exactly what the history says it is.
async function checkUnread(conv, reader) {
  const all = await history(conv, reader);
  const seen = await getConversation(conv, reader);
  const marker = mine(seen, reader).last_read_message_id;
  const expected = all.filter((m) => m.sender_id !== reader.id && (marker === null || m.id > marker)).length;
  const inbox = await s.get('/api/v1/conversations?limit=100', auth(reader));
  const sum = assertSuccess(inbox).reduce((a, c) => a + c.unread_count, 0);
  return { all, seen, marker, expected, unread: seen.unread_count, total: await unreadTotal(reader), inboxTotal: inbox.json.meta.unread_total, sum };
}

test('race: 40 messages sent at once while the other party marks read 20 times; the unread count is exactly what the history says', async () => {
  const { buyer, conv } = await offerChat(seller, 'race-reader');
  const problems = [];
  let sent = 0;
  for (let round = 1; round <= 2; round++) {
    const calls = [];
    for (let i = 0; i < 40; i++) {
      calls.push(send(s, conv, seller, { body: `round ${round} message ${i}` }));
      if (i % 2 === 1) calls.push(markRead(conv, buyer));
    }
    const results = await Promise.all(calls);
    for (const res of results) if (res.status !== 200 && res.status !== 201) problems.push(`${res.status} ${res.text.slice(0, 200)}`);
    sent += 40;
    const got = await checkUnread(conv, buyer);
    const newest = got.all.map((m) => m.id).sort().at(-1);
    const facts = { round, history: got.all.length, message_count: got.seen.message_count, marker: got.marker, unread_count: got.unread, expected: got.expected,
      unread_total: got.total, inbox_unread_total: got.inboxTotal, inbox_sum: got.sum, last_message: got.seen.last_message?.id, newest };
    if (got.all.length !== sent || got.seen.message_count !== sent) problems.push(`messages lost or doubled: ${JSON.stringify(facts)}`);
    if (got.unread !== got.expected) problems.push(`unread_count is not the number of others' messages after the marker: ${JSON.stringify(facts)}`);
    if (got.total !== got.sum || got.inboxTotal !== got.sum) problems.push(`unread_total is not the sum of the counts: ${JSON.stringify(facts)}`);
    if (got.seen.last_message?.id !== newest) problems.push(`last_message is not the newest message: ${JSON.stringify(facts)}`);
    if (mine(got.seen, seller).last_read_message_id !== got.all.filter((m) => m.sender_id === seller.id).at(-1).id)
      problems.push(`the sender's marker is not their newest message: ${JSON.stringify({ ...facts, sender_marker: mine(got.seen, seller).last_read_message_id })}`);
  }
  assert.deepEqual(problems, []);
  // reading to the end leaves nothing unread
  const r = assertSuccess(await markRead(conv, buyer));
  assert.deepEqual([r.unread_count, r.unread_total], [0, 0], JSON.stringify(r));
});

test('race: ten opens of one offer\'s conversation at once by both parties make exactly one conversation', async () => {
  const buyer = await register(s, 'race-opener');
  const request = await postRequest(s, buyer);
  const offer = await makeOffer(s, seller, request.id);
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => open(i % 2 ? seller : buyer, 'offer', offer.id)));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201],
    results.map((r) => `${r.status} ${r.text.slice(0, 200)}`).join('\n'));
  const ids = new Set(results.map((r) => r.json.data.id));
  assert.equal(ids.size, 1);
  const [id] = ids;
  for (const who of [buyer, seller]) {
    const inbox = assertSuccess(await s.get('/api/v1/conversations?limit=100', auth(who)));
    assert.equal(inbox.filter((c) => c.subject_id === offer.id).map((c) => c.id).join(), id);
  }
  assert.equal((await getConversation({ id }, buyer)).participants.length, 2);
});

// ---------------------------------------------------------------- realtime

test('realtime: participants receive message.created and conversation.read on the conversation channels; outsiders are refused (403)', async () => {
  const { buyer, conv } = await offerChat(seller, 'live');
  const buyerWs = keep(await connectPusher(s, buyer));
  const sellerWs = keep(await connectPusher(s, seller));
  const onBuyer = recorder(await subscribe(buyerWs, conv.channel));
  const onSeller = recorder(await subscribe(sellerWs, conv.channel));
  const onBuyerPresence = recorder(await subscribe(buyerWs, conv.presence_channel));
  const m = await say(conv, seller, 'Live from the shop \u200Fمرحبا');
  assert.deepEqual(await onBuyer.next('message.created'), m);
  assert.deepEqual(await onBuyerPresence.next('message.created'), m);
  assert.deepEqual(await onSeller.next('message.created'), m, 'the sender\'s other tabs see it too');
  // reading publishes a receipt once; reading again without moving publishes nothing
  const read = assertSuccess(await markRead(conv, buyer));
  const receipt = await onSeller.next('conversation.read');
  assert.deepEqual([receipt.conversation_id, receipt.user_id, receipt.last_read_message_id], [conv.id, buyer.id, m.id]);
  assert.equal(read.last_read_message_id, m.id);
  assertSuccess(await markRead(conv, buyer));
  assertSuccess(await markRead(conv, buyer, m.id));
  const from = onSeller.seen.length;
  const m2 = await say(conv, buyer, 'second');
  assert.deepEqual(await onSeller.next('message.created', 10_000, from), m2);
  assert.equal(onSeller.seen.filter((e) => e.event === 'conversation.read').length, 1, JSON.stringify(onSeller.seen.map((e) => e.event)));
  // outsiders: both channels are refused by the auth endpoint with 403
  const outsider = keep(await connectPusher(s, stranger));
  for (const channel of [conv.channel, conv.presence_channel]) {
    const err = await subscribe(outsider, channel).then(() => null, (e) => e);
    assert.ok(err, `a stranger subscribed to ${channel}`);
    assert.equal(err.data?.status, 403, `${channel}: ${JSON.stringify(err.data)}`);
  }
  const anonymous = keep(await connectPusher(s, null));
  const err = await subscribe(anonymous, conv.channel).then(() => null, (e) => e);
  assert.equal(err?.data?.status, 401, JSON.stringify(err?.data));
  // a participant of another conversation is an outsider here too
  const { buyer: otherBuyer } = await offerChat(seller, 'live-other');
  const otherWs = keep(await connectPusher(s, otherBuyer));
  assert.equal((await subscribe(otherWs, conv.channel).then(() => null, (e) => e))?.data?.status, 403);
});

test('realtime: the presence channel shows both participants with {name, avatar_url}; client-typing reaches the other one with user_id, not the sender', async () => {
  const { buyer, conv } = await offerChat(seller, 'presence');
  assertSuccess(await s.request('PUT', '/api/v1/users/me', { body: { display_name: 'أمينة', avatar_url: 'https://cdn.example.com/amina.png' }, ...auth(buyer) }));
  const buyerWs = keep(await connectPusher(s, buyer));
  const sellerWs = keep(await connectPusher(s, seller));
  const buyerRoom = await subscribe(buyerWs, conv.presence_channel);
  assert.equal(buyerRoom.members.me.id, buyer.id);
  const sellerRoom = await subscribe(sellerWs, conv.presence_channel);
  const members = (room) => { const out = {}; room.members.each((mem) => { out[mem.id] = mem.info; }); return out; };
  const expected = { [buyer.id]: { name: 'أمينة', avatar_url: 'https://cdn.example.com/amina.png' }, [seller.id]: { name: 'seller', avatar_url: null } };
  assert.deepEqual(members(sellerRoom), expected);
  await eventually('the seller appears in the buyer\'s member list', () => buyerRoom.members.count === 2 || members(buyerRoom));
  assert.deepEqual(members(buyerRoom), expected);
  // typing
  const typing = [];
  buyerRoom.bind('client-typing', (data, meta) => typing.push({ data, user_id: meta?.user_id }));
  const sellerSaw = recorder(sellerRoom);
  assert.equal(sellerRoom.trigger('client-typing', { typing: true }), true);
  await eventually('the buyer sees the seller typing', () => typing.length === 1 || typing);
  assert.deepEqual(typing, [{ data: { typing: true }, user_id: seller.id }]);
  // by the time the seller's socket delivers a later message, an echo of their typing would have come first
  const m = await say(conv, buyer, 'I see you typing');
  assert.deepEqual(await sellerSaw.next('message.created'), m);
  assert.ok(!sellerSaw.seen.some((e) => e.event === 'client-typing'), 'client-typing was echoed to its sender');
  // the buyer leaves: the seller's room has one member
  buyerWs.disconnect();
  await eventually('the buyer leaves the room', () => sellerRoom.members.count === 1 || members(sellerRoom));
});

// ---------------------------------------------------------------- attachments

test('attachments: a PNG uploaded (201) and sent in a message; its bytes for participants only; each upload used once, by its uploader', async () => {
  const { buyer, conv } = await offerChat(seller, 'photos');
  const image = png();
  const made = assertSuccess(await upload(conv, seller, image, 'image/png', 'phone front.png'), 201);
  assert.deepEqual([made.filename, made.content_type, made.size, made.url], ['phone front.png', 'image/png', image.length, `/api/v1/attachments/${made.id}`]);
  // a message with only the attachment, then one with text and another upload (a PDF)
  const msg = await say(conv, seller, { attachment_ids: [made.id] });
  assert.equal(msg.body, null);
  assert.deepEqual(msg.attachments, [{ id: made.id, filename: 'phone front.png', content_type: 'image/png', size: image.length, url: made.url }]);
  const pdf = assertSuccess(await upload(conv, seller, PDF, 'application/pdf', 'invoice.pdf'), 201);
  const both = await say(conv, seller, { body: 'Invoice attached', attachment_ids: [pdf.id] });
  assert.deepEqual(both.attachments.map((a) => [a.id, a.content_type]), [[pdf.id, 'application/pdf']]);
  assert.deepEqual((await history(conv, buyer)).map((m) => m.attachments.map((a) => a.id)), [[made.id], [pdf.id]]);
  // the bytes, as uploaded, to both participants
  for (const who of [buyer, seller]) {
    const res = await s.get(made.url, auth(who));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.ok(res.body.equals(image), 'the bytes differ');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-disposition'], `attachment; filename="phone front.png"; filename*=UTF-8''phone%20front.png`);
  }
  const doc = await s.get(pdf.url, auth(buyer));
  assert.deepEqual([doc.status, doc.headers['content-type'], doc.body.equals(PDF)], [200, 'application/pdf', true]);
  assertError(await s.get(made.url, auth(stranger)), 404, 'not_found');
  assertError(await s.get(made.url, auth(admin)), 404, 'not_found');
  assertError(await s.get(made.url), 401, 'unauthenticated');
  assertError(await s.get('/api/v1/attachments/att_00000000000000000000000000', auth(buyer)), 404, 'not_found');
  // used twice; someone else's; another conversation's; unknown → 422, and no message is made
  const count = (await getConversation(conv, buyer)).message_count;
  assertError(await send(s, conv, seller, { body: 'again', attachment_ids: [made.id] }), 422, 'validation_failed');
  const sellers = assertSuccess(await upload(conv, seller, png({ width: 3 }), 'image/png'), 201);
  assertError(await send(s, conv, buyer, { body: 'not mine', attachment_ids: [sellers.id] }), 422, 'validation_failed');
  const { conv: elsewhere } = await offerChat(seller, 'photos-other');
  const foreign = assertSuccess(await upload(elsewhere, seller, png(), 'image/png'), 201);
  assertError(await send(s, conv, seller, { body: 'wrong room', attachment_ids: [foreign.id] }), 422, 'validation_failed');
  assertError(await send(s, conv, seller, { attachment_ids: ['att_00000000000000000000000000'] }), 422, 'validation_failed');
  // one good and one used: nothing is sent, and the good one stays unused
  assertError(await send(s, conv, seller, { attachment_ids: [sellers.id, made.id] }), 422, 'validation_failed');
  assert.equal((await getConversation(conv, buyer)).message_count, count);
  assert.deepEqual((await say(conv, seller, { attachment_ids: [sellers.id] })).attachments.map((a) => a.id), [sellers.id]);
  // the same upload in one message twice is one use too many
  const twice = assertSuccess(await upload(conv, buyer, png(), 'image/png'), 201);
  assertError(await send(s, conv, buyer, { attachment_ids: [twice.id, twice.id] }), 422, 'validation_failed');
  assertError(await send(s, conv, buyer, { attachment_ids: Array.from({ length: 11 }, () => twice.id) }), 422, 'validation_failed');
  // strangers cannot upload to a conversation; anonymous neither
  assertError(await upload(conv, stranger, png(), 'image/png'), 404, 'not_found');
  assertError(await s.request('POST', `/api/v1/conversations/${conv.id}/attachments`, { body: png(), headers: { 'Content-Type': 'image/png' } }), 401, 'unauthenticated');
});

test('attachments: the type is read from the bytes: executables and HTML → 415 unsupported_file_type, a PDF sent as PNG → 415 file_type_mismatch', async () => {
  const { buyer, conv } = await offerChat(seller, 'disguise');
  const elf = Buffer.concat([Buffer.from('7f454c4602010100', 'hex'), crypto.randomBytes(120)]);
  const exe = Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), Buffer.alloc(56), Buffer.from('PE\0\0', 'latin1'), crypto.randomBytes(64)]);
  const html = Buffer.from('<!DOCTYPE html><html><body><script>fetch("/api/v1/users/me")</script></body></html>', 'utf8');
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>', 'utf8');
  // a PNG signature after a byte of something else is not a PNG
  const shifted = Buffer.concat([Buffer.from(' '), png()]);
  for (const [what, bytes, type] of [['ELF', elf, 'image/png'], ['EXE', exe, 'image/png'], ['HTML', html, 'image/png'], ['HTML as HTML', html, 'text/html'],
    ['SVG', svg, 'image/svg+xml'], ['shifted PNG', shifted, 'image/png'], ['ELF as octet-stream', elf, 'application/octet-stream']]) {
    const e = assertError(await upload(conv, buyer, bytes, type, 'photo.png'), 415, 'unsupported_file_type');
    assert.ok(Array.isArray(e.details?.allowed), `${what}: ${JSON.stringify(e)}`);
  }
  let e = assertError(await upload(conv, buyer, PDF, 'image/png', 'photo.png'), 415, 'file_type_mismatch');
  assert.equal(e.details?.detected, 'application/pdf');
  e = assertError(await upload(conv, buyer, png(), 'image/jpeg', 'photo.jpg'), 415, 'file_type_mismatch');
  assert.equal(e.details?.detected, 'image/png');
  assertError(await upload(conv, buyer, png(), '', 'photo.png'), 415, 'file_type_mismatch');
  // a Content-Type parameter is fine
  assertSuccess(await upload(conv, buyer, png(), 'image/png; charset=binary', 'ok.png'), 201);
  // empty files and bad names
  assertError(await upload(conv, buyer, Buffer.alloc(0), 'image/png'), 422, 'validation_failed');
  for (const name of ['../../etc/passwd', 'a/b.png', 'a\\b.png', 'quote".png', 'line\r\nbreak.png', 'x'.repeat(201)])
    assertError(await upload(conv, buyer, png(), 'image/png', name), 422, 'validation_failed');
  // only the accepted upload is kept in storage (./var/files, the default --storage-dir)
  const folder = path.join(s.cwd, 'var', 'files', 'chat', conv.id);
  assert.equal(fs.readdirSync(folder).length, 1, `stored: ${fs.readdirSync(folder).join(', ')}`);
  // the server is fine after all of this
  assert.equal((await s.get('/readyz')).status, 200);
  assert.equal((await say(conv, buyer, 'still here')).body, 'still here');
});

test('attachments: over --chat-max-attachment → 413; at the limit → 201; the server still serves', async () => {
  const small = await startSouq({ args: ['--chat-max-attachment', '2048'] });
  try {
    const a = await makeAdmin(small);
    const b = await register(small, 'limited-buyer');
    const sel = await makeSeller(small, a, 'limited-seller');
    const request = await postRequest(small, b);
    const offer = await makeOffer(small, sel, request.id);
    const conv = assertSuccess(await open(b, 'offer', offer.id, small), 201);
    const e = assertError(await upload(conv, b, png({ size: 3000 }), 'image/png', 'big.png', small), 413, 'payload_too_large');
    assert.equal(typeof e.message, 'string');
    assertError(await upload(conv, b, png({ size: 2049 }), 'image/png', 'big.png', small), 413, 'payload_too_large');
    const fits = assertSuccess(await upload(conv, b, png({ size: 2048 }), 'image/png', 'fits.png', small), 201);
    assert.equal(fits.size, 2048);
    // the server still answers, on new connections and the same routes
    assert.equal((await small.get('/readyz')).status, 200);
    const m = await say(conv, sel, { body: 'got it', attachment_ids: [] }, small);
    assert.equal(m.body, 'got it');
    const got = await small.get(fits.url, auth(sel));
    assert.deepEqual([got.status, got.body.length], [200, 2048]);
  } finally {
    await small.stop();
  }
});

// ---------------------------------------------------------------- reports

test('a participant reports a message; the report names its sender as the owner', async () => {
  const { buyer, conv } = await offerChat(seller, 'reporter');
  const m = await say(conv, seller, 'Pay me outside the app, cheaper');
  const rep = assertSuccess(await s.post('/api/v1/reports', { target_type: 'message', target_id: m.id, reason: 'fraud' }, auth(buyer)), 201);
  assert.deepEqual(rep.target, { type: 'message', id: m.id, owner_id: seller.id });
  assert.deepEqual([rep.reporter_id, rep.status, rep.reason], [buyer.id, 'open', 'fraud']);
  assertError(await s.post('/api/v1/reports', { target_type: 'message', target_id: m.id, reason: 'spam' }, auth(buyer)), 409, 'already_reported');
  const own = await say(conv, buyer, 'my own words');
  assertError(await s.post('/api/v1/reports', { target_type: 'message', target_id: own.id, reason: 'spam' }, auth(buyer)), 422, 'cannot_report_self');
  assertError(await s.post('/api/v1/reports', { target_type: 'message', target_id: 'msg_00000000000000000000000000', reason: 'spam' }, auth(buyer)), 404, 'not_found');
  const listed = assertSuccess(await s.get('/api/v1/admin/reports?target_type=message', auth(admin)));
  assert.deepEqual(listed.filter((x) => x.target.id === m.id).map((x) => x.id), [rep.id]);
});
