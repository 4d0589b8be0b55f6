// Property-based fuzzing (fast-check) of POST /v1/notices through the real
// pipeline and a real nats-server: random bit flips in every compact part of
// the JWE and of the inner JWS, header mutations, and JSON value mutations of
// a valid notice before it is signed. Invariants: never a 5xx, the gateway
// keeps answering, and every 202 is for a notice that passes the schema and
// the policy (checked here independently of the response).
import t from 'tap';
import fc from 'fast-check';
import { encryptToBroker, brokerEncryptionKey, signNotice } from '../broker/agency-client/seal.js';
import { evaluatePolicy } from '../broker/ingest/policy.js';
import type { NoticeHeader } from '../broker/core/notice.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { b64, forgeJws, withHeader } from './helpers/forge.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(150_000);
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { router: false, checkpointer: false });
const brokerKey = brokerEncryptionKey(g.jwks);
const validator = createNoticeValidator();
const TYPES = ['seizure-report', 'person-alert', 'modus-operandi', 'request-for-assistance', 'document-fraud-alert'];

/** A fresh valid sample of a type (future expires_at), with the agency that may send it. */
function valid(type: string): { notice: Record<string, any>; agency: string } {
  const notice = sampleNotice(type);
  if (notice.expires_at !== undefined) notice.expires_at = new Date(Date.now() + 86_400_000).toISOString();
  return { notice, agency: notice.origin.agency as string };
}

const accepted: { status: number; notice: unknown; agency: string }[] = [];

/** The invariant for every answer: not a server error; a 202 only for a notice that is valid and allowed. */
function check(res: { status: number; json: Record<string, any> }, notice: unknown, agency: string): boolean {
  if (res.status >= 500 || res.status < 200) return false;
  if (res.status === 202) {
    accepted.push({ status: res.status, notice, agency });
    if (!validator.validate(notice).ok) return false;
    try {
      evaluatePolicy(notice as NoticeHeader, agency, g.gw.registry.snapshot, new Date());
    } catch {
      return false;
    }
    return true;
  }
  return res.status >= 400 && res.status < 500 && typeof res.json.code === 'string';
}

const flipBit = (part: string, byte: number, bit: number) => {
  const bytes = Buffer.from(part, 'base64url');
  if (bytes.length === 0) return 'A';
  const i = byte % bytes.length;
  bytes[i] = (bytes[i] as number) ^ (1 << bit);
  return bytes.toString('base64url');
};

t.test('bit flips in each part of the JWE: refused with a 4xx, never a 5xx', async (t) => {
  const { notice, agency } = valid('seizure-report');
  const { jwe } = await g.seal(notice, agency);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 4 }),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      async (part, byte, bit) => {
        const parts = jwe.split('.');
        if (parts[part] === '') return true; // ECDH-ES+A256KW always has an encrypted key; nothing to flip otherwise
        parts[part] = flipBit(parts[part] as string, byte, bit);
        const res = await g.post(parts.join('.'));
        return check(res, notice, agency) && res.status !== 202;
      },
    ),
    { numRuns: NUM_RUNS },
  );
  t.pass(`${NUM_RUNS} runs`);
});

t.test('bit flips in each part of the inner JWS (then correctly encrypted): 4xx, never accepted', async (t) => {
  const { notice, agency } = valid('person-alert');
  const jws = await signNotice(new TextEncoder().encode(JSON.stringify(notice)), g.creds(agency).signing);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 2 }),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      async (part, byte, bit) => {
        const parts = jws.split('.');
        parts[part] = flipBit(parts[part] as string, byte, bit);
        const res = await g.post(await encryptToBroker(parts.join('.'), brokerKey));
        return check(res, notice, agency) && res.status !== 202;
      },
    ),
    { numRuns: NUM_RUNS },
  );
  t.pass(`${NUM_RUNS} runs`);
});

