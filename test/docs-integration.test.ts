/**
 * The integration guide's and the samples' shell blocks (`<!-- run: NAME -->`
 * before a ```sh fence) run as written against a real gateway of the demo
 * network (test/helpers/doc-shell.ts), and the TypeScript client
 * docs/examples/send-notice.ts runs as a library: the guides cannot drift from
 * what works.
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import {
  brokerKeys,
  clientAssertion,
  readInbox,
  sendNotice,
  verifyReceipt,
  LiaisonProblem,
  type Credentials,
} from '../docs/examples/send-notice.js';
import { docShell, shellBlocks } from './helpers/doc-shell.js';
import { runCli } from './helpers/cli.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
// webhook: false — WebhookDeliverer.close() right after start waits ~45 s (reported to the lead); not needed here.
// A short checkpoint interval: notice withdraw reads the original from the signed log once a checkpoint covers it.
const g = await startTestGateway(t, nats.url, { webhook: false, checkpointIntervalMs: 300 });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const creds = (agency: string) => g.creds(agency) as unknown as Credentials;
const shell = await docShell(t, g.dataDir, url);
const guide = shellBlocks(join(repoRoot, 'docs', 'integration-guide.md'));
const samples = shellBlocks(join(repoRoot, 'docs', 'examples', 'notices', 'README.md'));
const inbox = inboxClients(g, url);
const toThailand = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });

/** Run a block; it must exit 0. */
async function block(
  t: Test,
  blocks: Map<string, string>,
  name: string,
  env: Record<string, string> = {},
): Promise<string> {
  const script = blocks.get(name);
  if (script === undefined) throw new Error(`no block ${name}`);
  const r = await shell.sh(script, env);
  t.equal(r.status, 0, `${name}: exits 0 ${r.stderr}`);
  return r.stdout;
}

/** The ids of the notices a `notice send` (or withdraw) printed as accepted, in order. */
const acceptedIds = (out: string) =>
  [...out.matchAll(/^accepted: notice ([0-9a-f-]{36}) at log index \d+/gm)].map((m) => m[1] as string);

t.test('send-notice.ts: send, verify the receipt, read and verify the delivery as the recipient', async (t) => {
  const { broker } = await brokerKeys(url);
  t.equal(broker, g.config.brokerId);
  const notice = toThailand();
  const r = await sendNotice(url, creds('vn-customs'), notice);
  t.equal(r.notice_id, notice.id);
  t.ok(r.recipients.includes('th-customs'));
  const claims = await verifyReceipt(url, r.receipt);
  t.equal(claims.notice_id, notice.id);
  t.equal(claims.log_index, r.log_index);

  const again = await sendNotice(url, creds('vn-customs'), { ...notice, summary: 'changed' }).catch((e: unknown) => e);
  t.ok(again instanceof LiaisonProblem, 'the same id with other bytes is refused');
  t.equal((again as LiaisonProblem).code, 'duplicate-conflict');

  const page = await waitFor(
    async () => {
      const p = await readInbox(url, creds('th-customs'));
      return p.notices.some((n) => n.notice.id === notice.id) ? p : undefined;
    },
    "the delivery in th-customs' inbox",
    15_000,
  );
  const got = page.notices.find((n) => n.notice.id === notice.id);
  t.same(got?.notice, notice, 'the recipient reads exactly the notice the origin signed');

  const jwt = await clientAssertion(creds('th-customs'), broker);
  const res = await fetch(`${url}/v1/inbox?after=0&limit=1`, { headers: { authorization: `Bearer ${jwt}` } });
  t.equal(res.status, 200, "the example's client assertion is accepted");
});

t.test(
  "the guide's send-notice.ts command sends a sample with an expiry (stamped, the validity period kept)",
  async (t) => {
    const out = await block(t, guide, 'script');
    t.match(out, /^accepted [0-9a-f-]{36} at log index \d+; receipt verified/);
  },
);

