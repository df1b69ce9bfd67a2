// The catalog (seed 003's product service): the category tree and its typed
// attributes, products with SKUs, drafts, archiving and soft deletion, the
// product page and its cache (on one node and across two), moderation, images
// rendered to WebP by a job, reviews, the authorization matrix of every
// catalog route, and bad input — each refusal checked to change nothing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { spawn, spawnSync } from 'node:child_process';
import { startSouq, assertSuccess, assertError, sleep, tryConnect, ENGINE, RFC3339_UTC } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, makePendingSeller, suspend, events, eventually, withKey } from './people.mjs';

// ---------------------------------------------------------------- images made here

function crc32(buf) {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

// A real PNG: 8-bit RGB, a gradient, zlib-compressed rows.
function png(width, height) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = x & 0xff;
      raw[o + 1] = y & 0xff;
      raw[o + 2] = 128;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// A PNG whose header declares width × height but whose data holds a few rows
// (a decompression bomb's shape, without the bytes).
function pngDeclaring(width, height) {
  const real = png(64, 4);
  const ihdrAt = 8 + 8; // signature, then length and type of IHDR
  const out = Buffer.from(real);
  out.writeUInt32BE(width, ihdrAt);
  out.writeUInt32BE(height, ihdrAt + 4);
  out.writeUInt32BE(crc32(out.subarray(12, 12 + 4 + 13)), 12 + 4 + 13);
  return out;
}

// A real baseline JPEG: one grey channel, every 8×8 block the same colour, so
// each block is its DC coefficient and an end-of-block (two-bit Huffman codes).
function jpeg(width, height, grey = 144) {
  const segment = (marker, body) => Buffer.concat([Buffer.from([0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff]), Buffer.from(body)]);
  const dc = 8 * (grey - 128); // the DCT of a flat block, quantised by 1
  const size = dc === 0 ? 0 : Math.floor(Math.log2(Math.abs(dc))) + 1;
  const twoBitCodes = (n) => { const counts = Array(16).fill(0); counts[1] = n; return counts; };
  const bits = [];
  const put = (value, n) => { for (let i = n - 1; i >= 0; i--) bits.push((value >> i) & 1); };
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  for (let b = 0; b < blocks; b++) {
    if (b === 0 && size) { put(0b01, 2); put(dc > 0 ? dc : (-dc) ^ ((1 << size) - 1), size); } else put(0b00, 2); // DC (then no change)
    put(0b00, 2); // end of block: every AC coefficient is 0
  }
  while (bits.length % 8) bits.push(1);
  const scan = [];
  for (let i = 0; i < bits.length; i += 8) {
    const byte = bits.slice(i, i + 8).reduce((a, x) => (a << 1) | x, 0);
    scan.push(byte);
    if (byte === 0xff) scan.push(0x00);
  }
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xdb, [0x00, ...Array(64).fill(1)]),
    segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]),
    segment(0xc4, [0x00, ...twoBitCodes(size ? 2 : 1), ...(size ? [0, size] : [0])]),
    segment(0xc4, [0x10, ...twoBitCodes(1), 0x00]),
    segment(0xda, [1, 1, 0x00, 0, 63, 0]),
    Buffer.from(scan),
    Buffer.from([0xff, 0xd9]),
  ]);
}

// The width of a WebP image (lossy, lossless or extended), or null when it is not one.
function webpWidth(b) {
  if (b.length < 30 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WEBP') return null;
  const kind = b.toString('latin1', 12, 16);
  if (kind === 'VP8X') return 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
  if (kind === 'VP8 ') return b.readUInt16LE(26) & 0x3fff;
  if (kind === 'VP8L') return 1 + (((b[22] & 0x3f) << 8) | b[21]);
  return null;
}

// ---------------------------------------------------------------- helpers

const tag = () => crypto.randomBytes(4).toString('hex');
const uploadOpts = (who, type) => ({ raw: true, headers: { ...auth(who).headers, 'Content-Type': type } });

// One SQL statement straight on the database, behind souq's back (to show
// what is served from memory).
function sql(server, statement) {
  const r = server.dbUrl.startsWith('sqlite:')
    ? spawnSync('sqlite3', ['-bail', '-cmd', '.timeout 5000', server.dbUrl.slice('sqlite:'.length), statement], { encoding: 'utf8' })
    : spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', server.dbUrl, '-c', statement], { encoding: 'utf8' });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

// A phone with two SKUs (black and white) in `phones`; `over` replaces fields.
function phoneBody(over = {}) {
  return {
    title: 'Nile One 128 GB', description: 'A phone.\nWith a charger.', brand: 'Nile', category: 'phones', condition: 'new',
    city: 'Cairo', lat: 30.0444, lng: 31.2357, attributes: { brand_name: 'Nile', storage_gb: 128, screen_in: 6.1 },
    skus: [
      { code: 'N1-128-B', price: 1_999_900, currency: 'EGP', stock: 5, attributes: { color: 'black' } },
      { code: 'N1-128-W', price: 2_099_900, currency: 'EGP', stock: 3, attributes: { color: 'white' } },
    ],
    ...over,
  };
}

let s, admin, seller, seller2, buyer, pending, suspended;

async function createProduct(who, over = {}, server = s) {
  return assertSuccess(await server.post('/api/v1/products', phoneBody(over), auth(who)), 201);
}
async function createCategory(body, server = s, who = admin) {
  return assertSuccess(await server.post('/api/v1/admin/categories', body, auth(who)), 201);
}
const getProduct = async (id, who, server = s) => assertSuccess(await server.get(`/api/v1/products/${id}`, auth(who)));
const mine = async (who, qs = '', server = s) => assertSuccess(await server.get(`/api/v1/products?mine=true&limit=100${qs}`, auth(who)));
const tree = async (server = s) => assertSuccess(await server.get('/api/v1/categories'));
// The data of a response, for comparing states (meta differs every time).
const state = async (...paths) => {
  const out = [];
  for (const [path, who] of paths) {
    const res = await s.get(path, auth(who));
    out.push([path, res.status, res.json?.data ?? res.json?.error?.code]);
  }
  return out;
};

before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  seller = await makeSeller(s, admin, 'nile');
  seller2 = await makeSeller(s, admin, 'delta');
  buyer = await register(s, 'buyer');
  pending = await makePendingSeller(s, 'hopeful');
  suspended = await makeSeller(s, admin, 'banned');
  await suspend(s, admin, suspended);
  // electronics (brand_name required, color, warranty) > phones (storage required, screen, dual sim)
  await createCategory({
    name: 'Electronics', slug: 'electronics', attributes: [
      { key: 'brand_name', type: 'text', label: 'Brand', required: true },
      { key: 'color', type: 'enum', values: ['black', 'white', 'gold'], facet: true },
      { key: 'warranty_months', type: 'integer', unit: 'months' },
    ],
  });
  await createCategory({
    name: 'Phones', slug: 'phones', parent: 'electronics', attributes: [
      { key: 'storage_gb', type: 'integer', required: true, unit: 'GB', facet: true },
      { key: 'screen_in', type: 'number', unit: 'in' },
      { key: 'dual_sim', type: 'boolean' },
    ],
  });
});
after(async () => { await s?.stop(); });

// ---------------------------------------------------------------- categories

test('the category tree nests children under parents, each level by position then name', async () => {
  const t = tag();
  const zeta = await createCategory({ name: 'Zeta', slug: `zeta-${t}`, position: 0 });
  const beta = await createCategory({ name: 'Beta', slug: `beta-${t}`, position: 1 });
  const alpha = await createCategory({ name: 'Alpha', slug: `alpha-${t}`, position: 1, description: 'First by name' });
  const two = await createCategory({ name: 'Two', slug: `two-${t}`, parent: alpha.slug, position: 2 });
  const one = await createCategory({ name: 'One', slug: `one-${t}`, parent: alpha.id, position: 1 });
  const leaf = await createCategory({ name: 'Leaf', slug: `leaf-${t}`, parent: one.slug });
  assert.equal(alpha.parent_id, null);
  assert.equal(alpha.depth, 0);
  assert.equal(alpha.description, 'First by name');
  assert.deepEqual([one.parent_id, one.depth, leaf.parent_id, leaf.depth], [alpha.id, 1, one.id, 2]);
  const ours = (await tree()).filter((c) => c.slug.endsWith(t));
  assert.deepEqual(ours.map((c) => c.slug), [zeta.slug, alpha.slug, beta.slug], 'position, then name');
  const a = ours[1];
  assert.deepEqual(a.children.map((c) => c.slug), [one.slug, two.slug]);
  assert.deepEqual(a.children[0].children.map((c) => [c.id, c.depth, c.children]), [[leaf.id, 2, []]]);
  // electronics > phones, with its own definitions (the inherited ones stay on electronics)
  const electronics = (await tree()).find((c) => c.slug === 'electronics');
  assert.deepEqual(electronics.children.map((c) => c.slug), ['phones']);
  assert.deepEqual(electronics.children[0].attributes.map((d) => d.key), ['storage_gb', 'screen_in', 'dual_sim']);
  assert.deepEqual(electronics.attributes[0], { key: 'brand_name', type: 'text', label: 'Brand', required: true, facet: false });
  assert.deepEqual(electronics.attributes[1].values, ['black', 'white', 'gold']);
  assert.equal(electronics.attributes[2].unit, 'months');

  // names compare without regard to case, the same on every database
  const [x, y, z] = [await createCategory({ name: 'banana', slug: `banana-${t}`, parent: zeta.id }),
    await createCategory({ name: 'Cherry', slug: `cherry-${t}`, parent: zeta.id }),
    await createCategory({ name: 'apple', slug: `apple-${t}`, parent: zeta.id })];
  const z2 = (await tree()).find((c) => c.id === zeta.id);
  assert.deepEqual(z2.children.map((c) => c.name), ['apple', 'banana', 'Cherry']);
  assert.deepEqual(z2.children.map((c) => c.id), [z.id, x.id, y.id]);

  // reorder: a lower position comes first
  const moved = assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${beta.id}`, { body: { position: -1, name: 'Beta 2' }, ...auth(admin) }));
  assert.deepEqual([moved.name, moved.position], ['Beta 2', -1]);
  assert.deepEqual((await tree()).filter((c) => c.slug.endsWith(t)).map((c) => c.slug), [beta.slug, zeta.slug, alpha.slug]);
});

test('moving a category takes its subtree along; under itself or a descendant is refused', async () => {
  const t = tag();
  const top = await createCategory({ name: 'Top', slug: `top-${t}` });
  const other = await createCategory({ name: 'Other', slug: `other-${t}` });
  const mid = await createCategory({ name: 'Mid', slug: `mid-${t}`, parent: top.slug });
  const low = await createCategory({ name: 'Low', slug: `low-${t}`, parent: mid.slug });
  const find = (nodes, id) => {
    for (const n of nodes) {
      if (n.id === id) return n;
      const inner = find(n.children, id);
      if (inner) return inner;
    }
    return null;
  };
  // under `other` (by slug): mid keeps low
  let m = assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${mid.slug}`, { body: { parent: other.slug }, ...auth(admin) }));
  assert.deepEqual([m.parent_id, m.depth], [other.id, 1]);
  let now = await tree();
  assert.deepEqual(find(now, top.id).children, []);
  assert.deepEqual(find(now, other.id).children.map((c) => c.id), [mid.id]);
  assert.deepEqual([find(now, low.id).parent_id, find(now, low.id).depth], [mid.id, 2]);
  // to the root: depths follow
  m = assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${mid.id}`, { body: { parent: null }, ...auth(admin) }));
  assert.deepEqual([m.parent_id, m.depth], [null, 0]);
  now = await tree();
  assert.ok(now.some((c) => c.id === mid.id), 'a root now');
  assert.equal(find(now, low.id).depth, 1);
  // back under top, then the refusals
  assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${mid.id}`, { body: { parent: top.id }, ...auth(admin) }));
  const before = await tree();
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${top.id}`, { body: { parent: low.slug }, ...auth(admin) }), 422, 'category_cycle');
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${top.id}`, { body: { parent: top.slug }, ...auth(admin) }), 422, 'category_cycle');
  // a refused move changes nothing else named with it either
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${mid.id}`, { body: { parent: low.id, name: 'Renamed' }, ...auth(admin) }), 422, 'category_cycle');
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${mid.id}`, { body: { parent: 'no-such-parent' }, ...auth(admin) }), 422, 'unknown_category');
  assert.deepEqual(await tree(), before);
});

