// Notifications: what the marketplace tells people and how. In-app entries
// (listed newest first with cursors, read one by one or all up to an id,
// exact unread counts also under racing readers), realtime on
// private-user.{id} (notification.created, notification.read), preferences
// per category and channel (some locked), templates in English and Arabic
// (RTL, isolates around Latin names, money from minor units) that admins
// override, who hears of what (offers, acceptance, deal steps, chat messages
// only when the recipient is away), and delivery by push and email: the dev
// providers, FCM HTTP v1 with a service account against a local fake, and
// SMTP against a local sink.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startSouq, assertSuccess, assertError, sleep, RFC3339_UTC } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, postRequest, makeOffer, eventually, payDeal } from './people.mjs';
import { connectPusher, subscribe, recorder, closedAfterEachTest } from './realtime.mjs';
import { startFakeFcm, startSmtpSink, FCM_SCOPE } from './fakes.mjs';

let s, admin;
before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
});
after(async () => { await s?.stop(); });

// Every client a test opens is closed after it (pusher-js would otherwise keep reconnecting).
const keep = closedAfterEachTest();

// ---------------------------------------------------------------- helpers

const NTF_ID = /^ntf_[0-9a-hjkmnp-tv-z]{26}$/;
const NOTIFICATION_KEYS = ['id', 'type', 'category', 'title', 'body', 'locale', 'dir', 'data', 'read_at', 'created_at'];
const DELIVERY_KEYS = ['id', 'notification_id', 'user_id', 'channel', 'provider', 'target', 'status', 'title', 'body',
  'provider_message_id', 'error', 'created_at', 'sent_at'];
const CATEGORIES = ['offers', 'requests', 'deals', 'orders', 'messages', 'ratings', 'moderation'];
const DEFAULT_PREFERENCES = {
  offers: { in_app: true, push: true, email: true },
  requests: { in_app: true, push: true, email: false },
  deals: { in_app: true, push: true, email: true },
  orders: { in_app: true, push: true, email: true },
  messages: { in_app: false, push: true, email: false },
  ratings: { in_app: true, push: true, email: false },
  moderation: { in_app: true, push: true, email: true },
};
const LOCKED = { moderation: ['in_app', 'email'] };
const BUILT_IN_TYPES = ['offer.created', 'offer.accepted', 'offer.rejected', 'offer.expired', 'offer.withdrawn', 'request.expired',
  'message.created', 'rating.created', 'deal.created', ...['start', 'deliver', 'confirm', 'auto_complete', 'dispute',
    'resolve_complete', 'resolve_cancel', 'cancel', 'operator_cancel'].map((t) => `deal.${t}`)];
const ARABIC = /[\u0600-\u06FF]/;
const FSI = '\u2068';
const PDI = '\u2069';
const clone = (x) => JSON.parse(JSON.stringify(x));
const unique = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;

// A user registered with a locale (people.mjs registers everyone in English).
async function person(srv, name, { locale } = {}) {
  const email = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${crypto.randomUUID()}@example.com`;
  const body = { email, password: 'password for tests', display_name: name };
  if (locale) body.locale = locale;
  const d = assertSuccess(await srv.post('/api/v1/auth/register', body), 201);
  return { id: d.user.id, token: d.access_token, email, name };
}

// A push device for `who`; returns its token.
async function addDevice(srv, who, token = `push-${crypto.randomUUID()}`) {
  const d = assertSuccess(await srv.request('PUT', `/api/v1/devices/inst-${crypto.randomUUID()}`,
    { body: { platform: 'android', push_token: token, app_version: '3.1.0' }, ...auth(who) }));
  assert.equal(d.push_token, token);
  return token;
}

// One page of someone's notifications: { items, meta }.
async function page(who, query = '', srv = s) {
  const res = await srv.get(`/api/v1/notifications${query ? `?${query}` : ''}`, auth(who));
  const items = assertSuccess(res);
  assert.ok(Array.isArray(items), `not an array: ${res.text.slice(0, 300)}`);
  for (const n of items) checkShape(n);
  return { items, meta: res.json.meta };
}

// Every notification of someone, newest first, through the pages.
async function all(who, srv = s, query = '') {
  const out = [];
  let cursor = null;
  for (let pages = 0; pages < 50; pages++) {
    const { items, meta } = await page(who, `limit=50${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, srv);
    out.push(...items);
    cursor = meta.next_cursor;
    if (!cursor) return out;
  }
  assert.fail('the notification pages do not end');
}

const unreadCount = async (who, srv = s) => {
  const d = assertSuccess(await srv.get('/api/v1/notifications/unread-count', auth(who)));
  assert.deepEqual(Object.keys(d), ['unread_count']);
  return d.unread_count;
};
const markRead = (who, id, srv = s) => srv.post(`/api/v1/notifications/${id}/read`, undefined, auth(who));
const readAll = (who, body, srv = s) => srv.post('/api/v1/notifications/read-all', body, auth(who));

// Waits until `who` has notifications matching `pred` (at least `n`); returns them.
async function waitFor(who, what, pred, { n = 1, srv = s, ms = 10_000 } = {}) {
  let hits = [];
  await eventually(what, async () => {
    const list = await all(who, srv);
    hits = list.filter(pred);
    return hits.length >= n || list.map((x) => [x.type, x.data]);
  }, ms);
  return hits;
}

// The admin's view of someone's deliveries on a channel, newest first.
async function deliveries(who, channel, srv = s, adm = admin) {
  const list = assertSuccess(await srv.get(`/api/v1/admin/notification-deliveries?user_id=${who.id}&channel=${channel}&limit=100`, auth(adm)));
  assert.ok(Array.isArray(list));
  for (const d of list) {
    for (const k of DELIVERY_KEYS) assert.ok(k in d, `delivery without ${k}: ${JSON.stringify(d)}`);
    assert.equal(d.user_id, who.id, `the user_id filter let through ${JSON.stringify(d)}`);
    assert.equal(d.channel, channel, `the channel filter let through ${JSON.stringify(d)}`);
    assert.match(d.created_at, RFC3339_UTC);
  }
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i - 1].created_at >= list[i].created_at, `deliveries not newest first: ${JSON.stringify(list.map((d) => d.created_at))}`);
  }
  return list;
}
// Waits for `n` deliveries matching `pred` that the provider has answered
// (a row is 'queued' between its insert and the provider's answer).
async function waitDeliveries(who, channel, what, pred = () => true, { n = 1, srv = s, adm = admin, ms = 10_000, settled = true } = {}) {
  let hits = [];
  await eventually(what, async () => {
    const list = await deliveries(who, channel, srv, adm);
    hits = list.filter((d) => (!settled || d.status !== 'queued') && pred(d));
    return hits.length >= n || list;
  }, ms);
  return hits;
}

function checkShape(n) {
  for (const k of NOTIFICATION_KEYS) assert.ok(k in n, `notification without ${k}: ${JSON.stringify(n)}`);
  assert.match(n.id, NTF_ID);
  assert.equal(typeof n.type, 'string');
  assert.ok(CATEGORIES.includes(n.category), `category ${n.category}`);
  assert.equal(typeof n.title, 'string');
  assert.ok(n.title.length > 0, `empty title: ${JSON.stringify(n)}`);
  assert.equal(typeof n.body, 'string');
  assert.ok(n.dir === 'ltr' || n.dir === 'rtl', `dir ${n.dir}`);
  assert.ok(n.data && typeof n.data === 'object' && !Array.isArray(n.data), `data: ${JSON.stringify(n)}`);
  assert.ok(n.read_at === null || RFC3339_UTC.test(n.read_at), `read_at ${n.read_at}`);
  assert.match(n.created_at, RFC3339_UTC);
  assert.ok(!/\{\{|\}\}/.test(n.title + n.body), `a placeholder was left in: ${JSON.stringify([n.title, n.body])}`);
}