const headerValue = fc.oneof(
  fc.constantFrom(
    'none',
    'HS256',
    'EdDSA',
    'ES256',
    'RS256',
    'ECDH-ES',
    'dir',
    'A256GCM',
    'A128CBC-HS256',
    '',
    '../../etc',
    'vn-customs-sig-1',
    'th-customs-sig-1',
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const headerField = fc.constantFrom(
  'alg',
  'enc',
  'kid',
  'typ',
  'cty',
  'crit',
  'zip',
  'b64',
  'jku',
  'jwk',
  'x5u',
  'epk',
  'apu',
  'apv',
  '__proto__',
  'extra',
);

t.test(
  'JWS header mutations, validly signed and encrypted: never a 5xx; accepted only if the notice is valid',
  async (t) => {
    const { notice, agency } = valid('modus-operandi');
    const signing = g.creds(agency).signing;
    const base = { alg: 'EdDSA', kid: signing.kid, typ: 'liaison-notice+jws' };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(headerField, headerValue, fc.boolean()), { minLength: 1, maxLength: 3 }),
        async (muts) => {
          const header: Record<string, unknown> = { ...base };
          for (const [k, v, del] of muts) {
            if (del) delete header[k];
            else Object.defineProperty(header, k, { value: v, enumerable: true, writable: true, configurable: true });
          }
          let jws: string;
          try {
            jws = forgeJws(header, JSON.stringify(notice), signing);
          } catch {
            return true; // not serialisable: nothing to send
          }
          const res = await g.post(await encryptToBroker(jws, brokerKey));
          return check(res, notice, agency);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    t.pass(`${NUM_RUNS} runs`);
  },
);

t.test('JWE protected header mutations: never a 5xx, never accepted', async (t) => {
  const { notice, agency } = valid('document-fraud-alert');
  const { jwe } = await g.seal(notice, agency);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(headerField, headerValue, fc.boolean()), { minLength: 1, maxLength: 3 }),
      async (muts) => {
        const patch: Record<string, unknown> = {};
        const remove: string[] = [];
        for (const [k, v, del] of muts) {
          if (del) remove.push(k);
          else Object.defineProperty(patch, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
        let mutated: string;
        try {
          mutated = withHeader(jwe, patch, remove);
        } catch {
          return true;
        }
        if (mutated === jwe) return true;
        const res = await g.post(mutated);
        return check(res, notice, agency) && res.status !== 202;
      },
    ),
    { numRuns: NUM_RUNS },
  );
  t.pass(`${NUM_RUNS} runs`);
});

/** Every path (as a list of keys) to a value inside a JSON document. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

type Mutation = { op: 'replace'; value: unknown } | { op: 'delete' } | { op: 'add'; key: string; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant('replace' as const),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.constantFrom(
        '*',
        'RED',
        'AMBER+STRICT',
        'VN',
        'TH',
        'th-customs',
        'aircop',
        '1.0',
        '9.9',
        '2999-01-01T00:00:00Z',
        '1999-01-01T00:00:00Z',
        -1,
        1e308,
        '',
        [],
        {},
      ),
    ),
  }),
  fc.record({ op: fc.constant('delete' as const) }),
  fc.record({
    op: fc.constant('add' as const),
    key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'extra', 'id')),
    value: fc.jsonValue({ maxDepth: 1 }),
  }),
);

function apply(doc: Record<string, any>, path: (string | number)[], m: Mutation): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as Record<string, any>;
  if (path.length === 0) return m.op === 'replace' ? m.value : copy;
  let parent: any = copy;
  for (const k of path.slice(0, -1)) parent = parent[k];
  const last = path.at(-1)!;
  if (m.op === 'replace') parent[last] = m.value;
  else if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (target && typeof target === 'object' && !Array.isArray(target))
      Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
    else parent[last] = m.value;
  }
  return copy;
}

t.test(
  'JSON mutations of a valid notice, then validly signed and encrypted: never a 5xx; a 202 only for a valid, allowed notice',
  async (t) => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TYPES),
        fc.nat(),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        async (type, pick, muts) => {
          const { notice, agency } = valid(type);
          let doc: unknown = notice;
          for (const m of muts) {
            const all = paths(doc);
            doc = apply(doc as Record<string, any>, all[pick % all.length]!, m);
            if (doc === null || typeof doc !== 'object') break;
          }
          const bytes = new TextEncoder().encode(JSON.stringify(doc) ?? 'null');
          const jws = await signNotice(bytes, g.creds(agency).signing);
          const res = await g.post(await encryptToBroker(jws, brokerKey));
          // What the broker saw is exactly these bytes: check the invariant on their parse.
          return check(res, JSON.parse(new TextDecoder().decode(bytes)), agency);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    t.pass(`${NUM_RUNS} runs`);
  },
);

t.test('after all of it the gateway still answers and still accepts a valid notice', async (t) => {
  t.equal((await g.gw.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const { notice, agency } = valid('seizure-report');
  const res = await g.post((await g.seal(notice, agency)).jwe);
  t.equal(res.status, 202);
  t.comment(`${accepted.length} mutated notices were accepted, each checked valid and allowed`);
  void b64;
});