test('categories nest at most 8 levels deep, also when a subtree moves', async () => {
  const t = tag();
  let parent = null;
  const chain = [];
  for (let depth = 0; depth < 8; depth++) {
    const c = await createCategory({ name: `Level ${depth}`, slug: `lvl${depth}-${t}`, ...(parent ? { parent } : {}) });
    assert.equal(c.depth, depth);
    chain.push(c);
    parent = c.id;
  }
  const before = await tree();
  assertError(await s.post('/api/v1/admin/categories', { name: 'Too deep', slug: `lvl8-${t}`, parent }, auth(admin)), 422, 'category_too_deep');
  const sub = await createCategory({ name: 'Sub', slug: `sub-${t}` });
  await createCategory({ name: 'Sub child', slug: `subchild-${t}`, parent: sub.id });
  const withSub = await tree();
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${sub.id}`, { body: { parent: chain[6].id }, ...auth(admin) }), 422, 'category_too_deep');
  assert.deepEqual(await tree(), withSub);
  assert.equal(before.length + 1, withSub.length);
});

test('slugs are unique: 409 slug_taken on create and on rename, nothing changed', async () => {
  const t = tag();
  const a = await createCategory({ name: 'A', slug: `a-${t}` });
  const b = await createCategory({ name: 'B', slug: `b-${t}` });
  const before = await tree();
  const e = assertError(await s.post('/api/v1/admin/categories', { name: 'A again', slug: a.slug }, auth(admin)), 409, 'slug_taken');
  assert.equal(e.details.slug, a.slug);
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${b.id}`, { body: { slug: a.slug, name: 'B renamed' }, ...auth(admin) }), 409, 'slug_taken');
  assert.deepEqual(await tree(), before);
  // its own slug again is no conflict; a free one renames, and the old one is free after
  assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${b.id}`, { body: { slug: b.slug }, ...auth(admin) }));
  const renamed = assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${b.slug}`, { body: { slug: `b2-${t}` }, ...auth(admin) }));
  assert.equal(renamed.slug, `b2-${t}`);
  await createCategory({ name: 'B again', slug: b.slug });
});

test('a category with children or live products is not deleted (409 category_in_use); an empty one is, by id or slug', async () => {
  const t = tag();
  const parent = await createCategory({ name: 'Parent', slug: `parent-${t}` });
  const child = await createCategory({ name: 'Child', slug: `child-${t}`, parent: parent.id });
  const before = await tree();
  assertError(await s.request('DELETE', `/api/v1/admin/categories/${parent.id}`, auth(admin)), 409, 'category_in_use');
  const filed = await createCategory({ name: 'Filed', slug: `filed-${t}` });
  const p = await createProduct(seller, { category: filed.id, attributes: {}, skus: [{ price: 100, currency: 'EGP', stock: 1 }] });
  const withProduct = await tree();
  assertError(await s.request('DELETE', `/api/v1/admin/categories/${filed.slug}`, auth(admin)), 409, 'category_in_use');
  assert.deepEqual(await tree(), withProduct);
  assert.equal(withProduct.length, before.length + 1);
  // Once its only product is deleted, it goes from the tree; the deleted
  // product still shows it to admins, and the slug is free again.
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}`, auth(seller)));
  assertSuccess(await s.request('DELETE', `/api/v1/admin/categories/${filed.id}`, auth(admin)));
  assert.deepEqual(await tree(), before);
  assertError(await s.request('DELETE', `/api/v1/admin/categories/${filed.id}`, auth(admin)), 404, 'not_found');
  assertError(await s.request('PATCH', `/api/v1/admin/categories/${filed.id}`, { body: { name: 'Back' }, ...auth(admin) }), 404, 'not_found');
  assert.equal((await getProduct(p.id, admin)).category.id, filed.id);
  const again = await createCategory({ name: 'Filed again', slug: `filed-${t}` });
  assert.notEqual(again.id, filed.id);
  assertError(await s.post('/api/v1/products', phoneBody({ category: filed.id }), auth(seller)), 422, 'unknown_category');
  const gone = assertSuccess(await s.request('DELETE', `/api/v1/admin/categories/${child.slug}`, auth(admin)));
  assert.deepEqual(gone, { id: child.id, deleted: true }, 'the id, also when deleted by slug');
  assertError(await s.request('DELETE', `/api/v1/admin/categories/${child.id}`, auth(admin)), 404, 'not_found');
  assertSuccess(await s.request('DELETE', `/api/v1/admin/categories/${parent.id}`, auth(admin)));
  assert.ok(!JSON.stringify(await tree()).includes(parent.id));
  const audit = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${parent.id}`, auth(admin)));
  assert.deepEqual(audit.map((a) => a.action).sort(), ['category.create', 'category.delete']);
});

test('bad attribute definitions are 422 naming the definition, and no category is made', async () => {
  const t = tag();
  const bad = [
    [{ key: 'Size', type: 'text' }],
    [{ key: 'size', type: 'colour' }],
    [{ key: 'size', type: 'enum' }],
    [{ key: 'size', type: 'enum', values: [] }],
    [{ key: 'size', type: 'enum', values: ['s', 's'] }],
    [{ key: 'size', type: 'enum', values: ['s', 3] }],
    [{ key: 'size', type: 'text', values: ['s'] }],
    [{ key: 'size', type: 'text', required: 'yes' }],
    [{ key: 'size', type: 'text', facet: 1 }],
    [{ key: 'size', type: 'text', label: 7 }],
    [{ key: 'size', type: 'text', unit: ['cm'] }],
    [{ key: 'size', type: 'text', colour: 'red' }],
    [{ key: 5, type: 'text' }],
    [{ type: 'text' }],
    [{ key: 'size', type: 'text' }, { key: 'size', type: 'number' }],
    ['size'],
  ];
  const before = await tree();
  for (const attributes of bad) {
    const e = assertError(await s.post('/api/v1/admin/categories', { name: 'Bad', slug: `bad-${t}`, attributes }, auth(admin)), 422, 'validation_failed');
    assert.ok(Object.keys(e.details.fields).some((f) => f.startsWith('attributes[')), JSON.stringify([attributes, e.details]));
  }
  assertError(await s.post('/api/v1/admin/categories', { name: 'Bad', slug: `bad-${t}`, attributes: 'size' }, auth(admin)), 422, 'validation_failed');
  assertError(await s.request('PATCH', '/api/v1/admin/categories/phones', { body: { attributes: [{ key: 'size', type: 'text', required: 'yes' }] }, ...auth(admin) }),
    422, 'validation_failed');
  assert.deepEqual(await tree(), before);
});

// ---------------------------------------------------------------- products

