// Search (issue 7): products and sellers found by their words (ranked, with
// typo tolerance), every filter (categories with their descendants), every
// sort, exact facet counts, cursor pages without duplicates or gaps, an index
// that follows changes within seconds, bad input, and `souq search reindex`
// rebuilding a wiped index.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSouq, assertSuccess, assertError, SOUQ_BIN } from './harness.mjs';
import { auth, register, makeAdmin, makeSeller, makePendingSeller, suspend, eventually, withKey } from './people.mjs';

let s, admin, seller, seller2;
const cat = {}; // slug → category
const p = {}; // name → product

// Anonymous results may come from a one-second page cache, which an index
// change on the server drops; signed-in callers (`who`) always read through.
const search = async (qs, who) => {
  const res = await s.get(`/api/v1/search?${qs}`, auth(who));
  return { ...assertSuccess(res), next: res.json.meta.next_cursor };
};
const ids = (r) => r.items.map((h) => h.id);
const sorted = (list) => [...list].sort();
const same = (a, b) => assert.deepEqual(sorted(a), sorted(b));

async function category(body) {
  const c = assertSuccess(await s.post('/api/v1/admin/categories', body, auth(admin)), 201);
  cat[body.slug] = c;
  return c;
}

function productBody(over = {}) {
  return {
    title: 'A product', description: '', category: 'misc', condition: 'new', city: 'Cairo',
    skus: [{ price: 100_000, currency: 'EGP', stock: 5 }], ...over,
  };
}

async function product(who, over) {
  return assertSuccess(await s.post('/api/v1/products', productBody(over), auth(who)), 201);
}

// Waits until search finds exactly `expected` (ids) for this query.
async function settles(qs, expected, what = qs) {
  await eventually(`search ${what}`, async () => {
    const got = ids(await search(`${qs}&limit=100`));
    return JSON.stringify(sorted(got)) === JSON.stringify(sorted(expected)) || got;
  });
}

const fillers = [];

before(async () => {
  s = await startSouq();
  admin = await makeAdmin(s);
  seller = await makeSeller(s, admin, 'Nile');
  seller2 = await makeSeller(s, admin, 'Delta');
  await category({
    name: 'Electronics', slug: 'electronics',
    attributes: [{ key: 'color', type: 'enum', values: ['black', 'white', 'red'], facet: true }],
  });
  await category({ name: 'Audio', slug: 'audio', parent: 'electronics', attributes: [{ key: 'wireless', type: 'boolean', facet: true }] });
  await category({ name: 'Headphones', slug: 'headphones', parent: 'audio' });
  await category({
    name: 'Phones', slug: 'phones', parent: 'electronics',
    attributes: [{ key: 'storage', type: 'enum', values: ['64', '128', '256'] }],
  });
  await category({ name: 'Furniture', slug: 'furniture' });
  await category({ name: 'Miscellaneous', slug: 'misc' });

  p.sony = await product(seller, {
    title: 'Sony WH-1000XM5 wireless headphones', description: 'Noise cancelling, 30 hours of battery.', brand: 'Sony',
    category: 'headphones', attributes: { color: 'black', wireless: true }, city: 'Cairo', lat: 30.0444, lng: 31.2357,
    skus: [{ price: 1_200_000, currency: 'EGP', stock: 3 }],
  });
  p.bose = await product(seller, {
    title: 'Bose QuietComfort headphones', description: 'Comfortable for long flights.', brand: 'Bose',
    category: 'headphones', attributes: { color: 'white', wireless: true }, condition: 'used', city: 'Alexandria',
    lat: 31.2001, lng: 29.9187, skus: [{ price: 900_000, currency: 'EGP', stock: 1 }],
  });
  p.yamaha = await product(seller, {
    title: 'Yamaha studio monitor speakers', description: 'Pairs well with headphones for mixing.', brand: 'Yamaha',
    category: 'audio', attributes: { color: 'black', wireless: false }, city: 'Giza', lat: 30.0131, lng: 31.2089,
    skus: [{ price: 450_000, currency: 'EGP', stock: 2 }],
  });
  p.galaxy = await product(seller, {
    title: 'Samsung Galaxy phone', description: 'Refurbished, like new.', brand: 'Samsung', category: 'phones',
    attributes: { color: 'black', storage: '128' }, condition: 'refurbished', city: 'cairo',
    skus: [
      { price: 2_500_000, currency: 'EGP', stock: 4, attributes: { color: 'black' } },
      { price: 2_600_000, currency: 'EGP', stock: 4, attributes: { color: 'white' } },
    ],
  });
  p.table = await product(seller2, {
    title: 'Oak dining table', description: 'Seats six.', category: 'furniture', condition: 'used', city: 'Cairo',
    skus: [{ price: 300_000, currency: 'EGP', stock: 1 }],
  });
  p.lamp = await product(seller2, {
    title: 'Brass desk lamp', description: 'Sold out for now.', brand: 'Lumo', category: 'furniture', city: 'Giza',
    skus: [{ price: 80_000, currency: 'EGP', stock: 0 }],
  });
  // Gadgets to page through: prices repeat, so ties are broken by id.
  for (let i = 0; i < 23; i++) {
    fillers.push((await product(seller2, {
      title: `Pocket gadget number ${i}`, description: i % 2 ? 'gadget gadget gadget' : 'A small thing.',
      brand: `Brand${i % 3}`, category: 'misc', skus: [{ price: 100_000 + (i % 5) * 1000, currency: 'USD', stock: 1 }],
    })).id);
  }
  await settles('q=gadget', fillers);
  await settles('category=electronics', [p.sony.id, p.bose.id, p.yamaha.id, p.galaxy.id]);
  await settles('category=furniture', [p.table.id, p.lamp.id]);
});
after(async () => { await s?.stop(); });

