/**
 * Issue 20: log entries only a gateway can write. An attacker with plain NATS
 * access appends a well-formed entry to `log.notice` (or junk): the
 * checkpointer must not fold it (it halts before it, status.halted set, one
 * error line naming LOG and the sequence), a new leader halts on it too, the
 * auditor API never answers 500, and both `audit verify` modes name the entry
 * as forged, not as an erased notice. A genuine log verifies in both modes.
 * Junk in CHECKPOINTS, log-index and log-tiles: never a 500, and CHECKPOINTS
 * junk does not stop checkpointing.
 */
import t, { type Test } from 'tap';
type Tap = Test;
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { connect, headers as natsHeaders } from 'nats';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { auditExport } from '../broker/cli/audit.js';
import { exportArchive, fetchFromApi } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { auditLog } from '../broker/audit/verify.js';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { createLogger } from '../broker/core/logger.js';
import { INDEX_BUCKET } from '../broker/log/checkpoint-store.js';
import { Checkpointer } from '../broker/log/checkpointer.js';
import { encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from '../broker/log/entry-signature.js';
import { TILES_BUCKET } from '../broker/log/tiles.js';
import { connectNats } from '../broker/nats/connection.js';
import { STREAMS } from '../broker/nats/streams.js';
import { sampleNotice, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);

interface Net {
  nats: TestNats;
  g: TestGateway;
  logLines: string[];
  checkpointer(name: string): Promise<Checkpointer>;
  get(url: string, agency?: string): Promise<{ status: number; json: Record<string, any> }>;
  post(n?: number): Promise<string[]>;
  logSize(): Promise<number>;
  /** A plain NATS connection: what an attacker with NATS access has. */
  attacker(): Promise<ReturnType<Awaited<ReturnType<typeof connect>>['jetstream']>>;
}

async function network(t: Tap): Promise<Net> {
  const nats = await startTestNats(t);
  // The gateway only ingests and serves; the checkpointers are this test's own instances.
  const g = await startTestGateway(t, nats.url, { checkpointer: false, leaseTtlSeconds: 2 });
  const logLines: string[] = [];
  const logger = createLogger(
    'info',
    new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString('utf8')), cb()) }),
  );
  const brokerId = g.config.brokerId;
  return {
    nats,
    g,
    logLines,
    async checkpointer(name) {
      const bus = await connectNats({ servers: nats.url, name, publishTimeoutMs: 2000, logger });
      const cp = await Checkpointer.create({
        bus,
        keyring: g.gw.keyring,
        logger,
        origin: brokerId,
        everyEntries: 2,
        everyMs: 200,
        leaseTtlMs: 2000,
        holder: name,
      });
      t.teardown(async () => {
        await cp.close();
        await bus.close();
      });
      cp.start();
      return cp;
    },
    async get(url, agency = 'hub-auditor') {
      const token = await makeClientAssertion(agency, g.creds(agency).signing, brokerId);
      const res = await g.gw.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      return { status: res.statusCode, json: res.json<Record<string, any>>() };
    },
    async post(n = 1) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const notice = sampleNotice('seizure-report', {
          operation: 'mekong-dragon-6',
          origin: { country: 'VN', agency: 'vn-customs' },
          addressees: ['TH'],
          tlp: 'AMBER',
        });
        const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
        if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
        ids.push(notice.id);
      }
      return ids;
    },
    logSize: async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.last_seq,
    async attacker() {
      const nc = await connect({ servers: nats.url, name: 'attacker' });
      t.teardown(() => nc.close());
      return nc.jetstream();
    },
  };
}

/** The attacker's entry: "vn-customs sent a TLP:RED person-alert to cn-customs". Well formed, canonical, unsigned. */
const forgedEntry = (): NoticeLogEntry => ({
  v: 1,
  kind: 'notice',
  notice_id: randomUUID(),
  sha256: 'ab'.repeat(32),
  format: 'jose',
  signer_kid: 'vn-customs-sig-1',
  origin: { country: 'VN', agency: 'vn-customs' },
  operation: 'mekong-dragon-6',
  type: 'person-alert',
  tlp: 'RED',
  received_at: new Date().toISOString(),
  recipients: ['cn-customs'],
});