test('a seller lists a product with SKUs; the page embeds the seller, prices in minor units, stock as available', async () => {
  const res = await s.post('/api/v1/products', phoneBody(), { headers: { ...auth(seller).headers, 'X-Request-Id': 'create-product-1' } });
  const p = assertSuccess(res, 201);
  assert.match(p.id, /^prod_/);
  assert.equal(p.status, 'active');
  assert.match(p.published_at, RFC3339_UTC);
  assert.equal(p.version, 1);
  assert.deepEqual([p.price, p.price_max, p.currency, p.stock], [1_999_900, 2_099_900, 'EGP', 8]);
  assert.deepEqual(p.seller, { id: seller.id, name: 'nile trading', rating: null, rating_count: 0 }, 'the business name, not the display name');
  assert.deepEqual(p.rating, { average: null, count: 0 });
  assert.deepEqual(p.category.path.map((c) => c.slug), ['electronics', 'phones']);
  assert.equal(p.category.slug, 'phones');
  assert.deepEqual(p.attributes, { brand_name: 'Nile', storage_gb: 128, screen_in: 6.1 });
  assert.deepEqual([p.brand, p.city, p.location, p.condition], ['Nile', 'Cairo', { lat: 30.0444, lng: 31.2357 }, 'new']);
  assert.equal(p.description, 'A phone.\nWith a charger.');
  assert.deepEqual(p.skus.map((k) => [k.code, k.price, k.currency, k.stock, k.on_hand, k.reserved, k.attributes.color]),
    [['N1-128-B', 1_999_900, 'EGP', 5, 5, 0, 'black'], ['N1-128-W', 2_099_900, 'EGP', 3, 3, 0, 'white']]);
  assert.ok(p.skus.every((k) => /^sku_/.test(k.id)));
  assert.equal(p.rejection_reason, null, 'its seller sees why it would have been rejected');
  // what anyone sees: the same product without the seller's stock details
  const pub = await getProduct(p.id);
  assert.deepEqual(pub.skus.map((k) => Object.keys(k).sort()), Array(2).fill(['attributes', 'code', 'currency', 'id', 'price', 'stock']));
  assert.ok(!('rejection_reason' in pub));
  assert.ok(!('seller_active' in pub));
  assert.equal(p.seller_active, true);
  const { skus: ownerSkus, rejection_reason: _r, seller_active: _a, ...ownerRest } = p;
  const { skus: pubSkus, ...pubRest } = pub;
  assert.deepEqual(pubRest, ownerRest);
  assert.deepEqual(pubSkus, ownerSkus.map(({ on_hand: _o, reserved: _v, ...k }) => k));
  // signed in, the same page
  assert.deepEqual(await getProduct(p.id, buyer), pub);
  const [created] = await events(s, p.id, { full: true });
  assert.equal(created.type, 'product.created');
  assert.equal(created.request_id, 'create-product-1');
  assert.equal(created.payload.seller_id, seller.id);
});

test('attributes are checked against the category and its ancestors: known keys, types, enum values, required ones', async () => {
  const before = await mine(seller);
  const attrs = (over) => ({ brand_name: 'Nile', storage_gb: 128, ...over });
  const refused = async (over, keys, sku) => {
    const e = assertError(await s.post('/api/v1/products', phoneBody(over), auth(seller)), 422, 'invalid_attributes');
    assert.deepEqual(Object.keys(e.details.attributes).sort(), keys.sort(), JSON.stringify(e.details));
    if (sku !== undefined) assert.equal(e.details.sku, sku);
    return e;
  };
  // brand_name is electronics' (inherited), storage_gb phones' own
  const e = await refused({ attributes: { screen_in: 6.1 } }, ['brand_name', 'storage_gb']);
  assert.match(e.details.attributes.brand_name, /required/);
  await refused({ attributes: attrs({ storage_gb: '128' }) }, ['storage_gb']);
  await refused({ attributes: attrs({ storage_gb: 12.5 }) }, ['storage_gb']);
  await refused({ attributes: attrs({ screen_in: 'big' }) }, ['screen_in']);
  await refused({ attributes: attrs({ dual_sim: 'yes' }) }, ['dual_sim']);
  await refused({ attributes: attrs({ warranty_months: true }) }, ['warranty_months']);
  const en = await refused({ attributes: attrs({ color: 'red' }) }, ['color']);
  assert.match(en.details.attributes.color, /black/, 'names the values');
  await refused({ attributes: attrs({ weight_g: 180 }) }, ['weight_g']);
  // SKU attributes follow the same definitions
  const sku = (attributes, code) => ({ price: 100_000, currency: 'EGP', stock: 1, attributes, code });
  await refused({ skus: [sku({ color: 'black' }), sku({ color: 'red' })] }, ['color'], 1);
  await refused({ skus: [sku({ colour: 'black' })] }, ['colour'], 0);
  await refused({ skus: [sku({ storage_gb: 'lots' })] }, ['storage_gb'], 0);
  assert.deepEqual(await mine(seller), before, 'nothing was created');

  // every type that fits, inherited or not
  const ok = await createProduct(seller, {
    attributes: attrs({ color: 'gold', warranty_months: 24, screen_in: 6, dual_sim: false }),
    skus: [sku({ storage_gb: 256 }, 'A'), sku({ storage_gb: 512 }, 'B')],
  });
  assert.deepEqual(ok.attributes, { brand_name: 'Nile', storage_gb: 128, color: 'gold', warranty_months: 24, screen_in: 6, dual_sim: false });
  // a draft may lack required ones; it is published once it has them
  const draft = await createProduct(seller, { status: 'draft', attributes: { screen_in: 5.5 } });
  assert.equal(draft.status, 'draft');
  assert.equal(draft.published_at, null);
  assertError(await s.post('/api/v1/products', phoneBody({ status: 'draft', attributes: { storage_gb: 'x' } }), auth(seller)), 422, 'invalid_attributes');
  const unpublished = await getProduct(draft.id, seller);
  const pe = assertError(await s.request('PATCH', `/api/v1/products/${draft.id}`, { body: { status: 'active' }, ...auth(seller) }), 422, 'invalid_attributes');
  assert.deepEqual(Object.keys(pe.details.attributes).sort(), ['brand_name', 'storage_gb']);
  assert.deepEqual(await getProduct(draft.id, seller), unpublished);
  const live = assertSuccess(await s.request('PATCH', `/api/v1/products/${draft.id}`,
    { body: { status: 'active', attributes: attrs({ screen_in: 5.5 }) }, ...auth(seller) }));
  assert.equal(live.status, 'active');
  assert.match(live.published_at, RFC3339_UTC);
  // moving to a category whose definitions the SKUs do not fit is refused
  const t = tag();
  await createCategory({ name: 'Cables', slug: `cables-${t}`, attributes: [{ key: 'length_m', type: 'number' }] });
  const liveNow = await getProduct(live.id, seller);
  assertError(await s.request('PATCH', `/api/v1/products/${live.id}`, { body: { category: `cables-${t}`, attributes: {} }, ...auth(seller) }),
    422, 'invalid_attributes');
  assert.deepEqual(await getProduct(live.id, seller), liveNow);
});

