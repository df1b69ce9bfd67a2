// Checks responses against docs/openapi.yaml. The harness calls
// checkResponse() for every JSON response a test receives through a server
// handle, so a route that answers something its description does not allow
// fails the test that saw it:
//   - a path+method in the spec: the body must match the schema for its status
//     (or the operation's `default`);
//   - a path or method not in the spec: the answer must be an error envelope
//     (an undocumented route that succeeds is a failure).
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import { REPO } from './harness.mjs';

export const SPEC_PATH = path.join(REPO, 'docs', 'openapi.yaml');
export const spec = YAML.parse(fs.readFileSync(SPEC_PATH, 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ $id: 'openapi.json', components: spec.components });

// "#/components/…" inside the spec, made absolute so ajv resolves them against the document.
function absolutise(schema) {
  if (Array.isArray(schema)) return schema.map(absolutise);
  if (schema && typeof schema === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(schema)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `openapi.json${v}` : absolutise(v);
    }
    return out;
  }
  return schema;
}

function resolveResponse(resp) {
  if (resp && resp.$ref) {
    const name = resp.$ref.split('/').pop();
    return spec.components.responses[name];
  }
  return resp;
}

const operations = []; // { method, re, template, op }
for (const [template, item] of Object.entries(spec.paths)) {
  const re = new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+') + '$');
  for (const [method, op] of Object.entries(item)) {
    operations.push({ method: method.toUpperCase(), re, template, op });
  }
}

const validators = new Map();
function validatorFor(key, schema) {
  if (!validators.has(key)) validators.set(key, ajv.compile(absolutise(schema)));
  return validators.get(key);
}
const errorEnvelope = validatorFor('ErrorEnvelope', { $ref: '#/components/schemas/ErrorEnvelope' });

export function findOperation(method, urlPath) {
  const p = urlPath.split('?')[0];
  const m = method === 'HEAD' ? 'GET' : method;
  // Literal segments win over parameters, as in souq's router: /requests/feed before /requests/{id}.
  const params = (o) => (o.template.match(/\{/g) || []).length;
  const onPath = operations.filter((o) => o.re.test(p)).sort((a, b) => params(a) - params(b));
  return { pathKnown: onPath.length > 0, operation: onPath.find((o) => o.method === m) };
}

export function checkResponse(method, urlPath, res) {
  const type = String(res.headers['content-type'] || '');
  if (!type.startsWith('application/json') || res.json === undefined) return;
  const { operation } = findOperation(method, urlPath);
  const where = `${method} ${urlPath} → ${res.status}`;
  if (!operation) {
    assert.ok(errorEnvelope(res.json) && res.status >= 400,
      `${where}: not in docs/openapi.yaml, so it must be an error envelope: ${res.text.slice(0, 300)}`);
    return;
  }
  const responses = operation.op.responses || {};
  const entry = resolveResponse(responses[String(res.status)] ?? responses.default);
  assert.ok(entry, `${where}: status ${res.status} is not described for ${operation.method} ${operation.template}`);
  const schema = entry.content?.['application/json']?.schema;
  if (!schema) return;
  const validate = validatorFor(`${operation.method} ${operation.template} ${res.status}`, schema);
  if (!validate(res.json)) {
    assert.fail(`${where}: body does not match docs/openapi.yaml: ${ajv.errorsText(validate.errors)}\n${res.text.slice(0, 500)}`);
  }
}