test('words find products, best match first; hits carry what a results page shows', async () => {
  const r = await search('q=headphones');
  same(ids(r), [p.sony.id, p.bose.id, p.yamaha.id]);
  assert.equal(r.total, 3);
  assert.equal(r.items.at(-1).id, p.yamaha.id, 'a word in the description ranks below one in the title');
  assert.deepEqual(r.expanded, {});
  const hit = r.items.find((h) => h.id === p.sony.id);
  assert.equal(hit.title, 'Sony WH-1000XM5 wireless headphones');
  assert.equal(hit.price, 1_200_000);
  assert.equal(hit.price_max, 1_200_000);
  assert.equal(hit.currency, 'EGP');
  assert.equal(hit.brand, 'Sony');
  assert.equal(hit.image, null);
  assert.deepEqual(hit.seller, { id: seller.id, name: 'Nile trading' });
  assert.deepEqual(hit.category, { id: cat.headphones.id, slug: 'headphones', name: 'Headphones' });
  assert.deepEqual(hit.rating, { average: null, count: 0 });
  assert.equal(hit.city, 'Cairo');
  assert.deepEqual(hit.location, { lat: 30.0444, lng: 31.2357 });
  assert.equal(hit.in_stock, true);
  // Every word must match; case, accents and punctuation do not matter.
  same(ids(await search('q=SONY%20headphones')), [p.sony.id]);
  same(ids(await search('q=wh-1000xm5')), [p.sony.id]);
  same(ids(await search('q=s%C3%B3ny')), [p.sony.id], 'sóny folds to sony');
  same(ids(await search('q=sony%20table')), []);
  // Brand, category names (of every ancestor) and attribute values are words too.
  same(ids(await search('q=yamaha')), [p.yamaha.id]);
  same(ids(await search('q=electronics%20audio')), [p.sony.id, p.bose.id, p.yamaha.id]);
  same(ids(await search('q=white')), [p.bose.id, p.galaxy.id], "the Galaxy's white SKU");
});