test('only approved sellers list products (403 seller_not_approved); only the owner (or an admin) changes one (403 not_product_owner)', async () => {
  const snapshot = () => state(['/api/v1/products?limit=100'], ['/api/v1/products?mine=true', pending], ['/api/v1/products?mine=true', buyer]);
  const before = await snapshot();
  assertError(await s.post('/api/v1/products', phoneBody(), auth(pending)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/products', phoneBody(), auth(buyer)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/products', phoneBody(), auth(admin)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/products', phoneBody(), auth(suspended)), 403, 'account_suspended');
  assertError(await s.post('/api/v1/products', phoneBody()), 401, 'unauthenticated');
  // who may sell is answered before what they sent is checked
  assertError(await s.post('/api/v1/products', {}, auth(buyer)), 403, 'seller_not_approved');
  assertError(await s.post('/api/v1/products', { title: 'x' }, auth(pending)), 403, 'seller_not_approved');
  assert.deepEqual(await snapshot(), before, 'nothing was created');

  const p = await createProduct(seller);
  const sku = p.skus[0].id;
  const owned = await getProduct(p.id, seller);
  for (const [method, path, body] of [
    ['PATCH', `/api/v1/products/${p.id}`, { title: 'Taken over' }],
    ['PUT', `/api/v1/products/${p.id}`, { title: 'Taken over' }],
    ['DELETE', `/api/v1/products/${p.id}`],
    ['POST', `/api/v1/products/${p.id}/skus`, { price: 1, currency: 'EGP', stock: 1, attributes: { color: 'gold' } }],
    ['PATCH', `/api/v1/products/${p.id}/skus/${sku}`, { price: 1 }],
    ['DELETE', `/api/v1/products/${p.id}/skus/${sku}`],
  ]) {
    assertError(await s.request(method, path, { body, ...auth(seller2) }), 403, 'not_product_owner');
    assertError(await s.request(method, path, { body, ...auth(buyer) }), 403, 'not_product_owner');
  }
  assertError(await s.post(`/api/v1/products/${p.id}/images`, png(20, 20), uploadOpts(seller2, 'image/png')), 403, 'not_product_owner');
  assert.deepEqual(await getProduct(p.id, seller), owned, 'nothing changed');
  // an admin may change and delete it (audited)
  assert.equal(assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { title: 'Fixed by an admin' }, ...auth(admin) })).title, 'Fixed by an admin');
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}`, auth(admin)));
  const audit = assertSuccess(await s.get(`/api/v1/admin/audit?target_id=${p.id}`, auth(admin)));
  assert.deepEqual(audit.map((a) => a.action), ['product.delete']);
});

test('SKUs: one currency per product, distinct variants, positive prices, stock ≥ 0; prices and stock follow every change', async () => {
  const before = await mine(seller);
  const sku = (over) => ({ price: 100_000, currency: 'EGP', stock: 2, ...over });
  const e = assertError(await s.post('/api/v1/products', phoneBody({
    skus: [sku({ attributes: { color: 'black' } }), sku({ currency: 'USD', attributes: { color: 'white' } })],
  }), auth(seller)), 422, 'mixed_currencies');
  assert.deepEqual(e.details.currencies, ['EGP', 'USD']);
  assertError(await s.post('/api/v1/products', phoneBody({ skus: [sku({ attributes: { color: 'black' } }), sku({ attributes: { color: 'black' }, price: 5 })] }), auth(seller)),
    422, 'duplicate_variant');
  assertError(await s.post('/api/v1/products', phoneBody({ skus: [sku(), sku()] }), auth(seller)), 422, 'duplicate_variant');
  for (const bad of [{ price: 0 }, { price: -100 }, { price: 10.5 }, { price: '100' }, { price: 1e16 }, { stock: -1 }, { stock: 1.5 },
    { currency: 'XYZ' }, { currency: undefined }, { price: undefined }, { stock: undefined }, { code: '' }, { colour: 'black' }]) {
    const v = assertError(await s.post('/api/v1/products', phoneBody({ skus: [sku(bad)] }), auth(seller)), 422, 'validation_failed');
    assert.ok('skus[0]' in v.details.fields, JSON.stringify([bad, v.details]));
  }
  for (const skus of [[], 'none', Array.from({ length: 101 }, (_, i) => sku({ code: `c${i}` }))])
    assert.ok('skus' in assertError(await s.post('/api/v1/products', phoneBody({ skus }), auth(seller)), 422, 'validation_failed').details.fields);
  assert.deepEqual(await mine(seller), before, 'nothing was created');

  // zero stock is fine: listed, nothing to buy
  const empty = await createProduct(seller, { skus: [sku({ stock: 0 })] });
  assert.deepEqual([empty.stock, empty.skus[0].stock], [0, 0]);

  const p = await createProduct(seller);
  const [black, white] = p.skus;
  let now = await getProduct(p.id, seller);
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, sku({ currency: 'USD', attributes: { color: 'gold' } }), auth(seller)), 422, 'mixed_currencies');
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, sku({ attributes: { color: 'black' } }), auth(seller)), 422, 'duplicate_variant');
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, sku({ attributes: { color: 'red' } }), auth(seller)), 422, 'invalid_attributes');
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, sku({ price: 0, attributes: { color: 'gold' } }), auth(seller)), 422, 'validation_failed');
  for (const body of [{ price: 0 }, { price: -1 }, { stock: -1 }, {}, { attributes: { color: 'red' } }, { currency: 'USD' }, { attributes: { color: 'white' } }]) {
    const res = await s.request('PATCH', `/api/v1/products/${p.id}/skus/${black.id}`, { body, ...auth(seller) });
    assert.equal(res.status, 422, JSON.stringify([body, res.json]));
  }
  assertError(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${empty.skus[0].id}`, { body: { price: 5 }, ...auth(seller) }), 404, 'not_found');
  assert.deepEqual(await getProduct(p.id, seller), now, 'nothing changed');

  const gold = assertSuccess(await s.post(`/api/v1/products/${p.id}/skus`, sku({ price: 2_500_000, stock: 4, code: 'N1-G', attributes: { color: 'gold' } }), auth(seller)), 201);
  assert.deepEqual([gold.price, gold.price_max, gold.stock, gold.skus.length], [1_999_900, 2_500_000, 12, 3]);
  now = assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${black.id}`, { body: { price: 1_800_000, stock: 1, code: null }, ...auth(seller) }));
  assert.deepEqual([now.price, now.price_max, now.stock], [1_800_000, 2_500_000, 8]);
  assert.deepEqual([now.skus[0].code, now.skus[0].on_hand], [null, 1]);
  assert.equal(now.version, p.version + 2);
  now = assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${gold.skus[2].id}`, auth(seller)));
  assert.deepEqual([now.price, now.price_max, now.stock, now.skus.map((k) => k.id)], [1_800_000, 2_099_900, 4, [black.id, white.id]]);
  assertError(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${gold.skus[2].id}`, auth(seller)), 404, 'not_found');
  // units held by orders awaiting payment (the orders module reserves them) are not for sale,
  // and the stock on hand cannot go below them
  sql(s, `UPDATE skus SET reserved = 2 WHERE id = '${white.id}'`);
  now = await getProduct(p.id, seller);
  assert.deepEqual([now.stock, now.skus[1].stock, now.skus[1].on_hand, now.skus[1].reserved], [2, 1, 3, 2]);
  const held = assertError(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${white.id}`, { body: { stock: 1 }, ...auth(seller) }), 409, 'stock_below_reserved');
  assert.equal(held.details.reserved, 2);
  assert.deepEqual(await getProduct(p.id, seller), now);
  now = assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${white.id}`, { body: { stock: 2 }, ...auth(seller) }));
  assert.deepEqual([now.stock, now.skus[1].stock, now.skus[1].on_hand], [1, 0, 2]);
  assert.deepEqual(assertSuccess(await s.get(`/api/v1/products/${p.id}`)).skus.map((k) => k.stock), [1, 0], 'what anyone can buy');
  sql(s, `UPDATE skus SET reserved = 0 WHERE id = '${white.id}'`);
  // the only currency of a product may change; a listed product keeps one SKU
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${white.id}`, auth(seller)));
  const usd = assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${black.id}`, { body: { currency: 'USD', price: 90_000 }, ...auth(seller) }));
  assert.deepEqual([usd.currency, usd.price, usd.skus[0].currency], ['USD', 90_000, 'USD']);
  const last = await getProduct(p.id, seller);
  assertError(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${black.id}`, auth(seller)), 422, 'no_skus');
  assert.deepEqual(await getProduct(p.id, seller), last);
  // a draft may lose every SKU: no price then; its next SKU sets price and currency
  const d = await createProduct(seller, { status: 'draft' });
  assertSuccess(await s.request('DELETE', `/api/v1/products/${d.id}/skus/${d.skus[0].id}`, auth(seller)));
  const bare = assertSuccess(await s.request('DELETE', `/api/v1/products/${d.id}/skus/${d.skus[1].id}`, auth(seller)));
  assert.deepEqual([bare.skus, bare.stock, bare.price, bare.price_max], [[], 0, 0, 0]);
  assertError(await s.request('PATCH', `/api/v1/products/${d.id}`, { body: { status: 'active' }, ...auth(seller) }), 422, 'no_skus');
  const dollars = assertSuccess(await s.post(`/api/v1/products/${d.id}/skus`, sku({ currency: 'USD', price: 12_000 }), auth(seller)), 201);
  assert.deepEqual([dollars.currency, dollars.price, dollars.price_max, dollars.stock], ['USD', 12_000, 12_000, 2]);
});

test('a product has at most 100 live SKUs (422 too_many_skus); removed ones do not count', async () => {
  const skus = Array.from({ length: 100 }, (_, i) => ({ price: 1000 + i, currency: 'EGP', stock: 1, attributes: { storage_gb: i + 1 } }));
  const p = await createProduct(seller, { skus });
  assert.equal(p.skus.length, 100);
  const extra = (gb) => ({ price: 5000, currency: 'EGP', stock: 1, attributes: { storage_gb: gb } });
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, extra(101), auth(seller)), 422, 'too_many_skus');
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${p.skus[0].id}`, auth(seller)));
  const again = assertSuccess(await s.post(`/api/v1/products/${p.id}/skus`, extra(101), auth(seller)), 201);
  assert.equal(again.skus.length, 100);
  assert.deepEqual([again.price, again.price_max], [1001, 5000]);
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, extra(102), auth(seller)), 422, 'too_many_skus');
});

test('drafts are seen by their seller and admins only', async () => {
  const d = await createProduct(seller, { status: 'draft', title: 'Secret draft' });
  assertError(await s.get(`/api/v1/products/${d.id}`), 404, 'not_found');
  assertError(await s.get(`/api/v1/products/${d.id}`, auth(buyer)), 404, 'not_found');
  assertError(await s.get(`/api/v1/products/${d.id}`, auth(seller2)), 404, 'not_found');
  assert.equal((await getProduct(d.id, seller)).status, 'draft');
  assert.equal((await getProduct(d.id, admin)).status, 'draft');
  const ids = (list) => list.map((p) => p.id);
  assert.ok(!ids(assertSuccess(await s.get(`/api/v1/products?seller=${seller.id}&limit=100`))).includes(d.id));
  assert.ok(!ids(assertSuccess(await s.get(`/api/v1/products?seller=${seller.id}&limit=100`, auth(seller2)))).includes(d.id));
  assert.ok(ids(await mine(seller)).includes(d.id));
  const drafts = await mine(seller, '&status=draft');
  assert.ok(drafts.length >= 1 && drafts.every((p) => p.status === 'draft'));
  assert.ok(ids(drafts).includes(d.id));
  assertError(await s.get('/api/v1/products?status=draft'), 422, 'validation_failed');
  assert.ok(ids(assertSuccess(await s.get('/api/v1/admin/products?status=draft&limit=100', auth(admin)))).includes(d.id));
  assertError(await s.get(`/api/v1/products/${d.id}/reviews`), 404, 'not_found');
});

test('archiving hides a product; deleting it is soft: gone for everyone but admins', async () => {
  const p = await createProduct(seller);
  assertSuccess(await s.get(`/api/v1/products/${p.id}`)); // the public page, now in memory
  const archived = assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'archived' }, ...auth(seller) }));
  assert.equal(archived.status, 'archived');
  assertError(await s.get(`/api/v1/products/${p.id}`), 404, 'not_found');
  assertError(await s.get(`/api/v1/products/${p.id}`, auth(buyer)), 404, 'not_found');
  assert.ok(!assertSuccess(await s.get(`/api/v1/products?seller=${seller.id}&limit=100`)).some((x) => x.id === p.id));
  const back = assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'active' }, ...auth(seller) }));
  assert.equal(back.status, 'active');
  assert.equal(back.published_at, p.published_at, 'first published then');
  assertSuccess(await s.get(`/api/v1/products/${p.id}`));

  const res = assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}`, auth(seller)));
  assert.deepEqual(res, { id: p.id, deleted: true });
  assertError(await s.get(`/api/v1/products/${p.id}`), 404, 'not_found');
  assertError(await s.get(`/api/v1/products/${p.id}`, auth(seller)), 404, 'not_found');
  assert.ok(!(await mine(seller)).some((x) => x.id === p.id));
  assertError(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { title: 'Back from the dead' }, ...auth(seller) }), 404, 'not_found');
  assertError(await s.request('DELETE', `/api/v1/products/${p.id}`, auth(seller)), 404, 'not_found');
  assertError(await s.post(`/api/v1/products/${p.id}/skus`, { price: 1, currency: 'EGP', stock: 1, attributes: { color: 'gold' } }, auth(seller)), 404, 'not_found');
  assertError(await s.get(`/api/v1/products/${p.id}/reviews`), 404, 'not_found');
  const kept = await getProduct(p.id, admin);
  assert.match(kept.deleted_at, RFC3339_UTC);
  assert.equal(kept.title, p.title);
  assert.ok((await events(s, p.id)).includes('product.deleted'));
});

