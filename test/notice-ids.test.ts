/**
 * Issue 20: a notice id is unique for the log's lifetime, not only for the
 * JetStream duplicate window. After the window (shortened here to 3 s),
 * another agency reusing vn-customs's id X is refused (409
 * duplicate-conflict) and nothing is logged; vn-customs's own retry of the
 * same bytes still gets the original receipt; vn-customs's proof and
 * withdrawal of X still find the original; the log still verifies.
 */
import t from 'tap';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { decodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { checkpointIntervalMs: 300, leaseTtlSeconds: 2 });
// The config keeps the window above the notice age limit (>= 60 s); the streams' window is shortened here to 3 s
// (what a long-running network reaches after 2 h), so the test does not wait a minute.
for (const stream of [STREAMS.notices, STREAMS.log]) {
  const info = await g.gw.bus.jsm.streams.info(stream);
  await g.gw.bus.jsm.streams.update(stream, { ...info.config, duplicate_window: 3e9 });
}
const brokerId = g.config.brokerId;
const logSize = async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.last_seq;
async function get(url: string, agency: string) {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, brokerId);
  const res = await g.gw.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: res.json<Record<string, any>>() };
}

t.test(
  'after the duplicate window: another agency cannot take the id; the origin keeps its receipt, proof and withdrawal',
  async (t) => {
    const x = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    const jwe = (await g.seal(x, 'vn-customs')).jwe;
    const first = await g.post(jwe);
    t.equal(first.status, 202);
    const index = first.json.log_index as number;
    await waitFor(
      async () => ((await get(`/v1/notices/${x.id}/proof`, 'vn-customs')).status === 200 ? true : undefined),
      'a checkpoint over X',
    );
    // Routed before the window passes, as on a live network: past the window no router routes X any more, so a
    // withdrawal of an X never routed is refused (withdrawal-policy.ts), which a loaded test machine could reach.
    const inbox = async () => (await get('/v1/inbox', 'th-customs')).json as { deliveries?: { notice_id: string }[] };
    await waitFor(
      async () => ((await inbox()).deliveries?.some((d) => d.notice_id === x.id) ? true : undefined),
      'X delivered to th-customs',
    );
    await new Promise((r) => setTimeout(r, 4000)); // past the 3 s duplicate window
    const size = await logSize();

    // th-customs posts its own, fresh, notice under vn-customs's id.
    const theirs = sampleNotice('seizure-report', {
      id: x.id,
      operation: 'mekong-dragon-6',
      origin: { country: 'TH', agency: 'th-customs' },
      addressees: ['VN'],
      tlp: 'AMBER',
    });
    const reuse = await g.post((await g.seal(theirs, 'th-customs')).jwe);
    t.equal(reuse.status, 409, `reuse: ${JSON.stringify(reuse.json)}`);
    t.equal(reuse.json.code, 'duplicate-conflict');
    t.equal(await logSize(), size, 'nothing logged');

    // vn-customs's retry of the same bytes (still within the notice age limit, past the stream's window): the original receipt.
    const retry = await g.post(jwe);
    t.equal(retry.status, 202, `retry: ${JSON.stringify(retry.json)}`);
    t.equal(retry.headers['liaison-duplicate'], 'true');
    t.equal(retry.json.log_index, index, 'the original log index');
    t.equal(await logSize(), size, 'nothing logged');

    const proof = await get(`/v1/notices/${x.id}/proof`, 'vn-customs');
    t.equal(proof.status, 200, 'vn-customs still proves X');
    t.equal(proof.json.index, index);
    t.equal(
      (decodeEntry(Buffer.from(proof.json.entry, 'base64url')) as { origin: { agency: string } }).origin.agency,
      'vn-customs',
    );

    const w = sampleNotice('withdrawal', {
      references: [x.id],
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    w['body'] = { ...w['body'], supersedes: x.id };
    const withdrawn = await g.post((await g.seal(w, 'vn-customs')).jwe);
    t.equal(withdrawn.status, 202, `vn-customs withdraws X: ${JSON.stringify(withdrawn.json)}`);

    const all = await logSize();
    await waitFor(
      async () => ((await get('/v1/log/checkpoint', 'hub-auditor')).json.tree_size === all ? true : undefined),
      'a checkpoint of everything',
    );
    const report = await auditLogWithOrigins(
      archiveToAuditInput(
        JSON.parse(
          JSON.stringify(await exportArchive(g.gw.bus, brokerId, g.gw.keyring.verificationKeys, g.gw.keyring)),
        ),
      ),
    );
    t.ok(report.ok, `the log verifies: ${JSON.stringify(report.problems)}`);
  },
);

t.test('inside the window: the same id with other bytes is 409, the same bytes the original receipt', async (t) => {
  const x = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'GREEN',
  });
  const jwe = (await g.seal(x, 'vn-customs')).jwe;
  const first = await g.post(jwe);
  t.equal(first.status, 202);
  const again = await g.post(jwe);
  t.equal(again.status, 202);
  t.equal(again.json.log_index, first.json.log_index);
  const other = await g.post((await g.seal({ ...x, summary: 'other bytes' }, 'vn-customs')).jwe);
  t.equal(other.status, 409);
  t.equal(other.json.code, 'duplicate-conflict');
});
