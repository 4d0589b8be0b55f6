import t from 'tap';
import { sleep, waitFor } from './helpers/wait.js';
import { Writable } from 'node:stream';
import { signNotice } from '../broker/agency-client/seal.js';
import { createLogger } from '../broker/core/logger.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { ENTRY_HEADER } from '../broker/log/append.js';
import { noticeSubject } from '../broker/log/notice-writer.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from '../broker/log/entry-signature.js';
import { decodeEntry, encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { connectNats, type NatsBus } from '../broker/nats/connection.js';
import { STREAMS } from '../broker/nats/streams.js';
import { readInbox } from '../broker/routing/inbox.js';
import { Router } from '../broker/routing/router.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// This gateway only ingests; the routers below are separate "processes" (own NATS connections) that the test kills.
const g = await startTestGateway(t, nats.url, { router: false, leaseTtlSeconds: 2 });
const logLines: string[] = [];
const logger = createLogger(
  'info',
  new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString('utf8')), cb()) }),
);

async function routerProcess(name: string): Promise<{ bus: NatsBus; router: Router }> {
  const bus = await connectNats({ servers: nats.url, name, publishTimeoutMs: 2000, logger });
  const router = new Router({
    bus,
    registry: () => g.gw.registry.snapshot,
    logger,
    ackWaitSeconds: 2,
    duplicateWindowSeconds: g.config.duplicateWindowSeconds,
    replicas: 1,
    storageKeys: g.gw.keyring,
  });
  t.teardown(async () => {
    await router.close();
    await bus.close();
  });
  return { bus, router };
}

const post = async (notice: Record<string, unknown>) => {
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(`post refused: ${res.status}`);
  return res.json;
};

const inboxIds = async (agency: string) => {
  const ids: string[] = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const page = await readInbox(g.gw.bus, { agency }, after, 500);
    ids.push(...page.deliveries.map((d) => d.notice_id));
    if (page.deliveries.length === 0) break;
    after = page.next;
  }
  return ids;
};

t.test('a router killed mid-stream: the other one finishes its share, every delivery exactly once', async (t) => {
  const t0 = Date.now();
  const mark = (what: string) => t.comment(`${what} at ${Date.now() - t0} ms`);
  const a = await routerProcess('router-a');
  a.router.start();
  await waitFor(() => (a.router.leading ? true : undefined), 'router A to pull');

  const ids: string[] = [];
  const total = 30;
  for (let i = 0; i < total; i++) {
    const n = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH', 'KH'],
      tlp: 'AMBER',
      summary: `flow ${i}`,
    });
    ids.push(n.id);
    await post(n);
    if (i === 10) {
      await waitFor(() => (a.router.routed >= 3 ? true : undefined), 'router A to route some');
      // Crash: the process's NATS connection goes away; no ack for the notices in hand.
      a.bus.nc.close().catch(() => undefined);
      // The other router starts only now, so A's unacked notices can only reach it through the ack wait.
      (await routerProcess('router-b')).router.start();
    }
  }
  mark('posted');
  t.ok(a.router.routed < total, `router A routed only part of the stream (${a.router.routed})`);
  for (const agency of ['th-customs', 'kh-police-adp']) {
    const got = await waitFor(async () => {
      const seen = (await inboxIds(agency)).filter((id) => ids.includes(id));
      return seen.length >= total ? seen : undefined;
    }, `${agency} to have all deliveries`);
    t.equal(got.length, total, `${agency}: ${total} deliveries`);
    t.equal(new Set(got).size, total, `${agency}: each exactly once`);
  }
  mark('all delivered');
  await sleep(2500); // past another ack wait: nothing more turns up
  for (const agency of ['th-customs', 'kh-police-adp'])
    t.equal((await inboxIds(agency)).filter((id) => ids.includes(id)).length, total, `${agency}: still exactly once`);
  t.same(await inboxIds('la-customs'), [], 'la-customs (not addressed) has nothing');

  // The log holds each notice exactly once: the router's re-appends were no-ops.
  const info = await g.gw.bus.jsm.streams.info(STREAMS.log);
  const logged: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await g.gw.bus.getMessage(STREAMS.log, seq);
    if (m) logged.push((decodeEntry(m.data) as NoticeLogEntry).notice_id);
  }
  t.equal(new Set(logged).size, logged.length, 'no log entry twice');
  t.ok(
    ids.every((id) => logged.includes(id)),
    'every notice is in the log',
  );
});

