import t from 'tap';
import { waitFor } from './helpers/wait.js';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { repoRoot } from '../broker/core/paths.js';
import { CheckpointVerifier } from '../broker/log/checkpoint.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { leafHash, verifyInclusion } from '../broker/log/merkle.js';
import { STREAMS } from '../broker/nats/streams.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  checkpointEveryEntries: 4,
  checkpointIntervalMs: 300,
  leaseTtlSeconds: 2,
});
const brokerId = g.config.brokerId;

const fromVn = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });

async function get(url: string, agency = 'hub-auditor') {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, brokerId);
  const res = await g.gw.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: res.json<Record<string, any>>(), headers: res.headers };
}

/** The independent RFC 9162 verifier in Python (test/interop/merkle_verify.py), one JSON object per line. */
function pythonVerify(cases: object[]): string[] {
  const r = spawnSync('python3', [join(repoRoot, 'test', 'interop', 'merkle_verify.py'), '--jsonl'], {
    input: cases.map((c) => JSON.stringify(c)).join('\n') + '\n',
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`merkle_verify.py failed: ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

// Ten notices, checkpoints every 4 entries or 300 ms.
const posted: { id: string; index: number }[] = [];
for (let i = 0; i < 10; i++) {
  const n = fromVn();
  const res = await g.post((await g.seal(n, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(`post: ${JSON.stringify(res.json)}`);
  posted.push({ id: n.id, index: res.json.log_index });
}
await waitFor(
  async () => ((await get('/v1/log/checkpoint')).json.tree_size === 10 ? true : undefined),
  'a checkpoint of all ten entries',
);

/** Every checkpoint note in CHECKPOINTS, in order. */
async function allNotes(): Promise<string[]> {
  const info = await g.gw.bus.jsm.streams.info(STREAMS.checkpoints);
  const out: string[] = [];
  for (let s = info.state.first_seq; s <= info.state.last_seq; s++)
    out.push(new TextDecoder().decode((await g.gw.bus.getMessage(STREAMS.checkpoints, s))!.data));
  return out;
}

t.test('the checkpoint is signed by the broker key published in /v1/keys and matches the entries', async (t) => {
  const cp = await get('/v1/log/checkpoint');
  t.equal(cp.status, 200);
  const v = new CheckpointVerifier(brokerId, g.jwks.keys);
  const verified = v.verify(cp.json.note);
  t.equal(verified.checkpoint.treeSize, 10);
  t.equal(cp.json.root_hash, Buffer.from(verified.checkpoint.rootHash).toString('hex'));
  t.equal(cp.json.origin, brokerId);

  const page = await get('/v1/log/entries?start=0&end=10');
  t.equal(page.status, 200);
  t.equal(page.json.entries.length, 10);
  const range = CompactRange.empty();
  for (const [i, e] of page.json.entries.entries()) {
    t.equal(e.index, i);
    const bytes = Buffer.from(e.entry, 'base64url');
    const stored = (await g.gw.bus.getMessage(STREAMS.log, i + 1))!.data;
    t.ok(Buffer.compare(bytes, Buffer.from(stored)) === 0, `entry ${i} is the exact LOG bytes`);
    range.append(leafHash(bytes));
  }
  t.equal(
    Buffer.from(range.root()).toString('hex'),
    cp.json.root_hash,
    'the auditor recomputes the signed root from the entries',
  );

  const notes = await allNotes();
  const sizes = notes.map((n) => v.verify(n).checkpoint.treeSize);
  t.equal(sizes[0], 0, 'the empty tree is checkpointed first');
  t.same(
    [...sizes].sort((a, b) => a - b),
    sizes,
    'checkpoint sizes never go back',
  );
  t.ok(sizes.includes(4) && sizes.includes(8), `a checkpoint every 4 entries (${sizes.join(',')})`);
});

t.test('inclusion and consistency proofs from the API verify in the independent Python verifier', async (t) => {
  const v = new CheckpointVerifier(brokerId, g.jwks.keys);
  const cps = (await allNotes()).map((n) => v.verify(n).checkpoint).filter((c) => c.treeSize > 0);
  const entries = (await get('/v1/log/entries?start=0&end=10')).json.entries as { entry: string }[];
  const cases: object[] = [];
  const expect: string[] = [];
  for (const c of cps) {
    const rootHex = Buffer.from(c.rootHash).toString('hex');
    for (let i = 0; i < c.treeSize; i++) {
      const p = await get(`/v1/log/proof/inclusion?index=${i}&tree_size=${c.treeSize}`);
      t.equal(p.status, 200);
      cases.push({
        kind: 'inclusion',
        leaf_b64: entries[i]!.entry,
        index: i,
        tree_size: c.treeSize,
        proof: p.json.proof,
        root_hex: rootHex,
      });
      expect.push('OK');
      // and a mutated one: another entry's bytes must not verify
      cases.push({
        kind: 'inclusion',
        leaf_b64: entries[(i + 1) % 10]!.entry,
        index: i,
        tree_size: c.treeSize,
        proof: p.json.proof,
        root_hex: rootHex,
      });
      expect.push(c.treeSize === 1 && i === 0 && (i + 1) % 10 === 0 ? 'OK' : 'FAIL');
    }
  }
  for (const a of cps) {
    for (const b of cps) {
      if (a.treeSize > b.treeSize) continue;
      const p = await get(`/v1/log/proof/consistency?first=${a.treeSize}&second=${b.treeSize}`);
      t.equal(p.status, 200);
      cases.push({
        kind: 'consistency',
        first: a.treeSize,
        second: b.treeSize,
        proof: p.json.proof,
        first_root_hex: Buffer.from(a.rootHash).toString('hex'),
        second_root_hex: Buffer.from(b.rootHash).toString('hex'),
      });
      expect.push('OK');
    }
  }
  const got = pythonVerify(cases).map((l) => (l.startsWith('FAIL') ? 'FAIL' : l));
  t.same(got, expect, `${cases.length} proofs judged by merkle_verify.py`);
});

t.test('a sender proves its own notice, and only its own', async (t) => {
  const mine = posted[3]!;
  const p = await get(`/v1/notices/${mine.id}/proof`, 'vn-customs');
  t.equal(p.status, 200, JSON.stringify(p.json));
  t.equal(p.json.index, mine.index);
  const entry = Buffer.from(p.json.entry, 'base64url');
  t.equal(JSON.parse(entry.toString()).notice_id, mine.id);
  const v = new CheckpointVerifier(brokerId, g.jwks.keys).verify(p.json.checkpoint.note);
  t.ok(
    verifyInclusion(
      leafHash(entry),
      p.json.index,
      v.checkpoint.treeSize,
      p.json.proof.map((h: string) => Buffer.from(h, 'hex')),
      v.checkpoint.rootHash,
    ),
    'the proof verifies against the signed checkpoint',
  );
  t.same(
    pythonVerify([
      {
        kind: 'inclusion',
        leaf_b64: p.json.entry,
        index: p.json.index,
        tree_size: v.checkpoint.treeSize,
        proof: p.json.proof,
        root_hex: Buffer.from(v.checkpoint.rootHash).toString('hex'),
      },
    ]),
    ['OK'],
  );

  const other = await get(`/v1/notices/${mine.id}/proof`, 'th-customs');
  t.equal(other.status, 404, "another agency's notice is not found");
  t.equal(other.json.code, 'not-found');
  t.equal((await get(`/v1/notices/${randomUUID()}/proof`, 'vn-customs')).status, 404, 'unknown id');
  t.equal((await get('/v1/notices/not-a-uuid/proof', 'vn-customs')).json.code, 'bad-request');
  t.equal(
    (await get(`/v1/notices/${mine.id}/proof`, 'hub-auditor')).status,
    403,
    'the notice proof needs the publish role',
  );
});

t.test('a notice is 404 until a checkpoint covers it', async (t) => {
  // A gateway without a checkpointer of its own: nothing new gets checkpointed while the leader is paused.
  await g.gw.checkpointer!.close();
  const n = fromVn();
  t.equal((await g.post((await g.seal(n, 'vn-customs')).jwe)).status, 202);
  t.equal((await get(`/v1/notices/${n.id}/proof`, 'vn-customs')).status, 404);
  const size = (await get('/v1/log/checkpoint')).json.tree_size;
  t.equal((await get(`/v1/log/proof/inclusion?index=${size}`)).status, 400, 'no proof beyond the newest checkpoint');
  t.equal((await get(`/v1/log/entries?start=${size}&end=${size + 1}`)).status, 200, 'the entry itself can be read');
});

t.test('query numbers are checked strictly', async (t) => {
  const bad = [
    '/v1/log/proof/inclusion',
    '/v1/log/proof/inclusion?index=abc',
    '/v1/log/proof/inclusion?index=-1',
    '/v1/log/proof/inclusion?index=01',
    '/v1/log/proof/inclusion?index=1.0',
    '/v1/log/proof/inclusion?index=1e1',
    '/v1/log/proof/inclusion?index=%201',
    '/v1/log/proof/inclusion?index=0x1',
    '/v1/log/proof/inclusion?index=99999999999999999999',
    '/v1/log/proof/inclusion?index=1&index=2',
    '/v1/log/proof/inclusion?index=1&other=2',
    '/v1/log/proof/inclusion?index=10&tree_size=10',
    '/v1/log/proof/inclusion?index=0&tree_size=1000',
    '/v1/log/proof/consistency?first=5&second=4',
    '/v1/log/proof/consistency?first=1&second=1000',
    '/v1/log/proof/consistency?first=1',
    '/v1/log/entries?start=3&end=3',
    '/v1/log/entries?start=0&end=1000',
    '/v1/log/entries?start=&end=1',
  ];
  for (const url of bad) {
    const r = await get(url);
    t.equal(r.status, 400, url);
    t.equal(r.json.code, 'bad-request', url);
    t.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
  }
  t.equal(
    (await get('/v1/log/proof/consistency?first=0&second=4')).json.proof.length,
    0,
    'from the empty tree: an empty proof',
  );
});

t.test('the log API needs the audit role', async (t) => {
  t.equal((await get('/v1/log/checkpoint', 'vn-customs')).status, 403);
  t.equal((await g.gw.app.inject({ method: 'GET', url: '/v1/log/checkpoint' })).statusCode, 401);
  t.equal((await get('/v1/log/entries?start=0&end=1', 'th-customs')).json.code, 'forbidden');
});
