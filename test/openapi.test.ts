import t from 'tap';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { problemCodes } from '../broker/core/errors.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
// webhook: false — WebhookDeliverer.close() right after start waits ~45 s (reported to the lead); not needed here.
const g = await startTestGateway(t, nats.url, { webhook: false });

const res = await g.gw.app.inject({ method: 'GET', url: '/docs/json' });
const doc = res.json<Record<string, any>>();

t.test('/docs/json is an OpenAPI 3.1 document that an independent validator accepts', async (t) => {
  t.equal(res.statusCode, 200);
  t.match(String(res.headers['content-type']), /^application\/json/);
  t.match(doc.openapi, /^3\.1\./);
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc));
  t.ok(result.valid, JSON.stringify(result.errors ?? null, null, 1).slice(0, 4000));
  t.equal(validator.version, '3.1');
});

t.test('every schema in the document is a valid JSON Schema 2020-12', async (t) => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema({ $id: 'https://liaison.invalid/doc', components: doc.components });
  const schemas: unknown[] = [];
  const walk = (v: unknown, key?: string) => {
    if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (v && typeof v === 'object') {
      if (key === 'schema') schemas.push(v);
      for (const [k, x] of Object.entries(v)) walk(x, k);
    }
  };
  walk(doc.paths);
  t.ok(schemas.length > 20, `${schemas.length} schemas`);
  for (const s of schemas) {
    const withRefs = JSON.parse(
      JSON.stringify(s).replaceAll('"#/components/', '"https://liaison.invalid/doc#/components/'),
    );
    t.doesNotThrow(() => ajv.compile(withRefs));
  }
});

t.test(
  'every operation has a summary, a description, tags, security, a success response and problem responses',
  async (t) => {
    const expected = [
      'get /healthz',
      'get /readyz',
      'get /v1/keys',
      'post /v1/notices',
      'get /v1/notices/{id}/proof',
      'get /v1/log/checkpoint',
      'get /v1/log/entries',
      'get /v1/log/proof/inclusion',
      'get /v1/log/proof/consistency',
      'get /v1/inbox',
      'get /v1/inbox/stream',
      'get /v1/registry/agencies/{id}/keys',
    ];
    const ops: string[] = [];
    for (const [url, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const name = `${method} ${url}`;
        ops.push(name);
        t.type(op.summary, 'string', `${name}: summary`);
        t.ok(String(op.description ?? '').length > 20, `${name}: description`);
        t.ok(Array.isArray(op.tags) && op.tags.length > 0, `${name}: tags`);
        t.ok(Array.isArray(op.security), `${name}: security is explicit`);
        t.ok(
          Object.keys(op.responses).some((c) => /^2(\d\d|XX)$/.test(c)),
          `${name}: a 2xx response`,
        );
        t.equal(
          op.responses['4XX']?.content?.['application/problem+json']?.schema?.$ref,
          '#/components/schemas/Problem',
          `${name}: 4XX problem`,
        );
        t.ok(
          doc.tags.some((tag: { name: string }) => tag.name === op.tags[0]),
          `${name}: tag declared`,
        );
      }
    }
    for (const e of expected) t.ok(ops.includes(e), `${e} is documented`);
    t.notOk(
      ops.some((o) => o.includes('/docs')),
      'the documentation routes are not in the document',
    );

    const reads = ops.filter((o) => /\/v1\/(log|inbox|registry)|proof$/.test(o));
    for (const o of reads) {
      const [m, u] = o.split(' ') as [string, string];
      t.same(doc.paths[u][m].security, [{ clientAssertion: [] }], `${o}: bearer client assertion`);
    }
    t.same(doc.paths['/v1/notices'].post.security, [], 'POST /v1/notices needs no bearer token');
    t.same(doc.paths['/v1/keys'].get.security, []);
    t.equal(doc.components.securitySchemes.clientAssertion.type, 'http');
    t.equal(doc.components.securitySchemes.clientAssertion.scheme, 'bearer');
    t.same(
      doc.components.schemas.Problem.properties.code.enum.sort(),
      Object.keys(problemCodes).sort(),
      'Problem.code lists every problem code',
    );
  },
);