// The first `event` a recorder heard (from index `from`) whose data satisfies `pred`.
async function heard(rec, event, pred, what, from = 0) {
  let hit;
  await eventually(what, () => {
    hit = rec.seen.slice(from).find((e) => e.event === event && pred(e.data));
    return hit !== undefined || rec.seen.map((e) => [e.event, e.data]);
  });
  return hit.data;
}

const dealIdOf = (n) => n.data.deal_id ?? n.data.transaction_id;
const preferences = async (who, srv = s) => assertSuccess(await srv.get('/api/v1/users/me/notification-preferences', auth(who)));
const patchPreferences = (who, body, srv = s) => srv.request('PATCH', '/api/v1/users/me/notification-preferences', { body, ...auth(who) });
const templates = async (srv = s, adm = admin) => assertSuccess(await srv.get('/api/v1/admin/notification-templates', auth(adm)));
const template = async (type, locale, srv = s) => {
  const t = (await templates(srv)).filter((x) => x.type === type && x.locale === locale);
  assert.equal(t.length, 1, `templates for ${type}/${locale}: ${JSON.stringify(t)}`);
  return t[0];
};
const stripIsolates = (v) => v.replace(/^\u2068/, '').replace(/\u2069$/, '');

// The values a template's {{variables}} took in `text`, or null when `text`
// is not the template filled in (its literal text must be there byte for byte).
function filled(tpl, text) {
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const names = [];
  let pattern = '';
  let last = 0;
  for (const m of tpl.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g)) {
    pattern += `${esc(tpl.slice(last, m.index))}([\\s\\S]*?)`;
    names.push(m[1]);
    last = m.index + m[0].length;
  }
  pattern += esc(tpl.slice(last));
  const match = new RegExp(`^${pattern}$`).exec(text);
  if (!match) return null;
  const values = {};
  names.forEach((name, i) => {
    if (name in values) assert.equal(match[i + 1], values[name], `{{${name}}} took two values in ${JSON.stringify(text)}`);
    values[name] = match[i + 1];
  });
  return values;
}
function assertFilled(tpl, n, what) {
  const title = filled(tpl.title, n.title);
  assert.ok(title, `${what}: title ${JSON.stringify(n.title)} is not the ${tpl.locale} template ${JSON.stringify(tpl.title)} filled in`);
  const body = filled(tpl.body, n.body);
  assert.ok(body, `${what}: body ${JSON.stringify(n.body)} is not the ${tpl.locale} template ${JSON.stringify(tpl.body)} filled in`);
  return { ...title, ...body };
}

// A request whose budget takes a 1,250.00 EGP offer.
const cheapRequest = (srv, buyer, over = {}) => postRequest(srv, buyer, { budget_min: 100_000, budget_max: 2_000_000, ...over });

// ---------------------------------------------------------------- an offer

describe('an offer: the buyer hears of it everywhere, the seller nowhere', () => {
  let seller;
  before(async () => { seller = await makeSeller(s, admin, 'first-seller'); });

  test('in-app (list, unread count), realtime notification.created, dev push to the device, dev email to the address; nothing for the seller', async () => {
    const buyer = await register(s, 'first-buyer');
    const buyerToken = await addDevice(s, buyer);
    await addDevice(s, seller);
    const ws = keep(await connectPusher(s, buyer));
    const live = recorder(await subscribe(ws, `private-user.${buyer.id}`));
    const request = await cheapRequest(s, buyer);
    const offer = await makeOffer(s, seller, request.id, { price: 125_000 });

    const [n] = await waitFor(buyer, 'the buyer\'s offer notification', (x) => x.type === 'offer.created');
    assert.deepEqual([n.type, n.category, n.locale, n.dir, n.read_at], ['offer.created', 'offers', 'en', 'ltr', null]);
    assert.equal(n.data.offer_id, offer.id);
    assert.equal(n.data.request_id, request.id);
    assert.ok(!ARABIC.test(n.title + n.body), `an English user got ${JSON.stringify([n.title, n.body])}`);
    const { items, meta } = await page(buyer);
    assert.deepEqual(items, [n]);
    assert.equal(meta.next_cursor, null);
    assert.equal(meta.unread_count, 1);
    assert.equal(await unreadCount(buyer), 1);

    // realtime: the same notification, as it was made
    assert.deepEqual(await live.next('notification.created'), n);

    // dev providers record a push to the device and an email to the address
    const [push] = await waitDeliveries(buyer, 'push', 'a dev push for the buyer');
    assert.deepEqual([push.notification_id, push.provider, push.target, push.status, push.title, push.body],
      [n.id, 'dev', buyerToken, 'recorded', n.title, n.body]);
    const [mail] = await waitDeliveries(buyer, 'email', 'a dev email for the buyer');
    assert.deepEqual([mail.notification_id, mail.provider, mail.target, mail.status, mail.title],
      [n.id, 'dev', buyer.email, 'recorded', n.title]);
    assert.ok(mail.body.includes(n.body), `the email's text ${JSON.stringify(mail.body)} lacks the body ${JSON.stringify(n.body)}`);
    await sleep(300);
    assert.equal((await deliveries(buyer, 'push')).length, 1, 'one push per device');
    assert.equal((await deliveries(buyer, 'email')).length, 1, 'one email');

    // the seller, who made the offer, hears nothing of it
    assert.deepEqual((await page(seller)).items, []);
    assert.equal(await unreadCount(seller), 0);
    assert.deepEqual(await deliveries(seller, 'push'), []);
    assert.deepEqual(await deliveries(seller, 'email'), []);
    assert.equal(live.seen.filter((e) => e.event === 'notification.created').length, 1, JSON.stringify(live.seen.map((e) => e.event)));
  });

  test('the routes need a signed-in user (401); deliveries and templates need an admin (403)', async () => {
    assertError(await s.get('/api/v1/notifications'), 401, 'unauthenticated');
    assertError(await s.get('/api/v1/notifications/unread-count'), 401, 'unauthenticated');
    assertError(await s.post('/api/v1/notifications/read-all'), 401, 'unauthenticated');
    assertError(await s.post('/api/v1/notifications/ntf_00000000000000000000000000/read'), 401, 'unauthenticated');
    assertError(await s.get('/api/v1/users/me/notification-preferences'), 401, 'unauthenticated');
    assertError(await s.request('PATCH', '/api/v1/users/me/notification-preferences', { body: { offers: { email: false } } }), 401, 'unauthenticated');
    assertError(await s.get(`/api/v1/admin/notification-deliveries?user_id=${seller.id}`, auth(seller)), 403, 'forbidden');
    assertError(await s.get(`/api/v1/admin/notification-deliveries?user_id=${seller.id}`), 401, 'unauthenticated');
  });
});

// ---------------------------------------------------------------- reading

