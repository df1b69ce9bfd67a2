// docs/openapi.yaml: it is served by the binary, every schema in it compiles,
// and each documented route exists on a --dev server (the harness checks every
// response the other tests receive against it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startSouq } from './harness.mjs';
import { spec, SPEC_PATH, findOperation } from './openapi.mjs';

let souq;
before(async () => { souq = await startSouq(); });
after(async () => { await souq?.stop(); });

test('the binary serves docs/openapi.yaml as it is in the repository', async () => {
  const res = await souq.get('/api/v1/openapi.yaml');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^application\/yaml/);
  assert.equal(res.text, fs.readFileSync(SPEC_PATH, 'utf8'));
});

test('every documented GET route without parameters answers something other than 404/405', async () => {
  for (const [template, item] of Object.entries(spec.paths)) {
    if (!item.get || template.includes('{')) continue;
    const res = await souq.get(template);
    assert.ok(res.status !== 404 && res.status !== 405, `GET ${template} → ${res.status}`);
  }
});

test('an undocumented successful route would be caught', () => {
  assert.equal(findOperation('GET', '/api/v1/not-documented').pathKnown, false);
  assert.equal(findOperation('GET', '/api/v1/dev/items/7').operation.template, '/api/v1/dev/items/{id}');
  assert.equal(findOperation('DELETE', '/healthz').operation, undefined);
});