test('typos: a word of 5+ letters that no product has finds words one or two edits away; short words are exact', async () => {
  const r = await search('q=hedphones');
  same(ids(r), [p.sony.id, p.bose.id, p.yamaha.id]);
  assert.deepEqual(r.expanded, { hedphones: ['headphones'] });
  same(ids(await search('q=haedphones')), [p.sony.id, p.bose.id, p.yamaha.id], 'two letters swapped');
  same(ids(await search('q=headphnes%20sony')), [p.sony.id]);
  same(ids(await search('q=tabel')), [p.table.id], 'five letters, one swap');
  same(ids(await search('q=speekers')), [p.yamaha.id]);
  same(ids(await search('q=hedfonez')), [], 'three edits is too many');
  same(ids(await search('q=tabl')), [], 'four letters: not fuzzed');
  same(ids(await search('q=lampss')), [], 'six letters: one edit only');
  assert.deepEqual((await search('q=table')).expanded, {}, 'a word that exists is not expanded');
  same(ids(await search('q=wh-1000xm6')), [], 'words with digits are exact');
});

test('filters: category with its descendants (by slug or id), price, attributes, seller, condition, city, brand, stock', async () => {
  same(ids(await search('category=electronics')), [p.sony.id, p.bose.id, p.yamaha.id, p.galaxy.id]);
  same(ids(await search('category=audio')), [p.sony.id, p.bose.id, p.yamaha.id]);
  same(ids(await search(`category=${cat.audio.id}`)), [p.sony.id, p.bose.id, p.yamaha.id]);
  same(ids(await search('category=headphones')), [p.sony.id, p.bose.id]);
  same(ids(await search('category=phones&q=headphones')), []);
  same(ids(await search('currency=EGP&min_price=500000&max_price=1500000')), [p.sony.id, p.bose.id]);
  same(ids(await search('currency=EGP&min_price=900000&max_price=1200000')), [p.sony.id, p.bose.id], 'bounds are inclusive');
  same(ids(await search('currency=EGP&max_price=300000')), [p.table.id, p.lamp.id]);
  same(ids(await search('currency=USD&max_price=300000&category=electronics')), []);
  same(ids(await search('attr.color=black')), [p.sony.id, p.yamaha.id, p.galaxy.id]);
  same(ids(await search('attr.color=white')), [p.bose.id, p.galaxy.id], 'a SKU attribute counts');
  same(ids(await search('attr.color=red,WHITE')), [p.bose.id, p.galaxy.id], 'any of, case-insensitive');
  same(ids(await search('attr.color=red&attr.color=white')), [p.bose.id, p.galaxy.id], 'repeated is any of too');
  same(ids(await search('attr.color=black&attr.wireless=true')), [p.sony.id]);
  same(ids(await search('attr.storage=128')), [p.galaxy.id]);
  same(ids(await search(`seller=${seller2.id}&category=furniture`)), [p.table.id, p.lamp.id]);
  same(ids(await search(`seller=${seller.id}&q=table`)), []);
  same(ids(await search('condition=used')), [p.bose.id, p.table.id]);
  same(ids(await search('condition=used,refurbished')), [p.bose.id, p.galaxy.id, p.table.id]);
  same(ids(await search('city=CAIRO&category=electronics')), [p.sony.id, p.galaxy.id]);
  same(ids(await search('city=giza,alexandria&category=electronics')), [p.bose.id, p.yamaha.id]);
  same(ids(await search('brand=sony,bose')), [p.sony.id, p.bose.id]);
  same(ids(await search('category=furniture&in_stock=true')), [p.table.id]);
  same(ids(await search('category=furniture&in_stock=false')), [p.table.id, p.lamp.id]);
});

test('distance: within radius_km of a point, each hit with its distance', async () => {
  const r = await search('lat=30.0444&lng=31.2357&radius_km=20');
  same(ids(r), [p.sony.id, p.yamaha.id], 'Cairo and Giza, not Alexandria (180 km) nor products without a point');
  assert.equal(r.items.find((h) => h.id === p.sony.id).distance_km, 0);
  const giza = r.items.find((h) => h.id === p.yamaha.id).distance_km;
  assert.ok(giza > 3 && giza < 5, `Giza is about 4 km away: ${giza}`);
  same(ids(await search('lat=30.0444&lng=31.2357&radius_km=200')), [p.sony.id, p.yamaha.id, p.bose.id]);
  same(ids(await search('lat=30.0444&lng=31.2357&radius_km=1')), [p.sony.id]);
  same(ids(await search('lat=30.0444&lng=31.2357&radius_km=4')), [p.sony.id], 'Giza is inside the box around the point, yet 4.3 km away');
});