describe('reading', () => {
  let seller;
  before(async () => { seller = await makeSeller(s, admin, 'reading-seller'); });

  test('mark one read (idempotent, read_at kept), read-all up_to an id, then all; someone else\'s id is 404; notification.read on the user channel', async () => {
    const buyer = await register(s, 'reader');
    const other = await register(s, 'other-reader');
    for (let i = 0; i < 3; i++) await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    await makeOffer(s, seller, (await postRequest(s, other)).id);
    await waitFor(buyer, 'three notifications', (x) => x.type === 'offer.created', { n: 3 });
    await waitFor(other, 'the other buyer\'s notification', (x) => x.type === 'offer.created');
    const ws = keep(await connectPusher(s, buyer));
    const live = recorder(await subscribe(ws, `private-user.${buyer.id}`));
    const [n3, n2, n1] = (await page(buyer)).items;
    assert.ok(n3.id > n2.id && n2.id > n1.id, 'newest first');
    assert.equal(await unreadCount(buyer), 3);

    // one
    const first = assertSuccess(await markRead(buyer, n1.id));
    assert.match(first.read_at, RFC3339_UTC);
    assert.ok(Math.abs(Date.parse(first.read_at) - Date.now()) < 60_000, `read_at ${first.read_at} is not now`);
    assert.deepEqual({ ...first, read_at: null }, n1, 'only read_at changes');
    const event = await heard(live, 'notification.read', (d) => Array.isArray(d?.ids) && d.ids.includes(n1.id), 'notification.read for the one');
    assert.deepEqual(event, { ids: [n1.id], up_to: null, unread_count: 2 });
    await sleep(20);
    const again = assertSuccess(await markRead(buyer, n1.id));
    assert.equal(again.read_at, first.read_at, 'reading again keeps the first read_at');
    assert.equal(await unreadCount(buyer), 2);
    assert.equal((await page(buyer)).items.find((x) => x.id === n1.id).read_at, first.read_at);

    // not theirs, not there, not an id
    assertError(await markRead(seller, n2.id), 404, 'not_found');
    assertError(await markRead(other, n2.id), 404, 'not_found');
    assertError(await markRead(buyer, 'ntf_00000000000000000000000000'), 404, 'not_found');
    const bad = await markRead(buyer, 'not-an-id');
    assert.ok(bad.status === 404 || bad.status === 400, `a malformed id: ${bad.status} ${bad.text}`);
    assertError(bad, bad.status, bad.json?.error?.code);
    const otherN = (await page(other)).items[0];
    assertError(await markRead(buyer, otherN.id), 404, 'not_found');
    assert.equal(await unreadCount(buyer), 2);
    assert.equal(await unreadCount(other), 1, 'someone else\'s read changed nothing for them');

    // read-all up to n2: n2 only (n1 was read already)
    const upTo = assertSuccess(await readAll(buyer, { up_to: n2.id }));
    assert.deepEqual(upTo, { marked: 1, unread_count: 1 });
    const upToEvent = await heard(live, 'notification.read', (d) => d?.unread_count === 1, 'notification.read with unread_count 1 after read-all up_to');
    assert.deepEqual(upToEvent, { ids: null, up_to: n2.id, unread_count: 1 }, 'other devices mark up to that id, not all');
    let list = (await page(buyer)).items;
    assert.equal(list.find((x) => x.id === n3.id).read_at, null, 'newer than up_to stays unread');
    assert.match(list.find((x) => x.id === n2.id).read_at, RFC3339_UTC);
    assert.equal(list.find((x) => x.id === n1.id).read_at, first.read_at, 'an earlier read_at is kept');
    assert.equal(await unreadCount(buyer), 1);

    // bad bodies change nothing
    assertError(await readAll(buyer, { up_to: 'nonsense' }), 422, 'validation_failed');
    assertError(await readAll(buyer, { up_to: 5 }), 422, 'validation_failed');
    assertError(await readAll(buyer, { everything: true }), 422, 'validation_failed');
    assert.equal(await unreadCount(buyer), 1);

    // all
    const from = live.seen.length;
    assert.deepEqual(assertSuccess(await readAll(buyer)), { marked: 1, unread_count: 0 });
    assert.deepEqual(await heard(live, 'notification.read', (d) => d?.ids === null, 'notification.read for all', from), { ids: null, up_to: null, unread_count: 0 });
    assert.deepEqual(assertSuccess(await readAll(buyer, {})), { marked: 0, unread_count: 0 });
    list = (await page(buyer)).items;
    assert.ok(list.every((x) => x.read_at !== null), JSON.stringify(list));
    const { meta } = await page(buyer);
    assert.equal(meta.unread_count, 0);
    assert.equal(await unreadCount(buyer), 0);
    assert.equal(await unreadCount(other), 1, 'read-all is the caller\'s own');
    assert.equal((await page(other)).items[0].read_at, null);
  });

  test('pages of 3 over 7 notifications, newest first, each once; unread_only=true', async () => {
    const buyer = await register(s, 'pager');
    const offers = [];
    for (let i = 0; i < 7; i++) offers.push((await makeOffer(s, seller, (await postRequest(s, buyer)).id)).id);
    await waitFor(buyer, 'seven notifications', () => true, { n: 7 });
    const everything = (await page(buyer, 'limit=50')).items;
    assert.equal(everything.length, 7);
    assert.deepEqual(everything.map((n) => n.data.offer_id).sort(), [...offers].sort());

    const seen = [];
    const sizes = [];
    let cursor = null;
    for (let i = 0; i < 10; i++) {
      const { items, meta } = await page(buyer, `limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      sizes.push(items.length);
      seen.push(...items);
      assert.equal(meta.unread_count, 7);
      cursor = meta.next_cursor;
      if (cursor === null) break;
      assert.equal(typeof cursor, 'string');
    }
    assert.deepEqual(sizes, [3, 3, 1]);
    assert.deepEqual(seen, everything, 'the pages are the whole list, in order, each once');
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i - 1].id > seen[i].id, `ids not newest first: ${seen.map((n) => n.id)}`);
      assert.ok(seen[i - 1].created_at >= seen[i].created_at, `created_at not newest first: ${seen.map((n) => n.created_at)}`);
    }

    // unread only: two read, five left, in pages of 2
    assertSuccess(await markRead(buyer, everything[1].id));
    assertSuccess(await markRead(buyer, everything[4].id));
    const unread = [];
    cursor = null;
    for (let i = 0; i < 10; i++) {
      const { items, meta } = await page(buyer, `unread_only=true&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      unread.push(...items);
      assert.equal(meta.unread_count, 5);
      cursor = meta.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(unread.map((n) => n.id), everything.filter((_, i) => i !== 1 && i !== 4).map((n) => n.id));
    assert.ok(unread.every((n) => n.read_at === null));
    assert.equal((await page(buyer, 'unread_only=false')).items.length, 7);

    // bad paging
    for (const q of ['limit=0', 'limit=abc', 'cursor=nonsense']) {
      assertError(await s.get(`/api/v1/notifications?${q}`, auth(buyer)), 422, 'validation_failed');
    }
  });
});

// ---------------------------------------------------------------- preferences

describe('preferences', () => {
  let seller;
  before(async () => { seller = await makeSeller(s, admin, 'prefs-seller'); });

  test('defaults; PATCH one switch; unknown categories and channels, non-booleans → 422 and nothing changes; locked ones → 422 preference_locked', async () => {
    const who = await register(s, 'prefs');
    const bystander = await register(s, 'prefs-bystander');
    assert.deepEqual(await preferences(who), { preferences: DEFAULT_PREFERENCES, locked: LOCKED });

    const expected = clone(DEFAULT_PREFERENCES);
    expected.offers.email = false;
    assert.deepEqual(assertSuccess(await patchPreferences(who, { offers: { email: false } })), { preferences: expected, locked: LOCKED });
    assert.deepEqual(await preferences(who), { preferences: expected, locked: LOCKED });
    expected.requests.email = true;
    expected.messages.in_app = true;
    expected.ratings.push = false;
    assert.deepEqual(assertSuccess(await patchPreferences(who, { requests: { email: true }, messages: { in_app: true }, ratings: { push: false } })),
      { preferences: expected, locked: LOCKED });

    const refused = [];
    const invalid = [
      [{ nope: { email: false } }, 'nope'],
      [{ offers: { sms: true } }, 'sms'],
      [{ offers: { email: 'no' } }, 'email'],
      [{ offers: { email: 0 } }, 'email'],
      [{ offers: { email: null } }, 'email'],
      [{ offers: true }, 'offers'],
      [{ offers: { email: true }, nope: { push: true } }, 'nope'],
      [{ offers: { email: true, push: 'yes' } }, 'push'],
    ];
    for (const [body, field] of invalid) {
      const res = await patchPreferences(who, body);
      if (res.status !== 422 || res.json?.error?.code !== 'validation_failed') {
        refused.push(`${JSON.stringify(body)} → ${res.status} ${res.text.slice(0, 200)}`);
        continue;
      }
      const e = assertError(res, 422, 'validation_failed');
      if (!JSON.stringify(e.details ?? {}).includes(field)) refused.push(`${JSON.stringify(body)}: details do not name ${field}: ${JSON.stringify(e.details)}`);
    }
    assert.deepEqual(refused, []);
    assert.deepEqual(await preferences(who), { preferences: expected, locked: LOCKED }, 'refused PATCHes changed nothing');

    // locked: moderation in-app and email cannot be turned off, not even beside an allowed change
    for (const body of [{ moderation: { email: false } }, { moderation: { in_app: false } }, { offers: { in_app: false }, moderation: { email: false } }]) {
      assertError(await patchPreferences(who, body), 422, 'preference_locked');
    }
    assert.deepEqual(await preferences(who), { preferences: expected, locked: LOCKED }, 'refused PATCHes changed nothing');
    // …but moderation push can, and a locked one may be "turned on"
    expected.moderation.push = false;
    assert.deepEqual(assertSuccess(await patchPreferences(who, { moderation: { push: false, email: true } })), { preferences: expected, locked: LOCKED });
    // each user's own
    assert.deepEqual(await preferences(bystander), { preferences: DEFAULT_PREFERENCES, locked: LOCKED });
  });

  test('push off for offers: no push for the next offer, in-app and email still; in-app off: no entry, push still', async () => {
    const buyer = await register(s, 'prefs-channels');
    await addDevice(s, buyer);
    assertSuccess(await patchPreferences(buyer, { offers: { push: false } }));
    const o1 = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    const [n1] = await waitFor(buyer, 'the in-app notification', (x) => x.data.offer_id === o1.id);
    const [mail] = await waitDeliveries(buyer, 'email', 'the email', (d) => d.notification_id === n1.id);
    assert.equal(mail.target, buyer.email);
    await sleep(1000);
    assert.deepEqual(await deliveries(buyer, 'push'), [], 'a push was made with offers.push off');

    assertSuccess(await patchPreferences(buyer, { offers: { push: true, in_app: false, email: false } }));
    const o2 = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    const [push] = await waitDeliveries(buyer, 'push', 'the push for the second offer');
    assert.notEqual(push.notification_id, n1.id);
    await sleep(1000);
    const list = await all(buyer);
    assert.deepEqual(list.map((x) => x.id), [n1.id], `in-app off, yet listed: ${JSON.stringify(list.filter((x) => x.data.offer_id === o2.id))}`);
    assert.equal(await unreadCount(buyer), 1);
    assert.equal((await deliveries(buyer, 'email')).length, 1, 'email off, yet sent');
    assert.equal((await deliveries(buyer, 'push')).length, 1);
  });
});

// ---------------------------------------------------------------- who hears of what

describe('acceptance and deal steps', () => {
  test('accepting one of two offers: its seller gets exactly one notification, the other seller offer.rejected, the buyer (who acted) nothing', async () => {
    const buyer = await register(s, 'accepting-buyer');
    const winner = await makeSeller(s, admin, 'winner');
    const loser = await makeSeller(s, admin, 'loser');
    const request = await postRequest(s, buyer);
    const good = await makeOffer(s, winner, request.id);
    const other = await makeOffer(s, loser, request.id);
    await waitFor(buyer, 'two offers', (x) => x.type === 'offer.created', { n: 2 });
    const deal = assertSuccess(await s.post(`/api/v1/offers/${good.id}/accept`, undefined, auth(buyer)));

    // (waits for offer.rejected or a variant of it; the type is checked last, so that the rest is checked too)
    const isRejection = (x) => x.type === 'offer.rejected' || x.type.startsWith('offer.rejected.');
    const [rejected] = await waitFor(loser, 'offer.rejected for the other seller', isRejection);
    assert.deepEqual([rejected.category, rejected.data.offer_id, rejected.data.request_id], ['offers', other.id, request.id]);
    const [won] = await waitFor(winner, 'the accepted seller\'s notification', () => true);
    assert.ok(['offer.accepted', 'deal.created'].includes(won.type), `the accepted seller got ${won.type}`);
    assert.ok(won.data.offer_id === good.id || dealIdOf(won) === deal.id, JSON.stringify(won.data));
    await sleep(1000);
    const winnerList = await all(winner);
    assert.equal(winnerList.length, 1, `the accepted seller got ${JSON.stringify(winnerList.map((x) => x.type))}`);
    assert.equal((await all(loser)).length, 1, 'the other seller hears once');
    assert.deepEqual((await all(buyer)).map((x) => x.type), ['offer.created', 'offer.created'], 'the buyer accepted: no news of their own step');

    // a cancelled request: its pending offers' sellers hear offer.rejected
    const request2 = await postRequest(s, buyer);
    const pending = await makeOffer(s, loser, request2.id);
    assertSuccess(await s.post(`/api/v1/requests/${request2.id}/cancel`, { reason: 'bought elsewhere' }, auth(buyer)));
    const [cancelled] = await waitFor(loser, 'offer.rejected after the request was cancelled', (x) => isRejection(x) && x.data.offer_id === pending.id);
    assert.deepEqual([cancelled.category, cancelled.data.request_id], ['offers', request2.id]);
    assert.deepEqual([rejected.type, cancelled.type], ['offer.rejected', 'offer.rejected'], 'the notification type of a rejected offer');
  });

  test('deal steps notify the party named in the process, never the one who took the step', async () => {
    const buyer = await register(s, 'deal-buyer');
    const seller = await makeSeller(s, admin, 'deal-seller');
    const offer = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    await waitFor(buyer, 'the buyer hears of the offer', (x) => x.type === 'offer.created');
    const deal = assertSuccess(await s.post(`/api/v1/offers/${offer.id}/accept`, undefined, auth(buyer)));
    await waitFor(seller, 'the seller hears of the acceptance', () => true);
    await payDeal(s, buyer, deal);
    const [paid] = await waitFor(seller, 'deal.pay for the seller', (x) => x.type === 'deal.pay');
    assert.deepEqual([paid.category, dealIdOf(paid)], ['deals', deal.id]);
    await sleep(300);
    const sellerBefore = (await all(seller)).length;
    const buyerBefore = (await all(buyer)).length;

    const step = async (name, who) => {
      const t = assertSuccess(await s.post(`/api/v1/transactions/${deal.id}/transitions/${name}`, undefined, auth(who)));
      assert.equal(t.id, deal.id);
    };
    await step('start', seller);
    const [started] = await waitFor(buyer, 'deal.start for the buyer', (x) => x.type === 'deal.start');
    assert.deepEqual([started.category, dealIdOf(started)], ['deals', deal.id]);
    await step('deliver', seller);
    const [delivered] = await waitFor(buyer, 'deal.deliver for the buyer', (x) => x.type === 'deal.deliver');
    assert.equal(dealIdOf(delivered), deal.id);
    await step('confirm', buyer);
    const [confirmed] = await waitFor(seller, 'deal.confirm for the seller', (x) => x.type === 'deal.confirm');
    assert.deepEqual([confirmed.category, dealIdOf(confirmed)], ['deals', deal.id]);
    await sleep(1000);
    assert.deepEqual((await all(seller)).slice(0, -sellerBefore || undefined).map((x) => x.type), ['deal.confirm'],
      'the seller hears only of the buyer\'s step');
    assert.deepEqual((await all(buyer)).slice(0, -buyerBefore || undefined).map((x) => x.type), ['deal.deliver', 'deal.start'],
      'the buyer hears only of the seller\'s steps');
  });
});

// ---------------------------------------------------------------- Arabic

describe('Arabic', () => {
  test('a buyer with locale ar gets the Arabic template, byte for byte, dir rtl, Latin names in isolates; after switching to en, English', async () => {
    const buyer = await person(s, 'سلمى', { locale: 'ar' });
    const seller = await makeSeller(s, admin, 'Karim');
    const token = await addDevice(s, buyer);
    const request = await postRequest(s, buyer, { title: 'Used iPhone 13, 128 GB' });
    const offer = await makeOffer(s, seller, request.id);
    const [n] = await waitFor(buyer, 'the Arabic notification', (x) => x.data.offer_id === offer.id);
    assert.deepEqual([n.type, n.locale, n.dir], ['offer.created', 'ar', 'rtl']);
    const ar = await template('offer.created', 'ar');
    assert.equal(ar.source, 'built_in');
    assert.match(ar.title + ar.body, ARABIC, 'the built-in Arabic template is not Arabic');
    assert.match(n.title + n.body, ARABIC);
    const values = assertFilled(ar, n, 'Arabic offer.created');
    const text = n.title + n.body;
    for (const [name, v] of Object.entries(values)) {
      if (/[A-Za-z]/.test(v)) {
        const core = stripIsolates(v);
        assert.ok(text.includes(`${FSI}${core}${PDI}`), `{{${name}}} = ${JSON.stringify(v)} is not wrapped in U+2068…U+2069 in ${JSON.stringify(text)}`);
      }
    }
    assert.ok(text.includes(`${FSI}Karim${PDI}`) || text.includes(`${FSI}${request.title}${PDI}`),
      `neither the seller's name nor the request's title, isolated, in ${JSON.stringify(text)}`);
    assert.ok(!text.includes(`${FSI}${FSI}`), 'doubled isolates');
    const [push] = await waitDeliveries(buyer, 'push', 'the Arabic push', (d) => d.notification_id === n.id);
    assert.deepEqual([push.target, push.title, push.body], [token, n.title, n.body]);

    // the locale at the time of the notification decides
    assertSuccess(await s.request('PUT', '/api/v1/users/me', { body: { locale: 'en' }, ...auth(buyer) }));
    const offer2 = await makeOffer(s, seller, (await postRequest(s, buyer, { title: 'Galaxy S23' })).id);
    const [n2] = await waitFor(buyer, 'the English notification', (x) => x.data.offer_id === offer2.id);
    assert.deepEqual([n2.locale, n2.dir], ['en', 'ltr']);
    assertFilled(await template('offer.created', 'en'), n2, 'English offer.created');
    assert.ok(!ARABIC.test((n2.title + n2.body).replaceAll('سلمى', '')), `English text: ${JSON.stringify([n2.title, n2.body])}`);
    assert.equal((await all(buyer)).find((x) => x.id === n.id).title, n.title, 'a made notification keeps its text');
  });
});

// ---------------------------------------------------------------- templates

describe('templates (admin)', () => {
  test('the built-ins, in en and ar, each placeholder a declared variable', async () => {
    const list = await templates();
    const keys = list.map((t) => `${t.type}/${t.locale}`);
    assert.equal(new Set(keys).size, keys.length, 'one template per type and locale');
    const missing = BUILT_IN_TYPES.flatMap((t) => ['en', 'ar'].map((l) => `${t}/${l}`)).filter((k) => !keys.includes(k));
    assert.deepEqual(missing, []);
    const problems = [];
    const categoryOf = (type) => ({ offer: 'offers', deal: 'deals', message: 'messages', rating: 'ratings', request: 'requests' })[type.split('.')[0]];
    for (const t of list) {
      for (const k of ['type', 'locale', 'category', 'title', 'body', 'variables', 'source', 'updated_at']) if (!(k in t)) problems.push(`${t.type}/${t.locale}: no ${k}`);
      if (t.source !== 'built_in' || t.updated_at !== null) problems.push(`${t.type}/${t.locale}: ${t.source} ${t.updated_at}`);
      if (!Array.isArray(t.variables) || !t.variables.every((v) => typeof v === 'string')) { problems.push(`${t.type}/${t.locale}: variables ${JSON.stringify(t.variables)}`); continue; }
      for (const m of `${t.title}\n${t.body}`.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
        if (!t.variables.includes(m[1])) problems.push(`${t.type}/${t.locale}: {{${m[1]}}} is not among ${JSON.stringify(t.variables)}`);
      }
      const literal = `${t.title}\n${t.body}`.replace(/\{\{[^}]*\}\}/g, '');
      if (t.locale === 'ar' && /\p{L}/u.test(literal) && !ARABIC.test(literal)) problems.push(`${t.type}/ar is not Arabic: ${JSON.stringify([t.title, t.body])}`);
      if (t.locale === 'en' && ARABIC.test(t.title + t.body)) problems.push(`${t.type}/en is Arabic: ${t.title}`);
      if (BUILT_IN_TYPES.includes(t.type) && t.category !== categoryOf(t.type)) problems.push(`${t.type}: category ${t.category}`);
    }
    assert.deepEqual(problems, []);
    assertError(await s.get('/api/v1/admin/notification-templates', auth(await register(s, 'not-admin'))), 403, 'forbidden');
    assertError(await s.get('/api/v1/admin/notification-templates'), 401, 'unauthenticated');
  });

  test('a custom en template for offer.created is used for the next notification (money from minor units); bad ones 422; unknown type 404; non-admin 403; DELETE restores the built-in', async () => {
    const seller = await makeSeller(s, admin, 'Nadia');
    const buyer = await register(s, 'templated');
    const arBuyer = await person(s, 'يوسف', { locale: 'ar' });
    const builtIn = await template('offer.created', 'en');
    const builtInAr = await template('offer.created', 'ar');
    const path = '/api/v1/admin/notification-templates/offer.created/en';
    const vars = builtIn.variables;
    assert.ok(vars.length > 0, 'offer.created has no variables');
    const custom = { title: `Custom: new offer ${unique('t')}`, body: vars.map((v) => `${v}=<{{${v}}}>`).join('; ') };
    try {
      const put = assertSuccess(await s.request('PUT', path, { body: custom, ...auth(admin) }));
      assert.deepEqual([put.type, put.locale, put.source, put.title, put.body, put.category], ['offer.created', 'en', 'custom', custom.title, custom.body, builtIn.category]);
      assert.deepEqual(put.variables, vars);
      assert.match(put.updated_at, RFC3339_UTC);
      assert.deepEqual(await template('offer.created', 'en'), put);
      assert.equal((await template('offer.created', 'ar')).source, 'built_in', 'the Arabic one is its own');

      const request = await cheapRequest(s, buyer);
      const offer = await makeOffer(s, seller, request.id, { price: 125_000 });
      const [n] = await waitFor(buyer, 'a notification from the custom template', (x) => x.data.offer_id === offer.id);
      assert.equal(n.title, custom.title);
      const values = filled(custom.body, n.body);
      assert.ok(values, `body ${JSON.stringify(n.body)} is not ${JSON.stringify(custom.body)} filled in`);
      const plain = Object.values(values).map(stripIsolates);
      assert.ok(plain.includes('1,250.00 EGP'), `no variable is the price 125000 EGP as 1,250.00 EGP: ${JSON.stringify(values)}`);
      assert.ok(plain.includes('Nadia'), `no variable is the seller's name: ${JSON.stringify(values)}`);
      const arOffer = await makeOffer(s, seller, (await postRequest(s, arBuyer)).id);
      const [arN] = await waitFor(arBuyer, 'the Arabic buyer\'s notification', (x) => x.data.offer_id === arOffer.id);
      assertFilled(builtInAr, arN, 'Arabic offer.created beside a custom English one');

      // refused: an unknown variable, unbalanced braces, no title; unknown type; not an admin
      assertError(await s.request('PUT', path, { body: { title: 'Hi {{not_a_variable_here}}', body: 'x' }, ...auth(admin) }), 422, 'unknown_template_variable');
      for (const bad of [{ title: 'Hi {{seller', body: 'x' }, { title: 'Hi', body: 'price }} here' }, { body: 'x' }, { title: 'x' }, { title: 7, body: 'x' }]) {
        assertError(await s.request('PUT', path, { body: bad, ...auth(admin) }), 422, 'validation_failed');
      }
      assertError(await s.request('PUT', '/api/v1/admin/notification-templates/offer.exploded/en', { body: { title: 'x', body: 'y' }, ...auth(admin) }), 404, 'not_found');
      assertError(await s.request('PUT', path, { body: { title: 'mine', body: 'mine' }, ...auth(seller) }), 403, 'forbidden');
      assertError(await s.request('DELETE', path, auth(seller)), 403, 'forbidden');
      assertError(await s.request('PUT', path, { body: { title: 'mine', body: 'mine' } }), 401, 'unauthenticated');
      assert.deepEqual(await template('offer.created', 'en'), put, 'refused changes left the custom template');
    } finally {
      const back = await s.request('DELETE', path, auth(admin));
      const restored = assertSuccess(back);
      assert.deepEqual(restored, builtIn, 'DELETE answers the built-in again');
    }
    assert.deepEqual(await template('offer.created', 'en'), builtIn);
    const offer = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    const [n] = await waitFor(buyer, 'a notification from the built-in again', (x) => x.data.offer_id === offer.id);
    assertFilled(builtIn, n, 'offer.created after DELETE');
    assert.notEqual(n.title, custom.title);
  });
});

// ---------------------------------------------------------------- chat

describe('chat messages', () => {
  test('no push while the recipient has a socket on their user channel or the conversation\'s presence channel; a push once they are away; never to the sender', async () => {
    const buyer = await register(s, 'chat-buyer');
    const seller = await makeSeller(s, admin, 'chat-seller');
    const buyerToken = await addDevice(s, buyer);
    const sellerToken = await addDevice(s, seller);
    const offer = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    await waitDeliveries(buyer, 'push', 'the buyer\'s push for the offer');
    const conv = assertSuccess(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id }, auth(buyer)), 201);
    const say = async (who, body) => assertSuccess(await s.post(`/api/v1/conversations/${conv.id}/messages`, { body }, auth(who)), 201);

    // 1. the seller is online on their user channel
    const onUser = keep(await connectPusher(s, seller));
    await subscribe(onUser, `private-user.${seller.id}`);
    await say(buyer, 'Is it still available?');
    await sleep(1500);
    assert.deepEqual(await deliveries(seller, 'push'), [], 'a push to a seller with an open socket on private-user');
    // 2. only in the conversation's presence channel
    const inRoom = keep(await connectPusher(s, seller));
    await subscribe(inRoom, conv.presence_channel);
    onUser.disconnect();
    await sleep(700);
    await say(buyer, 'Hello? Are you there?');
    await sleep(1500);
    assert.deepEqual(await deliveries(seller, 'push'), [], 'a push to a seller in the conversation\'s presence channel');
    // 3. away: a push to the seller's device
    inRoom.disconnect();
    await sleep(700);
    await say(buyer, 'I will take it, when can you deliver?');
    const [push] = await waitDeliveries(seller, 'push', 'a push to the seller once away');
    assert.deepEqual([push.target, push.provider, push.status], [sellerToken, 'dev', 'recorded']);
    await sleep(500);
    assert.equal((await deliveries(seller, 'push')).length, 1, 'one push, for the message sent while away');
    // messages are not in-app by default
    assert.deepEqual((await all(seller)).map((x) => x.type), []);

    // the other way: the seller writes to the away buyer; the sender gets nothing
    await say(seller, 'Tomorrow morning');
    const buyerPushes = await waitDeliveries(buyer, 'push', 'a push to the buyer for the seller\'s message', () => true, { n: 2 });
    assert.equal(buyerPushes[0].target, buyerToken);
    await sleep(500);
    assert.equal((await deliveries(seller, 'push')).length, 1, 'the sender got a push for their own message');
    assert.equal((await deliveries(buyer, 'push')).length, 2, 'the buyer: the offer and the seller\'s one message, none for their own three');
    assert.deepEqual((await all(buyer)).map((x) => x.type), ['offer.created']);

    // with messages in-app turned on, a message is listed too, naming its conversation and message
    assertSuccess(await patchPreferences(buyer, { messages: { in_app: true } }));
    const m = await say(seller, 'Or this evening if you prefer');
    const [listed] = await waitFor(buyer, 'an in-app message notification', (x) => x.type === 'message.created');
    assert.equal(listed.category, 'messages');
    assert.deepEqual([listed.data.conversation_id, listed.data.message_id], [conv.id, m.id], `the data of a message notification: ${JSON.stringify(listed.data)}`);
  });
});