/** A network with `count` genuine notices, a checkpointer of this test's, and every entry folded: where an attack starts. */
async function folded(t: Tap, count: number): Promise<{ n: Net; cp: Checkpointer; before: number; ids: string[] }> {
  const n = await network(t);
  const ids = await n.post(count);
  const cp = await n.checkpointer('cp-a');
  const before = await n.logSize();
  await waitFor(() => (cp.status.checkpointSize === before ? true : undefined), 'the genuine entries folded');
  return { n, cp, before, ids };
}

async function auditBoth(n: Net) {
  const api = auditLog(await fetchFromApi((p) => n.get(p), n.g.config.brokerId, n.g.jwks.keys));
  const archive = await auditLogWithOrigins(
    archiveToAuditInput(
      JSON.parse(
        JSON.stringify(
          await exportArchive(n.g.gw.bus, n.g.config.brokerId, n.g.gw.keyring.verificationKeys, n.g.gw.keyring),
        ),
      ),
    ),
  );
  return { api, archive };
}

t.test('a genuine log: every entry signed, all folded, both audit modes verify; the export file is 0600', async (t) => {
  const n = await network(t);
  await n.post(3);
  const cp = await n.checkpointer('cp-a');
  const size = await n.logSize();
  await waitFor(() => (cp.status.checkpointSize === size ? true : undefined), 'a checkpoint of every entry');
  t.equal(cp.status.halted, null, 'not halted');
  const first = await n.g.gw.bus.getMessage(STREAMS.log, 1);
  t.match(
    first?.header?.get(ENTRY_SIGNATURE_HEADER),
    /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/,
    'LOG carries a detached JWS beside the entry',
  );
  const page = await n.get(`/v1/log/entries?start=0&end=${size}`);
  t.equal(page.status, 200);
  t.equal(page.json.log_size, size);
  t.ok(
    page.json.entries.every((e: { signature?: string }) => typeof e.signature === 'string'),
    'GET /v1/log/entries serves each signature',
  );
  const { api, archive } = await auditBoth(n);
  t.ok(api.ok, `API mode verifies: ${JSON.stringify(api.problems)}`);
  t.equal(api.entriesSigned, size);
  t.ok(archive.ok, `archive mode verifies: ${JSON.stringify(archive.problems)}`);
  t.equal(archive.entriesSigned, size);

  const out = join(mkdtempSync(join(tmpdir(), 'liaison-export-')), 'log.json');
  const io = { out: () => undefined, err: () => undefined };
  t.equal(
    await auditExport(
      ['--nats', n.nats.url, '--data-dir', n.g.config.dataDir, '--origin', n.g.config.brokerId, '--out', out],
      io,
    ),
    0,
  );
  t.equal(statSync(out).mode & 0o777, 0o600, 'the archive is written 0600');
});

