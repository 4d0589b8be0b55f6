/**
 * The ingest pipeline on in-memory ports: no NATS anywhere. The pipeline is
 * given a LogWriter and an OriginalLookup (broker/log/writer.ts,
 * broker/ingest/withdrawal-policy.ts), so what it hands the log and what it
 * makes of the answers can be read directly.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { joseEnvelope } from '../adapters/jose/index.js';
import { brokerEncryptionKey, sealNotice } from '../broker/agency-client/seal.js';
import { LiaisonError } from '../broker/core/errors.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { credentialsPath, ensureDemoNetwork, readCredentials } from '../broker/demo/demo-network.js';
import { createIngestPipeline } from '../broker/ingest/pipeline.js';
import type { OriginalLookup } from '../broker/ingest/withdrawal-policy.js';
import { createSignerResolver } from '../broker/keys/jwk-signers.js';
import { loadOrCreateBrokerKeys } from '../broker/keys/broker-keys.js';
import type { NoticeLogEntry } from '../broker/log/entry.js';
import type { LogWriter, StoreInput, StoreResult } from '../broker/log/writer.js';
import { RegistrySnapshot, type RegistrySeed } from '../broker/registry/model.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { sampleNotice } from './helpers/gateway.js';

const dataDir = mkdtempSync(join(tmpdir(), 'liaison-pipeline-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const { seedFile } = await ensureDemoNetwork(dataDir);
const registry = RegistrySnapshot.fromSeed(JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed);
const { keyring } = await loadOrCreateBrokerKeys(dataDir, 'test-broker');
const vn = readCredentials(credentialsPath(dataDir, 'vn-customs'));
const seal = (notice: unknown) =>
  sealNotice(new TextEncoder().encode(JSON.stringify(notice)), {
    signingKey: vn.signing,
    brokerKey: brokerEncryptionKey(keyring.jwks()),
  });

/** A log in memory: appends in order; the same notice id again answers with the first entry. */
class MemoryLog implements LogWriter {
  readonly appended: StoreInput[] = [];
  readonly entries: NoticeLogEntry[] = [];
  async append(input: StoreInput): Promise<StoreResult> {
    this.appended.push(input);
    const i = this.entries.findIndex((e) => e.notice_id === input.entry.notice_id);
    if (i >= 0) return { logIndex: i, entry: this.entries[i]!, duplicate: true };
    this.entries.push(input.entry);
    return { logIndex: this.entries.length - 1, entry: input.entry, duplicate: false };
  }
}

const noOriginals: OriginalLookup = {
  find: async () => t.fail('no look-up for a notice that is not a withdrawal') as never,
  delivered: async () => t.fail('no look-up for a notice that is not a withdrawal') as never,
};

function pipeline(log: LogWriter, originals: OriginalLookup = noOriginals) {
  return createIngestPipeline({
    adapters: [joseEnvelope],
    keyring,
    registry: () => registry,
    resolveSigner: createSignerResolver(() => registry),
    validator: createNoticeValidator(),
    log,
    originals,
    limits: { bodyLimitBytes: 1 << 20, maxJsonDepth: 32, clockSkewSeconds: 300, maxNoticeAgeSeconds: 3600 },
  });
}

t.test('a notice: the writer gets the signed bytes and the entry; the receipt names its position', async (t) => {
  const log = new MemoryLog();
  const ingest = pipeline(log);
  await log.append({
    signed: new Uint8Array(1),
    entry: { notice_id: 'someone-else' } as NoticeLogEntry,
    signer: keyring.signing,
  });
  const notice = sampleNotice('seizure-report');
  const { jwe, jws } = await seal(notice);
  const res = await ingest(jwe, 'application/jose');
  t.equal(log.appended.length, 2, 'one append for the notice');
  const input = log.appended[1]!;
  t.equal(new TextDecoder().decode(input.signed), jws, 'the signed notice as received');
  t.equal(input.signer, keyring.signing, "signed with the broker's current key");
  t.match(input.entry, {
    v: 1,
    kind: 'notice',
    notice_id: notice['id'],
    sha256: sha256Hex(jws),
    format: 'jose',
    origin: { agency: 'vn-customs' },
    operation: notice['operation'],
    type: 'seizure-report',
  });
  t.same(res.claims.recipients, input.entry.recipients, 'the receipt names the recipients the entry names');
  t.equal(res.claims.log_index, 1, "the receipt's log index is the writer's answer");
  t.equal(res.duplicate, false);
  t.match(decodeJwt(res.receipt), { notice_id: notice['id'], log_index: 1 });
});

t.test("a retry: the receipt is the original entry's, as the writer answers it", async (t) => {
  const log = new MemoryLog();
  const ingest = pipeline(log);
  const { jwe } = await seal(sampleNotice('seizure-report'));
  const first = await ingest(jwe, 'application/jose');
  const again = await ingest(jwe, 'application/jose');
  t.equal(log.appended.length, 2, 'the retry reaches the writer');
  t.equal(again.duplicate, true);
  t.same(again.claims, first.claims, 'same position, same received_at');
});

t.test("the writer's error is the caller's, unchanged", async (t) => {
  const down = new LiaisonError('unavailable', { detail: 'test', retryAfter: 7 });
  const ingest = pipeline({ append: async () => Promise.reject(down) });
  const { jwe } = await seal(sampleNotice('seizure-report'));
  await t.rejects(ingest(jwe, 'application/jose'), down);
});

t.test('a withdrawal: the original and whom it went to come from the look-up', async (t) => {
  const log = new MemoryLog();
  const original = sampleNotice('seizure-report');
  await pipeline(log)((await seal(original)).jwe, 'application/jose');
  const entry = log.entries[0]!;
  t.ok(entry.recipients.length >= 2, 'an original with several recipients');
  const asked: unknown[] = [];
  const originals: OriginalLookup = {
    find: async (id) => (asked.push(['find', id]), log.entries.find((e) => e.notice_id === id)),
    delivered: async (o) => (asked.push(['delivered', o.notice_id]), [entry.recipients[0]!]),
  };
  const ingest = pipeline(log, originals);
  const w = sampleNotice('withdrawal', {
    operation: original['operation'],
    references: [original['id']],
    body: { action: 'withdraw', supersedes: original['id'], reason: 'test' },
  });
  const res = await ingest((await seal(w)).jwe, 'application/jose');
  t.same(
    asked,
    [
      ['find', original['id']],
      ['delivered', original['id']],
    ],
    'the log first, then the routing record',
  );
  t.same(res.claims.recipients, [entry.recipients[0]], 'only whom the original was delivered to');
  t.same(log.entries[1]?.recipients, [entry.recipients[0]], 'and so the entry written');

  const unknown = sampleNotice('withdrawal', {
    operation: original['operation'],
    references: [w['id']],
    body: { action: 'withdraw', supersedes: w['id'], reason: 'test' },
  });
  await t.rejects(
    pipeline(log, { ...originals, find: async () => undefined })((await seal(unknown)).jwe, 'application/jose'),
    { code: 'policy-denied' },
    'not in the log: refused',
  );
  t.equal(log.appended.length, 2, 'a refused withdrawal is not written');
});