// ---------------------------------------------------------------- FCM

describe('FCM HTTP v1 against a local fake', () => {
  let fcm, f, fAdmin, fSeller;
  before(async () => {
    // The credentials file names a token_uri nobody listens on: --fcm-token-url must win.
    fcm = await startFakeFcm({ projectId: 'souq-push-test', fileTokenUri: 'http://127.0.0.1:9/token' });
    f = await startSouq({ args: ['--push-provider', 'fcm', '--fcm-credentials', fcm.credentialsFile,
      '--fcm-base-url', fcm.baseUrl, '--fcm-token-url', fcm.tokenUrl] });
    fAdmin = await makeAdmin(f);
    fSeller = await makeSeller(f, fAdmin, 'fcm-seller');
  });
  after(async () => { await f?.stop(); await fcm?.close(); });

  test('a push per device with the notification; UNREGISTERED removes the device (invalid_token); 503 is retried until sent; one access token for all', async () => {
    const buyer = await register(f, 'fcm-buyer');
    const good = await addDevice(f, buyer, `fcm-good-${crypto.randomUUID()}`);
    const gone = await addDevice(f, buyer, `fcm-gone-${crypto.randomUUID()}`);
    fcm.setResponse(gone, 'unregistered');
    const offer = await makeOffer(f, fSeller, (await postRequest(f, buyer)).id);
    const [n] = await waitFor(buyer, 'the notification', (x) => x.data.offer_id === offer.id, { srv: f });

    await eventually('a push to the good token', () => fcm.sendsTo(good).length === 1 || fcm.sends.map((x) => [x.token, x.status]), 15_000);
    const sent = fcm.sendsTo(good)[0];
    assert.equal(sent.message.token, good);
    assert.deepEqual({ title: sent.message.notification?.title, body: sent.message.notification?.body }, { title: n.title, body: n.body });
    assert.equal(sent.message.data?.notification_id, n.id);
    assert.equal(sent.message.data?.type, 'offer.created');
    assert.equal(fcm.tokens.length, 1);
    assert.equal(sent.authorization, `Bearer ${fcm.tokens[0]}`);
    const [tokenRequest] = fcm.tokenRequests;
    assert.ok(tokenRequest.ok, `the token request was refused: ${tokenRequest.error}`);
    assert.equal(tokenRequest.claims.scope, FCM_SCOPE);

    const [ok] = await waitDeliveries(buyer, 'push', 'the delivery to the good token is sent', (d) => d.target === good && d.status === 'sent', { srv: f, adm: fAdmin });
    assert.deepEqual([ok.notification_id, ok.provider, ok.provider_message_id, ok.title, ok.body], [n.id, 'fcm', sent.name, n.title, n.body]);
    assert.match(ok.sent_at, RFC3339_UTC);
    const [invalid] = await waitDeliveries(buyer, 'push', 'the delivery to the unregistered token', (d) => d.target === gone && d.status === 'invalid_token', { srv: f, adm: fAdmin });
    assert.equal(invalid.provider, 'fcm');
    await eventually('the unregistered device is removed', async () => {
      const tokens = assertSuccess(await f.get('/api/v1/devices', auth(buyer))).map((d) => d.push_token);
      return (tokens.length === 1 && tokens[0] === good) || tokens;
    });
    assert.equal(fcm.sends.filter((x) => x.token === gone).length, 1);

    // the next offer: the good device only, same access token
    const offer2 = await makeOffer(f, fSeller, (await postRequest(f, buyer)).id);
    const [n2] = await waitFor(buyer, 'the second notification', (x) => x.data.offer_id === offer2.id, { srv: f });
    await eventually('a second push to the good token', () => fcm.sendsTo(good).length === 2 || fcm.sends.map((x) => [x.token, x.status]), 15_000);
    assert.equal(fcm.sendsTo(good)[1].message.data?.notification_id, n2.id);
    assert.equal(fcm.sends.filter((x) => x.token === gone).length, 1, 'a removed device is not pushed to again');

    // 503 twice, then accepted: one delivery, sent
    const busyBuyer = await register(f, 'fcm-busy');
    const busy = await addDevice(f, busyBuyer, `fcm-busy-${crypto.randomUUID()}`);
    fcm.setResponse(busy, { unavailable: 2, retryAfter: 1 });
    const offer3 = await makeOffer(f, fSeller, (await postRequest(f, busyBuyer)).id);
    const [n3] = await waitFor(busyBuyer, 'the busy buyer\'s notification', (x) => x.data.offer_id === offer3.id, { srv: f });
    await eventually('the push goes through after two 503s', () => fcm.sendsTo(busy).length === 1 || fcm.sends.filter((x) => x.token === busy).map((x) => x.status), 30_000);
    assert.deepEqual(fcm.sends.filter((x) => x.token === busy).map((x) => x.status), [503, 503, 200]);
    assert.equal(fcm.sendsTo(busy)[0].message.data?.notification_id, n3.id);
    const [retried] = await waitDeliveries(busyBuyer, 'push', 'the retried delivery is sent', (d) => d.status === 'sent', { srv: f, adm: fAdmin });
    assert.equal(retried.provider_message_id, fcm.sendsTo(busy)[0].name);
    assert.equal((await deliveries(busyBuyer, 'push', f, fAdmin)).length, 1, 'one delivery, however many attempts');

    // a chat message to the (away) buyer: its ids in the data, as strings
    const conv = assertSuccess(await f.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id }, auth(buyer)), 201);
    const msg = assertSuccess(await f.post(`/api/v1/conversations/${conv.id}/messages`, { body: 'Can deliver today' }, auth(fSeller)), 201);
    await eventually('a push for the chat message', () => fcm.sendsTo(good).length === 3 || fcm.sends.map((x) => [x.token, x.status]), 15_000);
    const chat = fcm.sendsTo(good)[2].message;
    assert.equal(chat.data?.type, 'message.created');
    assert.equal(typeof chat.data?.notification_id, 'string');
    assert.ok(chat.notification?.title && chat.notification?.body, JSON.stringify(chat.notification));

    // every send carried the one access token; it was fetched once
    assert.deepEqual(fcm.tokenRequests.map((t) => [t.ok, t.error]), [[true, null]]);
    assert.ok(fcm.sends.every((x) => x.authorization === `Bearer ${fcm.tokens[0]}`), JSON.stringify(fcm.sends.map((x) => x.authorization)));
    assert.ok(fcm.sends.every((x) => x.status !== 400 && x.status !== 401), `refused sends: ${JSON.stringify(fcm.sends.filter((x) => x.status === 400 || x.status === 401))}`);
    // (last, so that a failure here hides nothing above) the push carries the notification's ids:
    // an offer push its offer and request, a message push its conversation and message
    assert.deepEqual([sent.message.data?.offer_id, sent.message.data?.request_id], [offer.id, n.data.request_id], `the data of an offer push: ${JSON.stringify(sent.message.data)}`);
    assert.deepEqual([chat.data?.conversation_id, chat.data?.message_id], [conv.id, msg.id], `the data of a message push: ${JSON.stringify(chat.data)}`);
  });
});