test('lists filter by seller and category (with its descendants), newest first, a page at a time', async () => {
  const t = tag();
  const lister = await makeSeller(s, admin, 'lister');
  await createCategory({ name: 'Tablets', slug: `tablets-${t}`, parent: 'electronics' });
  const a = await createProduct(lister, { title: 'Phone A' });
  const b = await createProduct(lister, { title: 'Tablet B', category: `tablets-${t}`, attributes: { brand_name: 'Nile' } });
  const c = await createProduct(lister, { title: 'Phone C' });
  await createProduct(lister, { title: 'Draft D', status: 'draft' });
  const ids = async (qs, who) => assertSuccess(await s.get(`/api/v1/products?seller=${lister.id}&${qs}`, auth(who))).map((p) => p.id);
  assert.deepEqual(await ids(''), [c.id, b.id, a.id]);
  assert.deepEqual(await ids('category=electronics'), [c.id, b.id, a.id], 'descendants included');
  assert.deepEqual(await ids('category=phones'), [c.id, a.id]);
  assert.deepEqual(await ids(`category=tablets-${t}`), [b.id]);
  const first = await s.get(`/api/v1/products?seller=${lister.id}&limit=2`);
  assert.deepEqual(assertSuccess(first).map((p) => p.id), [c.id, b.id]);
  assert.ok(first.json.meta.next_cursor);
  const second = await s.get(`/api/v1/products?seller=${lister.id}&limit=2&cursor=${first.json.meta.next_cursor}`);
  assert.deepEqual(assertSuccess(second).map((p) => p.id), [a.id]);
  assert.equal(second.json.meta.next_cursor, null);
  assert.equal((await mine(lister)).length, 4);
  assertError(await s.get('/api/v1/products?category=no-such-category'), 422, 'validation_failed');
});

// ---------------------------------------------------------------- the page cache

test('the anonymous page comes from memory, and every change shows at once', async () => {
  const p = await createProduct(seller);
  const anon = () => s.get(`/api/v1/products/${p.id}`);
  assert.equal(assertSuccess(await anon()).title, p.title);
  // behind souq's back: the page in memory stays; a signed-in read goes to the database
  sql(s, `UPDATE products SET title = 'Changed behind the back' WHERE id = '${p.id}'`);
  assert.equal(assertSuccess(await anon()).title, p.title, 'served from memory');
  assert.equal((await getProduct(p.id, seller)).title, 'Changed behind the back');
  // An anonymous list shows each product as its page does (from the same memory).
  const listed = async () => assertSuccess(await s.get(`/api/v1/products?seller=${seller.id}&limit=100`)).find((x) => x.id === p.id);
  assert.deepEqual(await listed(), assertSuccess(await anon()));
  // each change through the API forgets it at once
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { title: 'Edited title' }, ...auth(seller) }));
  assert.equal(assertSuccess(await anon()).title, 'Edited title');
  assert.equal((await listed()).title, 'Edited title');
  assertSuccess(await s.request('PUT', `/api/v1/products/${p.id}`, { body: { description: 'Put there' }, ...auth(seller) }));
  assert.equal(assertSuccess(await anon()).description, 'Put there');
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}/skus/${p.skus[0].id}`, { body: { price: 1_234_500, stock: 9 }, ...auth(seller) }));
  let page = assertSuccess(await anon());
  assert.deepEqual([page.price, page.stock, page.skus[0].price, page.skus[0].stock], [1_234_500, 12, 1_234_500, 9]);
  assertSuccess(await s.post(`/api/v1/products/${p.id}/skus`, { price: 3_000_000, currency: 'EGP', stock: 1, attributes: { color: 'gold' } }, auth(seller)), 201);
  page = assertSuccess(await anon());
  assert.deepEqual([page.price_max, page.skus.length], [3_000_000, 3]);
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${p.skus[1].id}`, auth(seller)));
  assert.equal(assertSuccess(await anon()).skus.length, 2);
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'archived' }, ...auth(seller) }));
  assertError(await anon(), 404, 'not_found');
  assertSuccess(await s.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'active' }, ...auth(seller) }));
  assert.equal(assertSuccess(await anon()).status, 'active');
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}`, auth(seller)));
  assertError(await anon(), 404, 'not_found');
});

test("a suspended seller's products are hidden from everyone but admins, and come back with the seller", async () => {
  const shop = await makeSeller(s, admin, `fleeting-${tag()}`);
  const p = await createProduct(shop);
  const customer = await register(s, `customer-${tag()}`);
  assertSuccess(await s.post('/api/v1/cart/items', { sku_id: p.skus[0].id, quantity: 1 }, auth(customer)));
  assert.equal(assertSuccess(await s.get(`/api/v1/products/${p.id}`)).id, p.id, 'the page is in memory');
  const listed = async () => assertSuccess(await s.get(`/api/v1/products?seller=${shop.id}&limit=100`, auth(buyer))).map((x) => x.id);
  assert.deepEqual(await listed(), [p.id]);

  await suspend(s, admin, shop);
  await eventually('the page goes', async () => (await s.get(`/api/v1/products/${p.id}`)).status === 404);
  assertError(await s.get(`/api/v1/products/${p.id}`, auth(buyer)), 404, 'not_found');
  assert.deepEqual(await listed(), []);
  const seen = await getProduct(p.id, admin);
  assert.equal(seen.seller_active, false);
  const c = assertSuccess(await s.get('/api/v1/cart', auth(customer)));
  assert.deepEqual([c.items[0].problem, c.checkout_ready], ['unavailable', false]);
  assertError(await s.post('/api/v1/orders', {}, withKey(customer)), 409, 'cart_stale');
  assert.equal((await getProduct(p.id, admin)).skus[0].reserved, 0, 'nothing was held');

  assertSuccess(await s.post(`/api/v1/admin/users/${shop.id}/unsuspend`, { reason: 'cleared' }, auth(admin)));
  await eventually('the page comes back', async () => (await s.get(`/api/v1/products/${p.id}`)).status === 200);
  assert.deepEqual(await listed(), [p.id]);
  assert.equal((await getProduct(p.id, admin)).seller_active, true);
  assert.equal(assertSuccess(await s.get('/api/v1/cart', auth(customer))).checkout_ready, true);
});

test('products of sellers suspended before their standing was kept are hidden by the upkeep job at the next start', async () => {
  const shop = await makeSeller(s, admin, `old-${tag()}`);
  const p = await createProduct(shop);
  await suspend(s, admin, shop);
  await eventually('the page goes', async () => (await s.get(`/api/v1/products/${p.id}`)).status === 404);
  // As a database from before the upgrade: the flag at its default, the upkeep owed.
  sql(s, `UPDATE products SET seller_active = 1 WHERE id = '${p.id}'`);
  sql(s, "INSERT INTO catalog_upkeep (task) VALUES ('seller_standing')");
  const t = await startSouq({ database: s.dbUrl });
  try {
    await eventually('the next start hides it again', async () => (await t.get(`/api/v1/products/${p.id}`)).status === 404);
    assert.equal(sql(s, 'SELECT COUNT(*) FROM catalog_upkeep'), '0', 'done once');
    assert.equal(sql(s, `SELECT seller_active FROM products WHERE id = '${p.id}'`), '0');
  } finally {
    await t.stop();
  }
});

test('--product-cache-ttl: a page in memory lives that long at most', async () => {
  const t = await startSouq({ args: ['--product-cache-ttl', '1'] });
  try {
    const tAdmin = await makeAdmin(t);
    const tSeller = await makeSeller(t, tAdmin, 'ttl');
    await createCategory({ name: 'Things', slug: 'things' }, t, tAdmin);
    const p = await createProduct(tSeller, { category: 'things', attributes: {}, skus: [{ price: 100, currency: 'EGP', stock: 1 }] }, t);
    const stored = Date.now(); // the page goes into memory no earlier than this
    assertSuccess(await t.get(`/api/v1/products/${p.id}`));
    sql(t, `UPDATE products SET title = 'Changed behind the back' WHERE id = '${p.id}'`);
    assert.equal(assertSuccess(await t.get(`/api/v1/products/${p.id}`)).title, p.title, 'from memory');
    await eventually('the page expires', async () => assertSuccess(await t.get(`/api/v1/products/${p.id}`)).title === 'Changed behind the back', 5000);
    assert.ok(Date.now() - stored >= 950, `after a second, not ${Date.now() - stored} ms`);
  } finally {
    await t.stop();
  }
});

describe('two nodes sharing PostgreSQL and Redis', { skip: ENGINE !== 'postgres' && 'needs SOUQ_TEST_DB=postgres' }, () => {
  let redis, a, b, aAdmin, aSeller;
  const freePort = () => new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
  before(async () => {
    const port = await freePort();
    let failed = null;
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redis.once('error', (err) => { failed = `cannot start redis-server: ${err.message}`; });
    process.once('exit', () => redis.kill('SIGKILL'));
    await eventually('redis-server listening', async () => failed ?? (await tryConnect(port)).connected, 10_000);
    const args = ['--redis', `redis://127.0.0.1:${port}`];
    a = await startSouq({ args });
    b = await startSouq({ args, database: a.dbUrl });
    aAdmin = await makeAdmin(a);
    aSeller = await makeSeller(a, aAdmin, 'cluster');
    await createCategory({ name: 'Gadgets', slug: 'gadgets' }, a, aAdmin);
    // the bus is up once a change on A reaches B's memory
    const probe = await createProduct(aSeller, { category: 'gadgets', attributes: {}, skus: [{ price: 100, currency: 'EGP', stock: 1 }] }, a);
    let n = 0;
    await eventually('a change on A reaching node B', async () => {
      assertSuccess(await b.get(`/api/v1/products/${probe.id}`));
      const title = `Probe ${++n}`;
      assertSuccess(await a.request('PATCH', `/api/v1/products/${probe.id}`, { body: { title }, ...auth(aSeller) }));
      await sleep(200);
      return assertSuccess(await b.get(`/api/v1/products/${probe.id}`)).title === title;
    }, 20_000);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    redis?.kill('SIGTERM');
  });

  test('an edit on node A is on node B\'s page from memory within a second', async () => {
    const p = await createProduct(aSeller, { category: 'gadgets', attributes: {}, skus: [{ price: 100, currency: 'EGP', stock: 1 }] }, a);
    assert.equal(assertSuccess(await b.get(`/api/v1/products/${p.id}`)).title, p.title);
    sql(a, `UPDATE products SET title = 'Changed behind the back' WHERE id = '${p.id}'`);
    assert.equal(assertSuccess(await b.get(`/api/v1/products/${p.id}`)).title, p.title, 'B serves it from memory');
    for (const [change, seen] of [
      [{ title: 'Edited on A' }, (page) => page.title === 'Edited on A'],
      [{ status: 'archived' }, null],
    ]) {
      const t0 = Date.now();
      assertSuccess(await a.request('PATCH', `/api/v1/products/${p.id}`, { body: change, ...auth(aSeller) }));
      await eventually(`${JSON.stringify(change)} seen on B`, async () => {
        const res = await b.get(`/api/v1/products/${p.id}`);
        return seen ? res.status === 200 && seen(assertSuccess(res)) : res.status === 404;
      }, 1000);
      assert.ok(Date.now() - t0 < 1000);
    }
    // stock on A (a SKU change) reaches B too
    assertSuccess(await a.request('PATCH', `/api/v1/products/${p.id}`, { body: { status: 'active' }, ...auth(aSeller) }));
    await eventually('active again on B', async () => (await b.get(`/api/v1/products/${p.id}`)).status === 200, 1000);
    assertSuccess(await a.request('PATCH', `/api/v1/products/${p.id}/skus/${p.skus[0].id}`, { body: { stock: 42 }, ...auth(aSeller) }));
    await eventually('stock seen on B', async () => assertSuccess(await b.get(`/api/v1/products/${p.id}`)).stock === 42, 1000);
  });
});

