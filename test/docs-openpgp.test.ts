/**
 * docs/openpgp.md's GnuPG walk runs as written, without a terminal: its
 * `<!-- run: NAME -->` blocks, in order, in one bash, against a real gateway
 * with the demo network (the guide's `data/` and `docs/` are links in a
 * scratch directory). It sends an OpenPGP notice with GnuPG, and opens an
 * OpenPGP delivery with GnuPG.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createMessage, encrypt, readKey, readPrivateKey } from 'openpgp';
import { makeClientAssertion } from '../broker/client/assertion.js';
import { repoRoot } from '../broker/core/paths.js';
import { InboxClient } from '../broker/delivery/client.js';
import type { Agency } from '../broker/registry/model.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const brokerFpr = g.gw.keyring.openpgp!.fingerprint;

// The scratch directory stands for the repository's root: data/ (the demo network) and docs/ (the samples).
const dir = mkdtempSync(join(tmpdir(), 'ldoc-'));
const tmp = join(dir, 't');
mkdirSync(tmp);
symlinkSync(g.dataDir, join(dir, 'data'));
symlinkSync(join(repoRoot, 'docs'), join(dir, 'docs'));
t.teardown(() => {
  // A walk that stopped before its cleanup block leaves a gpg-agent: stop it, for that home only.
  for (const home of readdirSync(tmp)) spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: join(tmp, home) }, timeout: 10_000 });
  rmSync(dir, { recursive: true, force: true });
});

// The receiving half of the walk: gb-border-force takes OpenPGP deliveries, and fr-douane (an OpenPGP origin) sends it a notice.
const gbRecord = structuredClone(g.gw.registry.snapshot.agency('gb-border-force')) as Agency;
gbRecord.delivery_format = 'openpgp';
await g.gw.registry.putAgency(gbRecord);
await waitFor(() => (g.gw.registry.snapshot.agency('gb-border-force')?.delivery_format === 'openpgp' ? true : undefined), 'registry change');
const fromFr = sampleNotice('seizure-report', { operation: 'aircop', origin: { country: 'FR', agency: 'fr-douane' }, addressees: ['gb-border-force'], tlp: 'GREEN' });
const posted = await g.post(
  await encrypt({
    message: await createMessage({ text: JSON.stringify(fromFr) }),
    encryptionKeys: await readKey({ armoredKey: (g.jwks as unknown as { openpgp: string }).openpgp }),
    signingKeys: await readPrivateKey({ armoredKey: g.creds('fr-douane').openpgp!.private_armored }),
  }),
  'application/pgp-encrypted',
);
if (posted.status !== 202) throw new Error(`fr-douane's notice not accepted: ${JSON.stringify(posted.json)}`);
const gb = g.creds('gb-border-force');
const inbox = new InboxClient({ url, agency: 'gb-border-force', signingKey: gb.signing, encryptionKey: gb.encryption, brokerId: g.config.brokerId });
await waitFor(async () => ((await inbox.pull()).deliveries.some((d) => d.notice_id === fromFr.id) ? true : undefined), 'the delivery to gb-border-force', 15_000);

/** bash on stdin /dev/null (Debian's bash reads /etc/bash.bashrc when stdin is a socket), without blocking the gateway in this process. */
const run = (script: string, env: NodeJS.ProcessEnv) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });

t.test("the guide's GnuPG walk: send a notice, open a delivery", async (t) => {
  const guide = readFileSync(join(repoRoot, 'docs', 'openpgp.md'), 'utf8');
  const blocks = [...guide.matchAll(/<!-- run: ([a-z-]+) -->\n```sh\n([\s\S]*?)```/g)].map((m) => ({ name: m[1] as string, code: m[2] as string }));
  t.same(
    blocks.map((b) => b.name),
    ['home', 'broker-key', 'agency-key', 'send', 'receive', 'cleanup'],
  );
  const script = blocks.map((b) => `printf '\\n::%s\\n' ${b.name}\n${b.code}`).join('\n');
  const env = {
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: dir,
    TMPDIR: tmp,
    LANG: 'C',
    LIAISON_URL: url,
    ASSERTION: await makeClientAssertion('gb-border-force', gb.signing, g.config.brokerId),
  };
  const r = await run(script, env);
  t.equal(r.status, 0, `the walk runs without a terminal: ${r.stderr}`);
  const out = Object.fromEntries(
    r.stdout
      .split(/^::/m)
      .filter(Boolean)
      .map((part) => [part.slice(0, part.indexOf('\n')), part.slice(part.indexOf('\n') + 1).trim()]),
  ) as Record<string, string>;

  t.equal(out['broker-key']?.trim(), `broker: ${brokerFpr}`, "the broker's fingerprint, as the gateway has it");
  t.equal(out['agency-key']?.trim(), `agency: ${gb.openpgp!.fingerprint}`, "the agency's fingerprint, as registered");
  const sent = JSON.parse(readFileSync(join(dir, 'notice.json'), 'utf8')) as { id: string };
  const receipt = JSON.parse(out.send ?? '{}') as { notice_id?: string; recipients?: string[] };
  t.equal(receipt.notice_id, sent.id, 'the GnuPG-made envelope is accepted, with a receipt');
  t.same(receipt.recipients, ['th-customs']);

  t.equal(r.stderr.match(/^gpg: Good signature from /gm)?.length, 2, "gpg checked the broker's signature, then the origin's");
  t.same(JSON.parse(readFileSync(join(dir, 'received.json'), 'utf8')), fromFr, 'the delivery opened with GnuPG: the notice as fr-douane signed it');
  t.notOk(existsSync(readdirSync(tmp).map((h) => join(tmp, h))[0] ?? join(tmp, 'none')), 'the walk removes its keyring');
});