// ---------------------------------------------------------------- SMTP

describe('SMTP against a local sink', () => {
  let sink, m, mAdmin, mSeller;
  const FROM = 'Souq <no-reply@souq.localhost>';
  before(async () => {
    sink = await startSmtpSink();
    m = await startSouq({ args: ['--email-provider', 'smtp', '--smtp-url', sink.url, '--email-from', FROM,
      '--otp-per-ip-per-hour', '1000'] });
    mAdmin = await makeAdmin(m);
    mSeller = await makeSeller(m, mAdmin, 'mail-seller');
  });
  after(async () => { await m?.stop(); await sink?.close(); });

  test('an email to the buyer from --email-from, Subject the title (Arabic decoded), text with the body; preference off or no address: none', async () => {
    const buyer = await register(m, 'mail-buyer');
    const arBuyer = await person(m, 'ليلى', { locale: 'ar' });
    const o1 = await makeOffer(m, mSeller, (await postRequest(m, buyer)).id);
    const o2 = await makeOffer(m, mSeller, (await postRequest(m, arBuyer, { title: 'Used iPhone 13, 128 GB' })).id);
    const [n1] = await waitFor(buyer, 'the English notification', (x) => x.data.offer_id === o1.id, { srv: m });
    const [n2] = await waitFor(arBuyer, 'the Arabic notification', (x) => x.data.offer_id === o2.id, { srv: m });

    await eventually('the English email arrives', () => sink.to(buyer.email).length === 1 || sink.messages.map((x) => x.to), 15_000);
    const [en] = sink.to(buyer.email);
    assert.deepEqual(en.to, [buyer.email]);
    assert.deepEqual(en.envelope.to, [buyer.email]);
    assert.deepEqual([en.from, en.fromName], ['no-reply@souq.localhost', 'Souq']);
    assert.equal(en.subject, n1.title);
    assert.ok(en.text?.includes(n1.body), `the text ${JSON.stringify(en.text)} lacks the body ${JSON.stringify(n1.body)}`);
    const [d1] = await waitDeliveries(buyer, 'email', 'the English delivery is sent', (d) => d.status === 'sent', { srv: m, adm: mAdmin });
    assert.deepEqual([d1.notification_id, d1.provider, d1.target], [n1.id, 'smtp', buyer.email]);
    assert.match(d1.sent_at, RFC3339_UTC);

    await eventually('the Arabic email arrives', () => sink.to(arBuyer.email).length === 1 || sink.messages.map((x) => x.to), 15_000);
    const [ar] = sink.to(arBuyer.email);
    assert.match(n2.title, ARABIC);
    assert.equal(ar.subject, n2.title, 'the Arabic subject, decoded');
    assert.ok(ar.text?.includes(n2.body), `the text ${JSON.stringify(ar.text)} lacks the body ${JSON.stringify(n2.body)}`);
    assert.deepEqual([ar.from, ar.fromName], ['no-reply@souq.localhost', 'Souq']);

    // email off for offers: in-app and push still, no email
    assertSuccess(await patchPreferences(buyer, { offers: { email: false } }, m));
    await addDevice(m, buyer);
    const o3 = await makeOffer(m, mSeller, (await postRequest(m, buyer)).id);
    const [n3] = await waitFor(buyer, 'the third notification', (x) => x.data.offer_id === o3.id, { srv: m });
    await waitDeliveries(buyer, 'push', 'the push for the third offer', (d) => d.notification_id === n3.id, { srv: m, adm: mAdmin });
    await sleep(1000);
    assert.equal(sink.to(buyer.email).length, 1, 'an email with offers.email off');
    assert.equal((await deliveries(buyer, 'email', m, mAdmin)).length, 1);

    // a user without an email address (signed up by phone)
    const phone = `+2010${String(Date.now() % 100_000_000).padStart(8, '0')}`;
    assertSuccess(await m.post('/api/v1/auth/otp/request', { phone }), 202);
    let code = null;
    await eventually('the OTP is recorded', async () => {
      const msgs = assertSuccess(await m.get(`/api/v1/dev/sms?to=${encodeURIComponent(phone)}`));
      const otp = msgs.find((x) => x.purpose === 'otp' && x.status === 'recorded');
      code = otp?.body.match(/\b(\d{6})\b/)?.[1] ?? null;
      return code !== null || msgs;
    });
    const v = assertSuccess(await m.post('/api/v1/auth/otp/verify', { phone, code, display_name: 'Phone Buyer' }));
    assert.equal(v.user.email ?? null, null);
    const phoneBuyer = { id: v.user.id, token: v.access_token };
    await addDevice(m, phoneBuyer);
    const before = sink.messages.length;
    const o4 = await makeOffer(m, mSeller, (await postRequest(m, phoneBuyer)).id);
    const [n4] = await waitFor(phoneBuyer, 'the phone buyer\'s notification', (x) => x.data.offer_id === o4.id, { srv: m });
    await waitDeliveries(phoneBuyer, 'push', 'the phone buyer\'s push', (d) => d.notification_id === n4.id, { srv: m, adm: mAdmin });
    await sleep(1000);
    assert.deepEqual(await deliveries(phoneBuyer, 'email', m, mAdmin), []);
    assert.equal(sink.messages.length, before, 'an email was sent for a user without an address');
    assert.deepEqual(sink.errors, []);
  });
});