t.test("the guide's curl blocks, the envelope and the assertion made by the CLI", async (t) => {
  t.same([...guide.keys()], ['script', 'seal', 'keys', 'post', 'retry', 'refused', 'inbox']);

  await block(t, guide, 'seal');
  t.ok(existsSync(join(shell.dir, 'notice.jwe')), 'notice seal wrote the envelope to notice.jwe');
  const keys = JSON.parse(await block(t, guide, 'keys')) as { broker: string; keys: unknown[] };
  t.equal(keys.broker, g.config.brokerId);
  const receipt = JSON.parse(await block(t, guide, 'post')) as {
    notice_id: string;
    receipt: string;
    recipients: string[];
  };
  t.match(receipt.notice_id, /^[0-9a-f-]{36}$/, `the sealed sample is accepted: ${JSON.stringify(receipt)}`);
  t.same(receipt.recipients, ['cn-customs', 'la-customs', 'th-customs', 'vn-c04'], "the seizure report's addressees");
  t.match(await block(t, guide, 'retry'), /^liaison-duplicate: true\s*$/im);
  const problem = JSON.parse(await block(t, guide, 'refused')) as { code: string; status: number; type: string };
  t.same(
    { code: problem.code, status: problem.status, type: problem.type },
    { code: 'envelope-malformed', status: 400, type: 'urn:liaison:problem:envelope-malformed' },
  );
  const page = await waitFor(
    async () => {
      const p = JSON.parse(await block(t, guide, 'inbox')) as {
        deliveries: { notice_id: string; origin: { agency: string }; type: string }[];
        next: number;
      };
      return p.deliveries.some((d) => d.notice_id === receipt.notice_id) ? p : undefined;
    },
    'the curl-posted notice in the inbox (read with a fresh assertion each time)',
    15_000,
  );
  t.match(
    page.deliveries.find((d) => d.notice_id === receipt.notice_id),
    { type: 'seizure-report', origin: { agency: 'vn-customs' } },
  );
});

t.test(
  'every sample is sendable as its README says; a sent notice is withdrawn with notice withdraw, and corrected with withdrawal.json',
  async (t) => {
    t.same([...samples.keys()], ['samples', 'withdraw', 'withdrawal-json']);
    const script = samples.get('samples') as string;
    for (const file of [
      'seizure-report',
      'person-alert',
      'modus-operandi',
      'request-for-assistance',
      'document-fraud-alert',
    ]) {
      t.match(
        script,
        new RegExp(`notice send docs/examples/notices/${file}\\.json `),
        `${file}.json is among the samples sent`,
      );
    }
    const sent = acceptedIds(await block(t, samples, 'samples'));
    t.equal(sent.length, 5, 'each of the five samples is accepted');
    const seizure = sent[0] as string;

    const out = await block(t, samples, 'withdraw', { NOTICE_ID: seizure });
    const [withdrawal] = acceptedIds(out);
    t.ok(withdrawal, `the withdrawal is accepted: ${out}`);
    t.match(
      out,
      /^recipients: cn-customs, la-customs, th-customs, vn-c04$/m,
      "it goes to the seizure report's recipients",
    );
    const delivered = await waitFor(
      async () =>
        (await inbox('th-customs').pull({ type: 'withdrawal', limit: 500 })).deliveries.find(
          (d) => d.notice_id === withdrawal,
        ),
      "the withdrawal in th-customs' inbox",
      15_000,
    );
    const opened = await inbox('th-customs').open(delivered);
    t.match(opened.notice, {
      type: 'withdrawal',
      operation: 'mekong-dragon-6',
      origin: { agency: 'vn-customs', country: 'VN' },
      tlp: 'AMBER',
      references: [seizure],
      body: { action: 'withdraw', supersedes: seizure, reason: 'Entered twice by mistake: see the later report.' },
    });

    // Another report of vn-customs, corrected with withdrawal.json as the README says.
    const another = acceptedIds(
      (
        await runCli([
          'notice',
          'send',
          'docs/examples/notices/seizure-report.json',
          '--as',
          'vn-customs',
          '--stamp',
          '--url',
          url,
          '--data-dir',
          g.dataDir,
        ])
      ).stdout,
    )[0] as string;
    t.ok(another);
    const corrected = await block(t, samples, 'withdrawal-json', { NOTICE_ID: another });
    t.equal(
      acceptedIds(corrected).length,
      1,
      `withdrawal.json, superseding a logged notice, is accepted: ${corrected}`,
    );
    t.match(corrected, /^recipients: cn-customs, la-customs, th-customs, vn-c04$/m);
  },
);