// ---------------------------------------------------------------- moderation

describe('with --product-moderation', () => {
  let m, mAdmin, mSeller, other;
  before(async () => {
    m = await startSouq({ args: ['--product-moderation', '--media-base-url', 'https://cdn.example.test/media/'] });
    mAdmin = await makeAdmin(m);
    mSeller = await makeSeller(m, mAdmin, 'careful');
    other = await register(m, 'someone');
    await createCategory({ name: 'Gadgets', slug: 'gadgets', attributes: [{ key: 'colour', type: 'text' }] }, m, mAdmin);
  });
  after(async () => { await m?.stop(); });
  const body = (over = {}) => ({ category: 'gadgets', attributes: {}, skus: [{ price: 5_000, currency: 'EGP', stock: 10, attributes: { colour: 'red' } }], ...over });
  const anon = (p) => m.get(`/api/v1/products/${p.id}`);
  const queue = async (status = '') => assertSuccess(await m.get(`/api/v1/admin/products?limit=100${status}`, auth(mAdmin))).map((x) => x.id);
  const patch = async (p, changes) => assertSuccess(await m.request('PATCH', `/api/v1/products/${p.id}`, { body: changes, ...auth(mSeller) }));

  test('a new product waits for review, hidden; approved it is listed; rejected its seller sees why', async () => {
    const p = await createProduct(mSeller, body(), m);
    assert.equal(p.status, 'pending_review');
    assert.equal(p.published_at, null);
    assertError(await anon(p), 404, 'not_found');
    assertError(await m.get(`/api/v1/products/${p.id}`, auth(other)), 404, 'not_found');
    assert.ok(!assertSuccess(await m.get('/api/v1/products?limit=100')).some((x) => x.id === p.id));
    assert.ok((await queue()).includes(p.id), 'pending_review by default');
    const res = await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin));
    const approved = assertSuccess(res);
    assert.equal(approved.status, 'active');
    assert.match(approved.published_at, RFC3339_UTC);
    assert.equal(assertSuccess(await anon(p)).status, 'active');
    assert.ok(!(await queue()).includes(p.id));
    assertError(await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin)), 409, 'not_pending_review');
    assertError(await m.post(`/api/v1/admin/products/${p.id}/reject`, { reason: 'too late' }, auth(mAdmin)), 409, 'not_pending_review');
    const [audit] = assertSuccess(await m.get(`/api/v1/admin/audit?target_id=${p.id}`, auth(mAdmin)));
    assert.deepEqual([audit.action, audit.actor_id, audit.request_id], ['product.approve', mAdmin.id, res.headers['x-request-id']]);

    const q = await createProduct(mSeller, body({ title: 'Dubious gadget' }), m);
    const waiting = await getProduct(q.id, mSeller, m);
    assertError(await m.post(`/api/v1/admin/products/${q.id}/reject`, undefined, auth(mAdmin)), 422, 'validation_failed');
    assertError(await m.post(`/api/v1/admin/products/${q.id}/reject`, { reason: 'no' }, auth(mAdmin)), 422, 'validation_failed');
    assert.deepEqual(await getProduct(q.id, mSeller, m), waiting, 'a refused decision changes nothing');
    const rejected = assertSuccess(await m.post(`/api/v1/admin/products/${q.id}/reject`, { reason: 'Photos of another product' }, auth(mAdmin)));
    assert.deepEqual([rejected.status, rejected.rejection_reason], ['rejected', 'Photos of another product']);
    assert.equal((await getProduct(q.id, mSeller, m)).rejection_reason, 'Photos of another product');
    assertError(await anon(q), 404, 'not_found');
    assert.ok((await queue('&status=rejected')).includes(q.id));
    assert.deepEqual(await events(m, q.id), ['product.created', 'product.rejected']);
    // edited, it is reviewed again, the old reason gone
    const again = await patch(q, { title: 'Honest gadget' });
    assert.deepEqual([again.status, again.rejection_reason], ['pending_review', null]);
    assert.ok((await queue()).includes(q.id));
    assertError(await m.post('/api/v1/admin/products/prod_00000000000000000000000000/approve', undefined, auth(mAdmin)), 404, 'not_found');
  });

  test('changing the content of a listed product sends it back to review; prices, stock and SKUs do not', async () => {
    const p = await createProduct(mSeller, body(), m);
    assertSuccess(await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin)));
    assertSuccess(await anon(p)); // in memory now
    let now = assertSuccess(await m.request('PATCH', `/api/v1/products/${p.id}/skus/${p.skus[0].id}`, { body: { price: 4_500, stock: 3 }, ...auth(mSeller) }));
    assert.equal(now.status, 'active');
    now = assertSuccess(await m.post(`/api/v1/products/${p.id}/skus`, { price: 6_000, currency: 'EGP', stock: 1, code: 'XL', attributes: { colour: 'blue' } }, auth(mSeller)), 201);
    assert.equal(now.status, 'active');
    assertSuccess(await m.request('DELETE', `/api/v1/products/${p.id}/skus/${now.skus[1].id}`, auth(mSeller)));
    const page = assertSuccess(await anon(p));
    assert.deepEqual([page.status, page.price, page.stock], ['active', 4_500, 3]);
    for (const change of [{ title: 'A new title' }, { description: 'New words' }, { brand: 'Other' }, { attributes: { colour: 'teal' } },
      { condition: 'used' }]) {
      const changed = await patch(p, change);
      assert.equal(changed.status, 'pending_review', JSON.stringify(change));
      assertError(await anon(p), 404, 'not_found'); // at once, though the page was in memory
      assertSuccess(await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin)));
      assert.equal(assertSuccess(await anon(p)).status, 'active');
    }
    // where it is sold from is not content
    assert.equal((await patch(p, { city: 'Giza' })).status, 'active');
    // a draft published waits for review too
    const d = await createProduct(mSeller, body({ status: 'draft' }), m);
    assert.equal(d.status, 'draft');
    assert.equal((await patch(d, { status: 'active' })).status, 'pending_review');
  });

  test('an image added to a listed product is reviewed before buyers see it', async () => {
    const p = await createProduct(mSeller, body(), m);
    assertSuccess(await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin)));
    assertSuccess(await anon(p));
    const img = assertSuccess(await m.post(`/api/v1/products/${p.id}/images`, png(300, 200), uploadOpts(mSeller, 'image/png')), 201);
    let now;
    await eventually('the image rendered', async () => {
      now = await getProduct(p.id, mSeller, m);
      return now.image_details[0].status === 'ready' || now.image_details;
    });
    assert.equal(now.status, 'pending_review');
    assertError(await anon(p), 404, 'not_found');
    assert.ok((await queue()).includes(p.id));
    assertSuccess(await m.post(`/api/v1/admin/products/${p.id}/approve`, undefined, auth(mAdmin)));
    const page = assertSuccess(await anon(p));
    assert.deepEqual(page.image_details.map((i) => i.id), [img.id]);
    // removing one needs no review
    const removed = assertSuccess(await m.request('DELETE', `/api/v1/products/${p.id}/images/${img.id}`, auth(mSeller)));
    assert.equal(removed.status, 'active');
  });

  test('image URLs start with --media-base-url', async () => {
    const p = await createProduct(mSeller, body(), m);
    const img = assertSuccess(await m.post(`/api/v1/products/${p.id}/images`, png(300, 200), uploadOpts(mSeller, 'image/png')), 201);
    let ready;
    await eventually('the image rendered', async () => {
      ready = (await getProduct(p.id, mSeller, m)).image_details.find((i) => i.id === img.id);
      return ready.status === 'ready' || ready;
    });
    assert.deepEqual(Object.keys(ready.urls), ['240']);
    assert.equal(ready.urls['240'], `https://cdn.example.test/media/products/${p.id}/${img.id}/240.webp`);
    const file = await m.get(ready.urls['240'].slice('https://cdn.example.test'.length));
    assert.equal(file.status, 200);
    assert.equal(webpWidth(file.body), 240);
  });
});

// ---------------------------------------------------------------- images