test('sorts: newest by default, relevance with words, price both ways, rating', async () => {
  const electronics = [p.sony, p.bose, p.yamaha, p.galaxy].map((x) => x.id);
  assert.deepEqual(ids(await search('category=electronics')), [...electronics].reverse(), 'newest first');
  assert.deepEqual(ids(await search('category=electronics&sort=price_asc')), [p.yamaha.id, p.bose.id, p.sony.id, p.galaxy.id]);
  assert.deepEqual(ids(await search('category=electronics&sort=price_desc')), [p.galaxy.id, p.sony.id, p.bose.id, p.yamaha.id]);
  assert.deepEqual(ids(await search('category=electronics&sort=rating')), [...electronics].sort().reverse(),
    'unrated: ties broken by id, newest first');
  const relevance = ids(await search('q=gadget&limit=100'));
  const odd = fillers.filter((_, i) => i % 2);
  // Every filler has "gadget" in its title; the odd ones also in their description.
  assert.deepEqual(sorted(relevance.slice(0, odd.length)), sorted(odd), '"gadget" in two fields ranks above one');
  assert.deepEqual(ids(await search('q=gadget&sort=relevance&limit=100')), relevance);
  assert.deepEqual(ids(await search('q=gadget&sort=newest&limit=100')), [...fillers].reverse());
});

test('facets count the whole match exactly: child categories, brands, price buckets, attributes', async () => {
  const r = await search('category=electronics&limit=1');
  assert.equal(r.total, 4);
  assert.equal(r.items.length, 1);
  assert.deepEqual(r.facets.category, [
    { id: cat.audio.id, slug: 'audio', name: 'Audio', count: 3 },
    { id: cat.phones.id, slug: 'phones', name: 'Phones', count: 1 },
  ]);
  assert.deepEqual(r.facets.brand, [
    { value: 'Bose', count: 1 }, { value: 'Samsung', count: 1 }, { value: 'Sony', count: 1 }, { value: 'Yamaha', count: 1 },
  ]);
  assert.deepEqual(r.facets.price, [
    { currency: 'EGP', min: 200_000, max: 499_999, count: 1 },
    { currency: 'EGP', min: 500_000, max: 999_999, count: 1 },
    { currency: 'EGP', min: 1_000_000, max: 1_999_999, count: 1 },
    { currency: 'EGP', min: 2_000_000, max: 4_999_999, count: 1 },
  ]);
  // The category's facet attributes (color, from electronics; not storage).
  assert.deepEqual(r.facets.attributes, { color: [{ value: 'black', count: 3 }, { value: 'white', count: 2 }] });
  // Below audio: its child and the attributes it and its ancestors mark.
  const audio = await search('category=audio');
  assert.deepEqual(audio.facets.category, [{ id: cat.headphones.id, slug: 'headphones', name: 'Headphones', count: 2 }]);
  assert.deepEqual(audio.facets.attributes, {
    color: [{ value: 'black', count: 2 }, { value: 'white', count: 1 }],
    wireless: [{ value: 'true', count: 2 }, { value: 'false', count: 1 }],
  });
  assert.deepEqual((await search('category=headphones')).facets.attributes, {
    color: [{ value: 'black', count: 1 }, { value: 'white', count: 1 }], wireless: [{ value: 'true', count: 2 }],
  });
  assert.deepEqual((await search('category=electronics&brand=sony')).facets.attributes, { color: [{ value: 'black', count: 1 }] });
  // Named facets, with filters and words applied.
  const named = await search('q=headphones&facets=storage,wireless&attr.color=black');
  assert.equal(named.total, 2);
  assert.deepEqual(named.facets.attributes, { storage: [], wireless: [{ value: 'false', count: 1 }, { value: 'true', count: 1 }] });
  assert.deepEqual((await search('category=electronics&facets=')).facets.attributes, {});
  // Without a category: the roots; a bucket's bounds filter to exactly its count.
  const all = await search('limit=1');
  assert.equal(all.total, 6 + fillers.length);
  assert.deepEqual(all.facets.category.map((c) => [c.slug, c.count]), [['misc', fillers.length], ['electronics', 4], ['furniture', 2]]);
  const usd = all.facets.price.filter((b) => b.currency === 'USD');
  assert.deepEqual(usd, [{ currency: 'USD', min: 100_000, max: 199_999, count: fillers.length }]);
  for (const b of all.facets.price) {
    const within = await search(`currency=${b.currency}&min_price=${b.min}&max_price=${b.max}&limit=1`);
    assert.equal(within.total, b.count, JSON.stringify(b));
  }
});