t.test(
  "the attacker's well-formed log.notice entry is not folded: halted before it, named forged in both audit modes",
  async (t) => {
    const { n, cp, before } = await folded(t, 2);

    const js = await n.attacker();
    const forged = forgedEntry();
    const ack = await js.publish('log.notice', encodeEntry(forged), { msgID: forged.notice_id });
    const forgedIndex = ack.seq - 1;
    t.equal(forgedIndex, before, 'the forged entry is in LOG right after the genuine ones');
    // A second forgery, with a real entry signature copied from another entry.
    const genuine = await n.g.gw.bus.getMessage(STREAMS.log, 1);
    const h = natsHeaders();
    h.set(ENTRY_SIGNATURE_HEADER, genuine!.header.get(ENTRY_SIGNATURE_HEADER));
    await js.publish('log.notice', encodeEntry(forgedEntry()), { headers: h });
    await n.post(1); // a genuine entry after them

    await waitFor(() => (cp.status.halted ? true : undefined), 'the checkpointer to halt');
    t.same(cp.status.halted?.index, forgedIndex, 'halted at the forged entry');
    t.match(cp.status.halted?.reason, /^entry-unsigned/);
    await new Promise((r) => setTimeout(r, 600));
    t.equal(cp.status.checkpointSize, forgedIndex, 'the tree stops right before it');
    const refused = n.logLines.filter((l) => l.includes('"log-entry-refused"'));
    t.equal(refused.length, 1, 'one error line');
    t.match(JSON.parse(refused[0]!), { level: 50, stream: 'LOG', seq: forgedIndex + 1 });
    t.notOk(refused[0]!.includes('person-alert') || refused[0]!.includes('cn-customs'), 'no entry content in it');

    const cpRes = await n.get('/v1/log/checkpoint');
    t.equal(cpRes.status, 200);
    t.equal(cpRes.json.tree_size, forgedIndex, 'the served checkpoint does not cover it');
    t.equal((await n.get(`/v1/log/entries?start=0&end=${await n.logSize()}`)).status, 200);

    const { api, archive } = await auditBoth(n);
    for (const [mode, r] of [
      ['API', api],
      ['archive', archive],
    ] as const) {
      t.notOk(r.ok, `${mode}: the log does not verify`);
      t.match(
        r.problems.find((p) => p.index === forgedIndex),
        { code: 'entry-unsigned' },
        `${mode}: the forged entry is named entry-unsigned`,
      );
      t.match(
        r.problems.find((p) => p.index === forgedIndex + 1),
        { code: 'entry-signature-invalid' },
        `${mode}: a copied signature is entry-signature-invalid`,
      );
      t.equal(r.firstBadEntry, forgedIndex, `${mode}: first bad entry`);
      t.notOk(
        r.problems.some((p) => p.index === forgedIndex + 2),
        `${mode}: the genuine entry after them is fine`,
      );
    }
    t.equal(archive.noticesErased, 0, 'archive: the forged commitments are not read as erased notices');

    // A new leader (A gone) reaches the same entry and halts too.
    await cp.close();
    const b = await n.checkpointer('cp-b');
    await waitFor(() => (b.status.halted ? true : undefined), 'the new leader to halt');
    t.equal(b.status.halted?.index, forgedIndex);
    t.equal(b.status.checkpointSize, forgedIndex);
  },
);

for (const [what, publish] of [
  [
    'a non-JSON message',
    async (js: Awaited<ReturnType<Net['attacker']>>) =>
      js.publish('log.notice', new TextEncoder().encode('not json {')),
  ],
  [
    'an empty NATS/1.0 404-style message',
    async (js: Awaited<ReturnType<Net['attacker']>>) =>
      js.publish('log.notice', new Uint8Array(0), { headers: natsHeaders(404, 'No Messages') }),
  ],
] as const) {
  t.test(`junk in LOG (${what}): halted before it; the auditor API never answers 500`, async (t) => {
    const { n, cp, before } = await folded(t, 2);
    const js = await n.attacker();
    const ack = await publish(js);
    await n.post(1);
    await waitFor(() => (cp.status.halted ? true : undefined), 'the checkpointer to halt');
    t.equal(cp.status.halted?.index, ack.seq - 1);
    t.equal(cp.status.checkpointSize, before);
    const size = await n.logSize();
    for (const url of [
      '/v1/log/checkpoint',
      `/v1/log/entries?start=0&end=${size}`,
      `/v1/log/proof/inclusion?index=0`,
      `/v1/log/proof/consistency?first=1&second=${before}`,
    ]) {
      const r = await n.get(url);
      t.equal(r.status, 200, `${url}: ${r.status}`);
    }
    const { api, archive } = await auditBoth(n);
    t.match(
      api.problems.find((p) => p.index === ack.seq - 1),
      { code: /^entry-(unsigned|malformed)$/ },
      'API mode names it',
    );
    t.match(
      archive.problems.find((p) => p.index === ack.seq - 1),
      { code: /^entry-(unsigned|malformed)$/ },
      'archive mode names it',
    );
  });
}