test('images: PNG and JPEG uploads become WebP renditions no wider than the original, served from /media', async () => {
  const p = await createProduct(seller);
  const anon = async () => assertSuccess(await s.get(`/api/v1/products/${p.id}`));
  assert.deepEqual((await anon()).images, []); // in memory now
  const cases = [
    ['image/png', png(1500, 400), 1500, 400, ['1280', '240', '640']],
    ['image/jpeg', jpeg(700, 300), 700, 300, ['240', '640']],
    ['image/png', png(100, 80), 100, 80, ['100']],
  ];
  const uploaded = [];
  for (const [type, bytes] of cases) {
    const img = assertSuccess(await s.post(`/api/v1/products/${p.id}/images`, bytes, uploadOpts(seller, type)), 201);
    assert.match(img.id, /^img_/);
    assert.deepEqual([img.product_id, img.status, img.content_type, img.bytes], [p.id, 'processing', type, bytes.length]);
    uploaded.push(img);
  }
  let details;
  await eventually('every image rendered', async () => {
    details = (await getProduct(p.id, seller)).image_details;
    return details.every((i) => i.status === 'ready') || details.map((i) => i.status);
  }, 20_000);
  assert.deepEqual(details.map((i) => i.id), uploaded.map((i) => i.id), 'in upload order');
  for (const [i, [, , width, height, widths]] of cases.entries()) {
    const d = details[i];
    assert.deepEqual([d.width, d.height], [width, height]);
    assert.deepEqual(Object.keys(d.urls).sort(), widths);
    for (const [w, url] of Object.entries(d.urls)) {
      assert.equal(url, `${s.url}/media/products/${p.id}/${d.id}/${w}.webp`);
      const file = await s.get(url.slice(s.url.length));
      assert.equal(file.status, 200, url);
      assert.equal(file.headers['content-type'], 'image/webp');
      assert.match(file.headers['cache-control'], /immutable/);
      assert.equal(webpWidth(file.body), Number(w), `${url} is a WebP ${w} wide`);
      assert.ok(Number(w) <= width);
    }
  }
  // the anonymous page shows them at once (the job forgot the page in memory): the largest of each
  assert.deepEqual((await anon()).images, details.map((d) => d.urls[String(Math.max(...Object.keys(d.urls).map(Number)))]));
  // originals are not served
  assertError(await s.get(`/media/products/${p.id}/${uploaded[0].id}/original`), 404, 'not_found');
  assertError(await s.get(`/media/products/${p.id}/${uploaded[0].id}/999.webp`), 404, 'not_found');

  // removing one: gone from the page and from /media
  const gone = details[1];
  const remaining = assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/images/${gone.id}`, auth(seller)));
  assert.deepEqual(remaining.image_details.map((i) => i.id), [details[0].id, details[2].id]);
  assert.equal((await anon()).images.length, 2);
  for (const url of Object.values(gone.urls)) assertError(await s.get(url.slice(s.url.length)), 404, 'not_found');
  assertError(await s.request('DELETE', `/api/v1/products/${p.id}/images/${gone.id}`, auth(seller)), 404, 'not_found');
  assertError(await s.request('DELETE', `/api/v1/products/${p.id}/images/${details[0].id}`, auth(seller2)), 403, 'not_product_owner');
});

test('images: what is not an image is refused (415 unsupported_image) and nothing is added; an unreadable one fails', async () => {
  const p = await createProduct(seller);
  const before = await getProduct(p.id, seller);
  for (const [type, bytes] of [['text/plain', Buffer.from('hello, world')], ['image/png', Buffer.from('%PDF-1.4\n%fake\n')],
    ['image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')], ['application/octet-stream', crypto.randomBytes(256)]]) {
    const e = assertError(await s.post(`/api/v1/products/${p.id}/images`, bytes, uploadOpts(seller, type)), 415, 'unsupported_image');
    assert.equal(e.details.content_type, type);
  }
  assertError(await s.post(`/api/v1/products/${p.id}/images`, Buffer.alloc(0), uploadOpts(seller, 'image/png')), 422, 'validation_failed');
  assertError(await s.post('/api/v1/products/prod_00000000000000000000000000/images', png(10, 10), uploadOpts(seller, 'image/png')), 404, 'not_found');
  assert.deepEqual(await getProduct(p.id, seller), before, 'nothing changed');
  // a PNG signature on garbage is taken, then fails in the job, and is never shown to buyers
  const bad = assertSuccess(await s.post(`/api/v1/products/${p.id}/images`,
    Buffer.concat([png(10, 10).subarray(0, 8), crypto.randomBytes(400)]), uploadOpts(seller, 'image/png')), 201);
  await eventually('the job gives up on it', async () => {
    const d = (await getProduct(p.id, seller)).image_details.find((i) => i.id === bad.id);
    return d.status === 'failed' || d;
  }, 20_000);
  // so does one declaring more pixels than are ever rendered (from its header)
  const bomb = assertSuccess(await s.post(`/api/v1/products/${p.id}/images`, pngDeclaring(30_000, 30_000), uploadOpts(seller, 'image/png')), 201);
  await eventually('the job refuses the huge one', async () => {
    const d = (await getProduct(p.id, seller)).image_details.find((i) => i.id === bomb.id);
    return d.status === 'failed' || d;
  }, 20_000);
  const pub = assertSuccess(await s.get(`/api/v1/products/${p.id}`));
  assert.deepEqual([pub.images, pub.image_details], [[], []]);
});

test('images: at most 10 per product (422 too_many_images)', async () => {
  const p = await createProduct(seller);
  for (let i = 0; i < 10; i++) assertSuccess(await s.post(`/api/v1/products/${p.id}/images`, png(16 + i, 16), uploadOpts(seller, 'image/png')), 201);
  const ten = (await getProduct(p.id, seller)).image_details.map((i) => i.id);
  assert.equal(ten.length, 10);
  assertError(await s.post(`/api/v1/products/${p.id}/images`, png(8, 8), uploadOpts(seller, 'image/png')), 422, 'too_many_images');
  assert.deepEqual((await getProduct(p.id, seller)).image_details.map((i) => i.id), ten);
});

// ---------------------------------------------------------------- reviews

test('reviews: only buyers who bought the product review it (403 not_purchased); the list starts empty', async () => {
  const p = await createProduct(seller);
  const before = await getProduct(p.id, seller);
  const e = assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 5, title: 'Great', body: 'Works well' }, auth(buyer)), 403, 'not_purchased');
  assert.ok(e.message.length > 0);
  assertError(await s.post(`/api/v1/products/${p.id}/reviews`, { rating: 5 }, auth(seller)), 403, 'not_purchased');
  for (const bad of [{}, { rating: 0 }, { rating: 6 }, { rating: 4.5 }, { rating: '5' }, { rating: 5, body: 'x'.repeat(5001) }, { rating: 5, stars: 5 }])
    assertError(await s.post(`/api/v1/products/${p.id}/reviews`, bad, auth(buyer)), 422, 'validation_failed');
  assertError(await s.post('/api/v1/products/prod_00000000000000000000000000/reviews', { rating: 5 }, auth(buyer)), 404, 'not_found');
  const res = await s.get(`/api/v1/products/${p.id}/reviews`);
  assert.deepEqual(assertSuccess(res), []);
  assert.equal(res.json.meta.next_cursor, null);
  assert.deepEqual(await getProduct(p.id, seller), before, 'no rating counted');
  assertError(await s.get('/api/v1/products/prod_00000000000000000000000000/reviews'), 404, 'not_found');
  assertError(await s.post('/api/v1/reviews/rev_00000000000000000000000000/reply', { body: 'Thanks' }, auth(seller)), 404, 'not_found');
  assertError(await s.post('/api/v1/admin/reviews/rev_00000000000000000000000000/hide', { reason: 'abusive' }, auth(admin)), 404, 'not_found');
  assertError(await s.post('/api/v1/admin/reviews/rev_00000000000000000000000000/hide', undefined, auth(admin)), 422, 'validation_failed');
});

// Reviews after delivery (verified purchase, one per order line, aggregates, seller
// replies, hide and show) need orders: tests/api/orders.test.mjs covers them.

// ---------------------------------------------------------------- authorization and bad input

test('authorization matrix: every catalog route answers each kind of caller as it should', async () => {
  const A = ['anonymous', 'buyer', 'pending', 'owner', 'other', 'suspended', 'admin'];
  const actors = { anonymous: null, buyer, pending, owner: seller, other: seller2, suspended, admin };
  const t = tag();
  const cat = await createCategory({ name: 'Matrix', slug: `matrix-${t}` });
  const p = await createProduct(seller);
  const victim = await createProduct(seller); // deleted by its owner only
  const img = assertSuccess(await s.post(`/api/v1/products/${p.id}/images`, png(30, 30), uploadOpts(seller, 'image/png')), 201);
  const [sku, sku2] = p.skus;
  const review = 'rev_00000000000000000000000000';
  const image = (who) => uploadOpts(who, 'image/png');
  // [name, method, path, body, expected status per actor in A's order (null: not checked), 403 code, options]
  const rows = [
    ['the category tree', 'GET', '/api/v1/categories', undefined, [200, 200, 200, 200, 200, 200, 200]],
    ['add a category', 'POST', '/api/v1/admin/categories', { name: 'M', slug: `m-${t}` }, [401, 403, 403, 403, 403, 403, 201], 'forbidden'],
    ['change a category', 'PATCH', `/api/v1/admin/categories/${cat.id}`, { name: 'Matrix 2' }, [401, 403, 403, 403, 403, 403, 200], 'forbidden'],
    ['delete a category in use', 'DELETE', '/api/v1/admin/categories/phones', undefined, [401, 403, 403, 403, 403, 403, 409], 'forbidden'],
    ['list a product', 'POST', '/api/v1/products', phoneBody(), [401, 403, 403, 201, 201, 403, 403], 'seller_not_approved'],
    ['list products', 'GET', '/api/v1/products', undefined, [200, 200, 200, 200, 200, 403, 200]],
    ['list own products', 'GET', '/api/v1/products?mine=true', undefined, [401, 200, 200, 200, 200, 403, 200]],
    ['a product page', 'GET', `/api/v1/products/${p.id}`, undefined, [200, 200, 200, 200, 200, 403, 200]],
    ['change a product', 'PATCH', `/api/v1/products/${p.id}`, { city: 'Giza' }, [401, 403, 403, 200, 403, 403, 200], 'not_product_owner'],
    ['replace a product', 'PUT', `/api/v1/products/${p.id}`, { city: 'Luxor' }, [401, 403, 403, 200, 403, 403, 200], 'not_product_owner'],
    ['delete a product', 'DELETE', `/api/v1/products/${victim.id}`, undefined, [401, 403, 403, null, 403, 403, null], 'not_product_owner'],
    ['add a SKU', 'POST', `/api/v1/products/${p.id}/skus`, { price: 1, currency: 'EGP', stock: 1, attributes: { color: 'gold' } },
      [401, 403, 403, null, 403, 403, null], 'not_product_owner'],
    ['change a SKU', 'PATCH', `/api/v1/products/${p.id}/skus/${sku.id}`, { stock: 7 }, [401, 403, 403, 200, 403, 403, 200], 'not_product_owner'],
    ['delete a SKU', 'DELETE', `/api/v1/products/${p.id}/skus/${sku2.id}`, undefined, [401, 403, 403, null, 403, 403, null], 'not_product_owner'],
    ['upload an image', 'POST', `/api/v1/products/${p.id}/images`, png(12, 12), [401, 403, 403, null, 403, 403, null], 'not_product_owner', image],
    ['delete an image', 'DELETE', `/api/v1/products/${p.id}/images/${img.id}`, undefined, [401, 403, 403, null, 403, 403, null], 'not_product_owner'],
    ['reviews of a product', 'GET', `/api/v1/products/${p.id}/reviews`, undefined, [200, 200, 200, 200, 200, 200, 200]],
    ['review a product', 'POST', `/api/v1/products/${p.id}/reviews`, { rating: 5 }, [401, 403, 403, 403, 403, 403, 403], 'not_purchased'],
    ['reply to a review', 'POST', `/api/v1/reviews/${review}/reply`, { body: 'Thanks' }, [401, 404, 404, 404, 404, 403, 404]],
    ['the moderation queue', 'GET', '/api/v1/admin/products', undefined, [401, 403, 403, 403, 403, 403, 200], 'forbidden'],
    ['approve a product', 'POST', `/api/v1/admin/products/${p.id}/approve`, undefined, [401, 403, 403, 403, 403, 403, 409], 'forbidden'],
    ['reject a product', 'POST', `/api/v1/admin/products/${p.id}/reject`, { reason: 'not allowed' }, [401, 403, 403, 403, 403, 403, 409], 'forbidden'],
    ['hide a review', 'POST', `/api/v1/admin/reviews/${review}/hide`, { reason: 'abusive' }, [401, 403, 403, 403, 403, 403, 404], 'forbidden'],
    ['show a review', 'POST', `/api/v1/admin/reviews/${review}/show`, { reason: 'fine after all' }, [401, 403, 403, 403, 403, 403, 404], 'forbidden'],
  ];
  const failures = [];
  for (const [name, method, urlPath, body, expected, code, opts] of rows) {
    for (let i = 0; i < A.length; i++) {
      if (expected[i] === null) continue;
      const who = actors[A[i]];
      const res = await s.request(method, urlPath, { body, ...(opts ? opts(who) : auth(who)) });
      if (res.status !== expected[i]) failures.push(`${name} as ${A[i]}: ${res.status} (expected ${expected[i]}) ${res.text.slice(0, 140)}`);
      else if (res.status === 401 && res.json?.error?.code !== 'unauthenticated') failures.push(`${name} as ${A[i]}: ${res.json?.error?.code}`);
      else if (res.status === 403 && A[i] === 'suspended' && res.json?.error?.code !== 'account_suspended') failures.push(`${name} as suspended: ${res.json?.error?.code}`);
      else if (res.status === 403 && A[i] !== 'suspended' && res.json?.error?.code !== code) failures.push(`${name} as ${A[i]}: ${res.json?.error?.code} (expected ${code})`);
    }
  }
  assert.deepEqual(failures, []);
  // the owner's rows, last: a SKU, an image, the product itself
  assertSuccess(await s.post(`/api/v1/products/${p.id}/images`, png(12, 12), image(seller)), 201);
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/images/${img.id}`, auth(seller)));
  assertSuccess(await s.request('DELETE', `/api/v1/products/${p.id}/skus/${sku2.id}`, auth(seller)));
  assertSuccess(await s.request('DELETE', `/api/v1/products/${victim.id}`, auth(seller)));
  // media is public
  await eventually('the image rendered', async () => (await getProduct(p.id, seller)).image_details.every((i) => i.status === 'ready'));
  const [rendered] = (await getProduct(p.id, seller)).image_details;
  const url = Object.values(rendered.urls)[0].slice(s.url.length);
  assert.equal((await s.get(url)).status, 200);
  assert.equal((await s.get(url, auth(suspended))).status, 200);
});