t.test(
  'POST /v1/notices: the application/jose body and the receipt are described from the route schemas',
  async (t) => {
    const post = doc.paths['/v1/notices'].post;
    t.equal(post.requestBody.required, true);
    t.match(post.requestBody.description, /envelope/);
    t.equal(post.requestBody.content['application/jose'].schema.type, 'string');
    t.match(post.requestBody.content['application/jose'].schema.description, /JWE/);
    const receipt = post.responses['202'].content['application/json'].schema;
    t.same(receipt.required, ['receipt', 'notice_id', 'log_index', 'received_at', 'sha256', 'recipients']);
    t.same(doc.paths['/v1/inbox'].get.parameters.map((p: { name: string }) => p.name).sort(), [
      'after',
      'limit',
      'operation',
      'origin',
      'type',
    ]);
  },
);

t.test('the body schema does not change what the notice route accepts or refuses', async (t) => {
  const r = await g.post('not a jwe');
  t.equal(r.status, 400);
  t.equal(r.json.code, 'envelope-malformed');
  const u = await g.post('{"id":"x"}', 'application/json');
  t.equal(u.status, 415);
  t.equal(u.json.code, 'unsupported-media-type');
});

t.test('/docs serves the interactive page', async (t) => {
  const page = await g.gw.app.inject({ method: 'GET', url: '/docs/' });
  const html =
    page.statusCode === 302 ? await g.gw.app.inject({ method: 'GET', url: String(page.headers.location) }) : page;
  t.equal(html.statusCode, 200);
  t.match(html.body, /swagger-ui|Swagger UI/i);
  const yaml = await g.gw.app.inject({ method: 'GET', url: '/docs/yaml' });
  t.equal(yaml.statusCode, 200);
  t.match(yaml.body, /openapi: 3\.1\.0/);
});

t.test('a wrong method on an existing path is 405 method-not-allowed with Allow; GET / points at /docs', async (t) => {
  const cases: [string, string, string][] = [
    ['DELETE', '/v1/notices', 'POST'],
    ['GET', '/v1/notices', 'POST'],
    ['POST', '/v1/keys', 'GET, HEAD'],
    ['PUT', '/v1/notices/5b0c3f4e-0000-4000-8000-000000000000/acks', 'GET, HEAD'],
    ['POST', '/v1/log/checkpoint?x=1', 'GET, HEAD'],
  ];
  for (const [method, url, allow] of cases) {
    const res = await g.gw.app.inject({ method: method as 'GET', url });
    t.equal(res.statusCode, 405, `${method} ${url}`);
    t.equal(res.headers.allow, allow, `${method} ${url}: Allow`);
    t.equal(res.json().code, 'method-not-allowed');
    t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  }
  const unknown = await g.gw.app.inject({ method: 'GET', url: '/v1/nothing-here' });
  t.equal(unknown.statusCode, 404, 'an unknown path is still 404');
  t.equal(unknown.headers.allow, undefined);
  const root = await g.gw.app.inject({ method: 'GET', url: '/' });
  t.equal(root.statusCode, 404);
  t.equal(root.json().code, 'not-found');
  t.match(root.json().detail, /\/docs/, 'the root names where the API is described');
});

t.test(
  'security headers: nosniff, no framing, a CSP that allows nothing on the API, Swagger UI its own at /docs, no HSTS over plain HTTP',
  async (t) => {
    for (const url of ['/v1/keys', '/v1/nothing-here', '/healthz']) {
      const res = await g.gw.app.inject({ method: 'GET', url });
      t.equal(res.headers['x-content-type-options'], 'nosniff', url);
      t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url);
      t.equal(res.headers['referrer-policy'], 'no-referrer', url);
      t.match(String(res.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/, url);
      t.equal(res.headers['strict-transport-security'], undefined, `${url}: HSTS only under TLS`);
      t.equal(res.headers['x-powered-by'], undefined, url);
    }
    const docs = await g.gw.app.inject({ method: 'GET', url: '/docs/json' });
    t.equal(docs.statusCode, 200);
    t.match(
      String(docs.headers['content-security-policy']),
      /script-src 'self'/,
      "/docs keeps Swagger UI's own CSP (test/browser-docs.test.ts renders it)",
    );
  },
);