t.test(
  'junk in CHECKPOINTS, log-index and log-tiles: never a 500; checkpointing goes on after CHECKPOINTS junk',
  async (t) => {
    const {
      n,
      cp,
      before,
      ids: [id],
    } = await folded(t, 2);

    const js = await n.attacker();
    await js.publish('checkpoints', new TextEncoder().encode('junk, not a signed note'));
    const h = natsHeaders();
    h.set('Liaison-Compact-Range', '{not json');
    await js.publish('checkpoints', new TextEncoder().encode((await n.get('/v1/log/checkpoint')).json.note), {
      headers: h,
    });
    const cpRes = await n.get('/v1/log/checkpoint');
    t.equal(cpRes.status, 200, 'the newest valid checkpoint is served');
    t.equal(cpRes.json.tree_size, before);

    await n.post(3);
    await waitFor(
      async () => ((await n.get('/v1/log/checkpoint')).json.tree_size === before + 3 ? true : undefined),
      'checkpointing to go on past the junk',
    );
    t.equal(cp.status.halted, null);

    // A junk log-index value: a problem, not a 500.
    const nc = await connect({ servers: n.nats.url });
    t.teardown(() => nc.close());
    const index = await nc.jetstream().views.kv(INDEX_BUCKET, { bindOnly: true });
    await index.put(id!, new TextEncoder().encode('garbage'));
    const proof = await n.get(`/v1/notices/${id}/proof`, 'vn-customs');
    t.equal(proof.status, 502, `GET /v1/notices/:id/proof: ${JSON.stringify(proof.json)}`);
    t.equal(proof.json.code, 'log-state-invalid');

    // A junk tile row (not yet read by the gateway): a problem, not a 500.
    const tiles = await nc.jetstream().views.kv(TILES_BUCKET, { bindOnly: true });
    await tiles.put('0.0', new TextEncoder().encode('junk'));
    const inc = await n.get('/v1/log/proof/inclusion?index=0');
    t.equal(inc.status, 502, `GET /v1/log/proof/inclusion: ${JSON.stringify(inc.json)}`);
    t.equal(inc.json.code, 'log-state-invalid');
  },
);

t.test(
  'a second, validly signed entry for a notice id already logged halts checkpointing; the index keeps the first',
  async (t) => {
    const {
      n,
      cp,
      before,
      ids: [id],
    } = await folded(t, 2);
    const first = await n.get(`/v1/notices/${id}/proof`, 'vn-customs');
    t.equal(first.status, 200);

    // What a gateway re-appending an old entry after the duplicate window would write: signed, but a second entry for the id.
    const original = JSON.parse(Buffer.from(first.json.entry, 'base64url').toString('utf8')) as NoticeLogEntry;
    const again = encodeEntry({ ...original, received_at: new Date().toISOString() });
    const h = natsHeaders();
    h.set(ENTRY_SIGNATURE_HEADER, signEntry(n.g.gw.keyring.signing, again));
    const ack = await (await n.attacker()).publish('log.notice', again, { headers: h });
    await n.post(1);

    await waitFor(() => (cp.status.halted ? true : undefined), 'the checkpointer to halt');
    t.equal(cp.status.halted?.index, ack.seq - 1);
    t.match(cp.status.halted?.reason, /^entry-duplicate-notice/);
    t.equal(cp.status.checkpointSize, before, 'not folded');
    const proof = await n.get(`/v1/notices/${id}/proof`, 'vn-customs');
    t.equal(proof.json.index, first.json.index, 'the log-index still names the first entry');
    const { archive } = await auditBoth(n);
    t.match(
      archive.problems.find((p) => p.index === ack.seq - 1),
      { code: 'entry-duplicate-notice' },
    );
  },
);