test('bad input: each case a 4xx with a stable code, and nothing changes', async () => {
  const p = await createProduct(seller);
  const sku = p.skus[0].id;
  const watched = () => state(
    [`/api/v1/products/${p.id}`, seller], [`/api/v1/products/${p.id}`], ['/api/v1/products?mine=true&limit=100', seller],
    ['/api/v1/categories'], ['/api/v1/admin/products?status=active&limit=100', admin],
  );
  const before = await watched();
  const raw = (who, type = 'application/json') => ({ raw: true, headers: { ...auth(who).headers, 'Content-Type': type } });
  const cases = [
    // [method, path, body, who, status, code, options]
    ['POST', '/api/v1/products', '{"title": "broken', seller, 400, null, raw(seller)],
    ['POST', '/api/v1/products', [phoneBody()], seller, 400, 'invalid_body'],
    ['POST', '/api/v1/products', phoneBody({ title: 'x' }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ title: undefined }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ colour: 'red' }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ category: 'Phones!' }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ category: 'no-such-category' }), seller, 422, 'unknown_category'],
    ['POST', '/api/v1/products', phoneBody({ condition: 'broken' }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ status: 'archived' }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ lat: 30, lng: undefined }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ lat: 95, lng: 31 }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ attributes: ['x'] }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ attributes: { 'Bad Key': 1 } }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ attributes: { brand_name: '' } }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ attributes: { brand_name: { nested: 1 } } }), seller, 422, 'validation_failed'],
    ['POST', '/api/v1/products', phoneBody({ description: 'x'.repeat(10_001) }), seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}`, {}, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}`, { skus: [] }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}`, { status: 'pending_review' }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}`, { status: 'rejected' }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}`, { title: 'ok title', category: 'no-such-category' }, seller, 422, 'unknown_category'],
    ['PATCH', `/api/v1/products/${p.id}`, { title: 'ok title', attributes: { storage_gb: 'many' } }, seller, 422, 'invalid_attributes'],
    ['PATCH', `/api/v1/products/${p.id}`, { title: 'ok title', attributes: { brand_name: 'Nile' } }, seller, 422, 'invalid_attributes'],
    ['PATCH', `/api/v1/products/${p.id}`, 'null', seller, 400, 'invalid_body', raw(seller)],
    ['PATCH', `/api/v1/products/${p.id}/skus/${sku}`, '[1]', seller, 400, 'invalid_body', raw(seller)],
    ['POST', '/api/v1/admin/categories', '"phones"', admin, 400, 'invalid_body', raw(admin)],
    ['PATCH', '/api/v1/products/prod_00000000000000000000000000', { title: 'Nothing here' }, seller, 404, 'not_found'],
    ['PATCH', '/api/v1/products/not-an-id', { title: 'Nothing here' }, seller, 404, 'not_found'],
    ['PATCH', `/api/v1/products/${p.id}/skus/${sku}`, { price: 0 }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}/skus/${sku}`, { stock: -5 }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}/skus/${sku}`, { price: 100, size: 'XL' }, seller, 422, 'validation_failed'],
    ['PATCH', `/api/v1/products/${p.id}/skus/sku_00000000000000000000000000`, { price: 100 }, seller, 404, 'not_found'],
    ['DELETE', `/api/v1/products/${p.id}/skus/sku_00000000000000000000000000`, undefined, seller, 404, 'not_found'],
    ['DELETE', `/api/v1/products/${p.id}/images/img_00000000000000000000000000`, undefined, seller, 404, 'not_found'],
    ['POST', `/api/v1/products/${p.id}/skus`, { price: 100, currency: 'EGP' }, seller, 422, 'validation_failed'],
    ['GET', '/api/v1/products?status=bogus', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/products?seller=someone', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/products?category=Not%20a%20slug', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/products?limit=0', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/products?limit=101', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/products?cursor=not-a-cursor', undefined, null, 422, 'validation_failed'],
    ['GET', '/api/v1/admin/products?status=bogus', undefined, admin, 422, 'validation_failed'],
    ['GET', '/api/v1/products/prod_00000000000000000000000000', undefined, null, 404, 'not_found'],
    ['POST', '/api/v1/admin/categories', { name: '', slug: 'empty-name' }, admin, 422, 'validation_failed'],
    ['POST', '/api/v1/admin/categories', { name: 'Bad slug', slug: 'Bad Slug' }, admin, 422, 'validation_failed'],
    ['POST', '/api/v1/admin/categories', { name: 'No slug' }, admin, 422, 'validation_failed'],
    ['POST', '/api/v1/admin/categories', { name: 'Orphan', slug: `orphan-${tag()}`, parent: 'no-such-parent' }, admin, 422, 'unknown_category'],
    ['POST', '/api/v1/admin/categories', { name: 'Odd', slug: `odd-${tag()}`, position: 1.5 }, admin, 422, 'validation_failed'],
    ['POST', '/api/v1/admin/categories', { name: 'Odd', slug: `odd-${tag()}`, icon: 'x' }, admin, 422, 'validation_failed'],
    ['PATCH', '/api/v1/admin/categories/phones', {}, admin, 422, 'validation_failed'],
    ['PATCH', '/api/v1/admin/categories/no-such-category', { name: 'X' }, admin, 404, 'not_found'],
    ['DELETE', '/api/v1/admin/categories/no-such-category', undefined, admin, 404, 'not_found'],
    ['POST', `/api/v1/admin/products/${p.id}/reject`, { reason: 'x'.repeat(1001) }, admin, 422, 'validation_failed'],
    ['POST', `/api/v1/admin/products/${p.id}/approve`, { note: 'hi' }, admin, 422, 'validation_failed'],
    ['POST', `/api/v1/reviews/rev_00000000000000000000000000/reply`, {}, seller, 422, 'validation_failed'],
  ];
  const failures = [];
  for (const [method, urlPath, body, who, status, code, opts] of cases) {
    const res = await s.request(method, urlPath, { body, ...(opts ?? auth(who)) });
    if (res.status !== status || (code && res.json?.error?.code !== code) || res.json?.status !== 'error' || !res.json?.error?.code)
      failures.push(`${method} ${urlPath} ${JSON.stringify(body)?.slice(0, 80)}: ${res.status} ${res.text.slice(0, 200)} (expected ${status} ${code})`);
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(await watched(), before, 'nothing changed');
});
