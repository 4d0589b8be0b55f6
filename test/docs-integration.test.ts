/**
 * The integration guide's examples run against a real gateway: the TypeScript
 * client docs/examples/send-notice.ts (as a library and as a script), and the
 * guide's curl blocks (`<!-- run: NAME -->` before a ```sh fence), in order.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClientAssertion } from '../broker/client/assertion.js';
import { repoRoot } from '../broker/core/paths.js';
import { credentialsPath } from '../broker/demo/demo-network.js';
import { brokerKeys, clientAssertion, readInbox, sendNotice, verifyReceipt, LiaisonProblem, type Credentials } from '../docs/examples/send-notice.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// webhook: false — WebhookDeliverer.close() right after start waits ~45 s (reported to the lead); not needed here.
const g = await startTestGateway(t, nats.url, { webhook: false });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const creds = (agency: string) => g.creds(agency) as unknown as Credentials;
/** Run a child without blocking this process's event loop (the gateway answers it from here). */
const run = (cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout: number }) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(cmd, args, { ...opts, encoding: 'utf8', killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
const toThailand = () => sampleNotice('seizure-report', { operation: 'mekong-dragon-6', origin: { country: 'VN', agency: 'vn-customs' }, addressees: ['TH'], tlp: 'AMBER' });

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

  const inbox = await waitFor(async () => {
    const page = await readInbox(url, creds('th-customs'));
    return page.notices.some((n) => n.notice.id === notice.id) ? page : undefined;
  }, 'the delivery in th-customs\' inbox', 15_000);
  const got = inbox.notices.find((n) => n.notice.id === notice.id);
  t.same(got?.notice, notice, 'the recipient reads exactly the notice the origin signed');

  const jwt = await clientAssertion(creds('th-customs'), broker);
  const res = await fetch(`${url}/v1/inbox?after=0&limit=1`, { headers: { authorization: `Bearer ${jwt}` } });
  t.equal(res.status, 200, 'the example\'s client assertion is accepted');
});

t.test('send-notice.ts as a script', async (t) => {
  const loader = join(repoRoot, 'node_modules', '@tapjs', 'typescript', 'dist', 'esm', 'import.mjs');
  const r = await run(process.execPath, [`--import=${loader}`, join(repoRoot, 'docs', 'examples', 'send-notice.ts'), url, credentialsPath(g.dataDir, 'vn-customs'), join(repoRoot, 'docs', 'examples', 'notices', 'seizure-report.json')], {
    cwd: repoRoot,
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^accepted [0-9a-f-]{36} at log index \d+; receipt verified/);
});

t.test('the guide\'s curl blocks', async (t) => {
  const guide = readFileSync(join(repoRoot, 'docs', 'integration-guide.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const m of guide.matchAll(/<!-- run: ([a-z-]+) -->\n```sh\n([\s\S]*?)```/g)) blocks.set(m[1] as string, m[2] as string);
  t.same([...blocks.keys()], ['keys', 'post', 'retry', 'refused', 'inbox']);

  const dir = mkdtempSync(join(tmpdir(), 'liaison-curl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notice = toThailand();
  writeFileSync(join(dir, 'notice.jwe'), (await g.seal(notice, 'vn-customs')).jwe);
  const sh = async (name: string) => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LIAISON_URL: url, ASSERTION: await makeClientAssertion('th-customs', g.creds('th-customs').signing, g.config.brokerId) };
    const r = await run('bash', ['-euo', 'pipefail', '-c', blocks.get(name) as string], { cwd: dir, env, timeout: 20_000 });
    t.equal(r.status, 0, `${name}: exit 0 ${r.stderr}`);
    return r.stdout;
  };

  const keys = JSON.parse(await sh('keys')) as { broker: string; keys: unknown[] };
  t.equal(keys.broker, g.config.brokerId);
  const receipt = JSON.parse(await sh('post')) as { notice_id: string; receipt: string; recipients: string[] };
  t.equal(receipt.notice_id, notice.id);
  t.ok(receipt.recipients.includes('th-customs'));
  t.match(await sh('retry'), /^liaison-duplicate: true\s*$/im);
  const problem = JSON.parse(await sh('refused')) as { code: string; status: number; type: string };
  t.same({ code: problem.code, status: problem.status, type: problem.type }, { code: 'envelope-malformed', status: 400, type: 'urn:liaison:problem:envelope-malformed' });
  const inbox = await waitFor(async () => {
    const page = JSON.parse(await sh('inbox')) as { deliveries: { notice_id: string; jwe: string }[]; next: number };
    return page.deliveries.some((d) => d.notice_id === notice.id) ? page : undefined;
  }, 'the curl-posted notice in the inbox', 15_000);
  t.ok(inbox.next > 0);
});