test('cursor pages: every sort walks the whole match once, in order, without duplicates or gaps', async () => {
  // Words alone are ranked in the words' index; with a filter, beside the documents.
  for (const qs of ['q=gadget', 'q=gadget&currency=USD', 'q=gadget&sort=newest', 'q=gadget&sort=price_asc', 'q=gadget&sort=price_desc',
    'q=gadget&sort=rating', 'category=misc&sort=price_asc']) {
    const whole = ids(await search(`${qs}&limit=100`));
    assert.equal(whole.length, fillers.length, qs);
    const walked = [];
    let cursor = null;
    let pages = 0;
    do {
      const page = await search(`${qs}&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.ok(page.items.length <= 5);
      assert.equal(page.total, fillers.length, 'the total is the whole match on every page');
      walked.push(...ids(page));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 20);
    assert.deepEqual(walked, whole, qs);
    assert.equal(pages, 5, qs);
  }
  const prices = (await search('q=gadget&sort=price_asc&limit=100')).items.map((h) => h.price);
  assert.deepEqual(prices, [...prices].sort((a, b) => a - b));
  // A cursor belongs to its sort.
  const first = await search('q=gadget&sort=price_asc&limit=5');
  const err = assertError(await s.get(`/api/v1/search?q=gadget&sort=newest&cursor=${first.next}`), 422, 'validation_failed');
  assert.ok('cursor' in err.details.fields);
});

test('the index follows edits, SKU prices, archiving, deleting and category renames within seconds', async () => {
  const x = await product(seller, {
    title: 'Turquoise kettle', description: 'Boils fast.', brand: 'Kettlo', category: 'misc', city: 'Luxor',
    skus: [{ price: 55_000, currency: 'EGP', stock: 2 }],
  });
  await settles('q=turquoise', [x.id]);
  assertSuccess(await s.request('PATCH', `/api/v1/products/${x.id}`, { body: { title: 'Vermilion kettle' }, ...auth(seller) }));
  await settles('q=vermilion', [x.id]);
  await settles('q=turquoise', []);
  const sku = x.skus[0].id;
  assertSuccess(await s.request('PATCH', `/api/v1/products/${x.id}/skus/${sku}`, { body: { price: 65_000 }, ...auth(seller) }));
  await eventually('the new price', async () => (await search('q=vermilion')).items[0]?.price === 65_000);
  await settles('q=vermilion&currency=EGP&max_price=60000', []);
  assertSuccess(await s.request('PATCH', `/api/v1/products/${x.id}`, { body: { status: 'archived' }, ...auth(seller) }));
  await settles('q=vermilion', []);
  assertSuccess(await s.request('PATCH', `/api/v1/products/${x.id}`, { body: { status: 'active' }, ...auth(seller) }));
  await settles('q=vermilion', [x.id]);
  assertSuccess(await s.request('DELETE', `/api/v1/products/${x.id}`, auth(seller)));
  await settles('q=vermilion', []);
  await settles('q=kettlo', []);
  // A renamed category: its products' category names and hits follow.
  const c = await category({ name: 'Garden tools', slug: 'garden' });
  const rake = await product(seller, { title: 'Steel rake', category: 'garden' });
  await settles('q=garden', [rake.id]);
  assertSuccess(await s.request('PATCH', `/api/v1/admin/categories/${c.id}`, { body: { name: 'Outdoor supplies' }, ...auth(admin) }));
  await settles('q=outdoor', [rake.id]);
  await settles('q=garden', []);
  assert.equal((await search('q=rake')).items[0].category.name, 'Outdoor supplies');
});

test('sellers: approved businesses by name, city and description; pending and suspended ones are not found', async () => {
  let r = await search('type=sellers&q=nile');
  assert.deepEqual(ids(r), [seller.id]);
  const hit = r.items[0];
  assert.equal(hit.business_name, 'Nile trading');
  assert.equal(hit.city, 'Cairo');
  assert.equal(hit.verified, true);
  assert.equal(hit.product_count, (await search(`seller=${seller.id}&limit=1`)).total);
  assert.ok(hit.product_count >= 4);
  same(ids(await search('type=sellers&q=trading')), [seller.id, seller2.id]);
  same(ids(await search('type=sellers&q=delat')), [seller2.id], 'typos for sellers too');
  r = await search('type=sellers&city=cairo');
  assert.ok(r.total >= 2);
  assert.deepEqual(r.facets.city, [{ value: 'Cairo', count: r.total }]);
  // An application is found once approved, and not while the account is suspended.
  const pending = await makePendingSeller(s, 'Zithers');
  await new Promise((resolve) => setTimeout(resolve, 300));
  same(ids(await search('type=sellers&q=zithers')), []);
  const list = assertSuccess(await s.get('/api/v1/admin/seller-profiles?status=pending', auth(admin)));
  const profile = list.find((x) => x.user_id === pending.id);
  assertSuccess(await s.post(`/api/v1/admin/seller-profiles/${profile.id}/approve`, undefined, auth(admin)));
  await settles('type=sellers&q=zithers', [pending.id]);
  await suspend(s, admin, pending);
  await settles('type=sellers&q=zithers', []);
  assertSuccess(await s.post(`/api/v1/admin/users/${pending.id}/unsuspend`, { reason: 'cleared' }, auth(admin)));
  await settles('type=sellers&q=zithers', [pending.id]);
  // Newest first without words; cursor pages.
  const all = ids(await search('type=sellers&limit=100'));
  assert.equal(all[0], pending.id);
  const one = await search('type=sellers&limit=1');
  const two = await search(`type=sellers&limit=1&cursor=${one.next}`);
  assert.deepEqual([...ids(one), ...ids(two)], all.slice(0, 2));
});

test("in_stock follows checkouts and cancellations; a suspended seller's products leave the index and come back", async () => {
  const shop = await makeSeller(s, admin, 'Saffron');
  const x = await product(shop, { title: 'Saffron teapot', category: 'misc', skus: [{ price: 70_000, currency: 'EGP', stock: 1 }] });
  await settles('q=teapot&in_stock=true', [x.id]);
  // A buyer holds the last unit: the product is out of stock until the order is cancelled.
  const buyer = await register(s, 'tea-buyer');
  assertSuccess(await s.post('/api/v1/cart/items', { sku_id: x.skus[0].id, quantity: 1 }, auth(buyer)));
  const order = assertSuccess(await s.post('/api/v1/orders', {}, withKey(buyer)), 201).orders[0];
  await settles('q=teapot&in_stock=true', [], 'sold out');
  await settles('q=teapot', [x.id]);
  assert.equal((await search('q=teapot', admin)).items[0].in_stock, false);
  assertSuccess(await s.request('PUT', `/api/v1/orders/${order.id}/cancel`, auth(buyer)));
  await settles('q=teapot&in_stock=true', [x.id], 'back in stock');

  await suspend(s, admin, shop);
  await settles('q=teapot', [], "the suspended seller's product");
  await settles(`seller=${shop.id}`, []);
  assertSuccess(await s.post(`/api/v1/admin/users/${shop.id}/unsuspend`, { reason: 'cleared' }, auth(admin)));
  await settles('q=teapot', [x.id], 'the seller is back');
});

test('bad input is 422 validation_failed naming each parameter, with nothing searched', async () => {
  const bad = async (qs, fields) => {
    const e = assertError(await s.get(`/api/v1/search?${qs}`), 422, 'validation_failed');
    for (const f of fields) assert.ok(f in e.details.fields, `${qs}: ${f} in ${JSON.stringify(e.details.fields)}`);
    return e;
  };
  await bad('colour=red&type=things&sort=cheapest', ['colour', 'type', 'sort']);
  await bad('sort=relevance', ['sort']);
  await bad('min_price=100', ['currency']);
  await bad('currency=XYZ&min_price=-1&max_price=abc', ['currency', 'min_price', 'max_price']);
  await bad('currency=EGP&min_price=500&max_price=100', ['max_price']);
  await bad('lat=30&lng=31', ['radius_km']);
  await bad('lat=91&lng=31&radius_km=5', ['lat']);
  await bad(`q=${'a'.repeat(201)}`, ['q']);
  await bad('q=%21%21%21', ['q']);
  await bad(`q=${Array(11).fill('word').map((w, i) => w + i).join('+')}`, ['q']);
  await bad('category=Not%20A%20Slug&seller=abc&condition=mint&in_stock=maybe', ['category', 'seller', 'condition', 'in_stock']);
  await bad('category=no-such-category', ['category']);
  await bad('attr.Color=red&facets=Bad-Key', ['attr.Color', 'facets']);
  await bad('attr.color=', ['attr.color']);
  await bad('type=sellers&category=audio&attr.color=red&sort=price_asc', ['category', 'attr.color', 'sort']);
  await bad('q=a&q=b', ['q']);
  await bad('cursor=not-a-cursor', ['cursor']);
  await bad(`cursor=${Buffer.from('["newest",1,2]').toString('base64url')}`, ['cursor']);
  assertError(await s.get('/api/v1/search?limit=0'), 422, 'validation_failed');
  assertError(await s.get('/api/v1/search?limit=101'), 422, 'validation_failed');
});

test('souq search reindex rebuilds a wiped index', async () => {
  const before = await search('category=electronics&limit=100');
  const sellersBefore = await search('type=sellers&limit=100');
  const wipe = 'DELETE FROM search_product_attributes; DELETE FROM search_products; DELETE FROM search_sellers;' +
    ' DELETE FROM search_terms; DELETE FROM search_products_text; DELETE FROM search_sellers_text;';
  let wiped;
  if (s.engine === 'postgres') {
    wiped = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', s.dbUrl, '-c', wipe], { encoding: 'utf8' });
  } else {
    const file = s.dbUrl.replace(/^sqlite:/, '');
    wiped = spawnSync('sqlite3', ['-cmd', '.timeout 5000', file, wipe], { encoding: 'utf8' });
  }
  assert.equal(wiped.status, 0, wiped.stderr);
  // Changed by other processes: read through the page cache.
  const fresh = (qs) => search(qs, admin);
  assert.equal((await fresh('limit=1')).total, 0, 'the index is empty');
  assert.equal((await fresh('type=sellers&limit=1')).total, 0);
  same(ids(await fresh('q=hedphones')), [], 'the vocabulary went too');

  const run = spawnSync(SOUQ_BIN, ['search', 'reindex', '--database', s.dbUrl, '--batch', '7'],
    { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /indexing \[#+\] \d+\/\d+ documents/);
  assert.match(run.stdout, /indexed \d+ documents/);

  const afterwards = await fresh('category=electronics&limit=100');
  assert.deepEqual(afterwards.items, before.items);
  assert.deepEqual(afterwards.facets, before.facets);
  assert.deepEqual(ids(await fresh('type=sellers&limit=100')), ids(sellersBefore));
  same(ids(await fresh('q=hedphones')), [p.sony.id, p.bose.id, p.yamaha.id]);
  same(ids(await fresh('q=vermilion')), [], 'a deleted product stays out');

  // --fresh empties first, then the same index comes back.
  const again = spawnSync(SOUQ_BIN, ['search', 'reindex', '--fresh', '--database', s.dbUrl],
    { encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual((await fresh('category=electronics&limit=100')).items, before.items);
});