// ---------------------------------------------------------------- races

describe('races', () => {
  test('30 concurrent offers → 30 notifications, unread 30; 20 concurrent mark-one and read-all → unread 0, every one read once', async () => {
    const buyer = await register(s, 'popular');
    const sellers = await Promise.all(Array.from({ length: 30 }, (_, i) => makeSeller(s, admin, `racer-${i}`)));
    const request = await postRequest(s, buyer);
    const offers = await Promise.all(sellers.map((x) => makeOffer(s, x, request.id)));
    assert.equal(new Set(offers.map((o) => o.id)).size, 30);

    const list = await waitFor(buyer, '30 notifications', (x) => x.type === 'offer.created', { n: 30, ms: 20_000 });
    await sleep(500);
    const everything = await all(buyer);
    assert.equal(everything.length, 30, `notifications: ${everything.length}`);
    assert.deepEqual(everything.map((x) => x.data.offer_id).sort(), offers.map((o) => o.id).sort());
    assert.equal(new Set(everything.map((x) => x.id)).size, 30);
    assert.equal(list.length, 30);
    assert.equal(await unreadCount(buyer), 30);
    assert.equal((await page(buyer)).meta.unread_count, 30);

    const targets = everything.slice(0, 10); // the newest ten, read one by one
    const calls = [
      ...targets.map((n) => ({ kind: 'one', id: n.id, run: () => markRead(buyer, n.id) })),
      ...[10, 15, 20, 25, 29].map((i) => ({ kind: 'all', run: () => readAll(buyer, { up_to: everything[i].id }) })),
      ...Array.from({ length: 5 }, () => ({ kind: 'all', run: () => readAll(buyer) })),
    ];
    const results = await Promise.all(calls.map((c) => c.run()));
    const bad = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.slice(0, 200)}`);
    assert.deepEqual(bad, []);
    let marked = 0;
    results.forEach((r, i) => {
      const d = assertSuccess(r);
      if (calls[i].kind === 'all') {
        assert.ok(Number.isInteger(d.marked) && d.marked >= 0 && Number.isInteger(d.unread_count) && d.unread_count >= 0 && d.unread_count <= 30, JSON.stringify(d));
        marked += d.marked;
      } else {
        assert.match(d.read_at, RFC3339_UTC);
      }
    });
    // the 20 older ones only read-all can mark, each once; the newest ten either way, at most once each
    assert.ok(marked >= 20 && marked <= 30, `read-all calls marked ${marked} in all`);
    assert.equal(await unreadCount(buyer), 0);
    const after = await all(buyer);
    assert.equal((await page(buyer)).meta.unread_count, 0);
    assert.ok(after.every((x) => x.read_at !== null), JSON.stringify(after.filter((x) => x.read_at === null)));
    results.forEach((r, i) => {
      if (calls[i].kind === 'one') assert.equal(after.find((x) => x.id === calls[i].id).read_at, r.json.data.read_at, 'read_at changed after it was set');
    });
    assert.deepEqual(assertSuccess(await readAll(buyer)), { marked: 0, unread_count: 0 });
  });
});

describe('more of what people hear of', () => {
  test('a request that expires tells its buyer, and each seller whose offer lapsed with it (without the deal id)', async () => {
    const buyer = await person(s, 'expiring-buyer');
    const seller = await makeSeller(s, admin, 'expiring-seller');
    const request = await postRequest(s, buyer, { expires_at: new Date(Date.now() + 2500).toISOString() });
    const offer = await makeOffer(s, seller, request.id);
    const [lapsed] = await waitFor(seller, 'offer.expired for the seller', (x) => x.type === 'offer.expired' && x.data.offer_id === offer.id, { ms: 20_000 });
    assert.deepEqual(lapsed.data, { offer_id: offer.id, request_id: request.id });
    assert.match(lapsed.body, new RegExp(request.title.replace(/[()]/g, '\\$&')));
    const [closed] = await waitFor(buyer, 'request.expired for the buyer', (x) => x.type === 'request.expired' && x.data.request_id === request.id);
    assert.equal(closed.category, 'requests');
  });

  test('an operator taking a request down tells its buyer; a buyer cancelling their own hears nothing of it', async () => {
    const buyer = await person(s, 'cancelled-buyer');
    const taken = await postRequest(s, buyer);
    const own = await postRequest(s, buyer);
    assertSuccess(await s.post(`/api/v1/requests/${own.id}/cancel`, {}, auth(buyer)));
    assertSuccess(await s.post(`/api/v1/requests/${taken.id}/cancel`, { reason: 'breaks the rules' }, auth(admin)));
    const [n] = await waitFor(buyer, 'request.cancelled', (x) => x.type === 'request.cancelled');
    assert.equal(n.data.request_id, taken.id);
    await sleep(500);
    assert.equal((await all(buyer)).filter((x) => x.type === 'request.cancelled').length, 1);
  });

  test('a chat line also reaches the recipient\'s user channel (their inbox updates on another screen)', async () => {
    const buyer = await person(s, 'inbox-buyer');
    const seller = await makeSeller(s, admin, 'inbox-seller');
    const offer = await makeOffer(s, seller, (await postRequest(s, buyer)).id);
    const conversation = assertSuccess(await s.post('/api/v1/conversations', { subject_type: 'offer', subject_id: offer.id }, auth(seller)), 201);
    const client = keep(await connectPusher(s, buyer));
    const events = recorder(await subscribe(client, `private-user.${buyer.id}`));
    const sent = assertSuccess(await s.post(`/api/v1/conversations/${conversation.id}/messages`, { body: 'still there?' }, auth(seller)), 201);
    const heard = await events.next('message.created');
    assert.equal(heard.id, sent.id);
    assert.equal(heard.conversation_id, conversation.id);
  });
});

describe('SMTP refusals', () => {
  let sink, m, mAdmin, mSeller;
  before(async () => {
    sink = await startSmtpSink();
    m = await startSouq({ args: ['--email-provider', 'smtp', '--smtp-url', sink.url] });
    mAdmin = await makeAdmin(m);
    mSeller = await makeSeller(m, mAdmin, 'refused-seller');
  });
  after(async () => { await m?.stop(); await sink?.close(); });

  test('a 550 for the address fails the delivery once, without retries', async () => {
    const buyer = await register(m, 'refused-buyer');
    sink.rejected.add(buyer.email);
    await makeOffer(m, mSeller, (await postRequest(m, buyer)).id);
    let rows;
    await eventually('the delivery fails', async () => {
      rows = assertSuccess(await m.get(`/api/v1/admin/notification-deliveries?user_id=${buyer.id}&channel=email`, auth(mAdmin)));
      return rows[0]?.status === 'failed' || rows;
    }, 15_000);
    assert.match(rows[0].error, /550/);
    await sleep(3000);  // the queue would have retried after 1 s, then 2 s
    rows = assertSuccess(await m.get(`/api/v1/admin/notification-deliveries?user_id=${buyer.id}&channel=email`, auth(mAdmin)));
    assert.equal(rows[0].attempts, 1);
    assert.equal(sink.rcptAttempts.filter((a) => a === buyer.email).length, 1);
  });
});