t.test(
  'a stored notice whose log entry was lost in a crash is logged by the router before it is delivered',
  async (t) => {
    const notice = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['th-customs'],
      tlp: 'RED',
    });
    const jws = await signNotice(new TextEncoder().encode(JSON.stringify(notice)), g.creds('vn-customs').signing);
    const signed = new TextEncoder().encode(jws);
    const entry: NoticeLogEntry = {
      v: 1,
      kind: 'notice',
      notice_id: notice.id,
      sha256: sha256Hex(signed),
      format: 'jose',
      signer_kid: 'vn-customs-sig-1',
      origin: { country: 'VN', agency: 'vn-customs' },
      operation: 'mekong-dragon-6',
      type: 'seizure-report',
      tlp: 'RED',
      received_at: new Date().toISOString(),
      recipients: ['th-customs'],
    };
    const before = (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.last_seq;
    // What ingest's first publish does (the entry and its signature in the headers); the process "dies" before the LOG publish.
    const signature = signEntry(g.gw.keyring.signing, encodeEntry(entry));
    await g.gw.bus.publish(noticeSubject(entry), signed, {
      msgID: notice.id,
      headers: {
        'Liaison-Notice-Id': notice.id,
        'Liaison-Format': 'jose',
        [ENTRY_HEADER]: Buffer.from(encodeEntry(entry)).toString('base64url'),
        [ENTRY_SIGNATURE_HEADER]: signature,
      },
    });
    const d = await waitFor(
      async () =>
        (await readInbox(g.gw.bus, { agency: 'th-customs' }, 0, 500)).deliveries.find((x) => x.notice_id === notice.id),
      'the delivery',
    );
    t.ok(d.log_index >= before, 'the delivery names a new log position');
    const logged = await g.gw.bus.getMessage(STREAMS.log, d.log_index + 1);
    t.ok(logged, 'the entry is in the log');
    t.same(decodeEntry(logged!.data), entry, 'exactly the entry the notice carried');
    t.equal(
      logged!.header?.get(ENTRY_SIGNATURE_HEADER),
      signature,
      'with the signature ingest made, copied, not a new one',
    );
    t.ok(
      logLines.some((l) => l.includes('"log-entry-restored"')),
      'the router says it restored an entry',
    );
    t.notOk(logLines.join('\n').includes(notice.summary as string), 'no notice content in the service log');
  },
);

t.test('a notice whose entry does not commit to its bytes is not delivered', async (t) => {
  const notice = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs'],
    tlp: 'AMBER',
  });
  const jws = await signNotice(new TextEncoder().encode(JSON.stringify(notice)), g.creds('vn-customs').signing);
  const entry: NoticeLogEntry = {
    v: 1,
    kind: 'notice',
    notice_id: notice.id,
    sha256: '0'.repeat(64),
    format: 'jose',
    signer_kid: 'vn-customs-sig-1',
    origin: { country: 'VN', agency: 'vn-customs' },
    operation: 'mekong-dragon-6',
    type: 'seizure-report',
    tlp: 'AMBER',
    received_at: new Date().toISOString(),
    recipients: ['th-customs', 'la-customs'],
  };
  await g.gw.bus.publish(noticeSubject(entry), new TextEncoder().encode(jws), {
    msgID: notice.id,
    headers: { [ENTRY_HEADER]: Buffer.from(encodeEntry(entry)).toString('base64url') },
  });
  await waitFor(
    () => (logLines.some((l) => l.includes('"notice-unroutable"')) ? true : undefined),
    'the router to refuse it',
  );
  t.notOk((await inboxIds('th-customs')).includes(notice.id), 'not delivered');
});
