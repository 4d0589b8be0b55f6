/**
 * docs/openpgp.md's GnuPG walk runs as written, without a terminal: its
 * `<!-- run: NAME -->` blocks, in order, with bash in a clone-like directory
 * (test/helpers/doc-shell.ts: `npx liaison` is this process's CLI) against a
 * real gateway with the demo network. It sends an OpenPGP notice with GnuPG,
 * switches the agency to OpenPGP deliveries, and opens one with the CLI and
 * with GnuPG.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMessage, encrypt, readKey, readPrivateKey } from 'openpgp';
import { repoRoot } from '../broker/core/paths.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { docShell, shellBlocks } from './helpers/doc-shell.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const brokerFpr = g.gw.keyring.openpgp!.fingerprint;
const gb = g.creds('gb-border-force');
const doc = await docShell(t, g.dataDir, url);
// A walk that stopped before its cleanup block leaves a gpg-agent: stop it, for that home only.
t.teardown(() => {
  const home = join(doc.dir, 'data', 'walk-gnupg');
  if (existsSync(home))
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: home }, timeout: 10_000 });
});

const blocks = shellBlocks(join(repoRoot, 'docs', 'openpgp.md'));
/** Run the named blocks in one bash; what each printed, by name. */
async function walk(names: string[]) {
  const script = names.map((name) => `printf '\\n::%s\\n' ${name}\n${blocks.get(name) ?? 'exit 99'}`).join('\n');
  const r = await doc.sh(script, { LANG: 'C' }, 120_000);
  const out = Object.fromEntries(
    r.stdout
      .split(/^::/m)
      .filter((part) => part.trim())
      .map((part) => [part.slice(0, part.indexOf('\n')), part.slice(part.indexOf('\n') + 1).trim()]),
  ) as Record<string, string>;
  return { ...r, out };
}

t.test(
  "the guide's GnuPG walk: send a notice; switch to OpenPGP deliveries; open one with the CLI and with GnuPG",
  async (t) => {
    t.same([...blocks.keys()], ['home', 'broker-key', 'agency-key', 'send', 'switch', 'pull', 'receive', 'cleanup']);

    const first = await walk(['home', 'broker-key', 'agency-key', 'send', 'switch']);
    t.equal(first.status, 0, `sending runs without a terminal: ${first.stderr}`);
    t.equal(first.out['broker-key'], `broker: ${brokerFpr}`, "the broker's fingerprint, as the gateway has it");
    t.equal(first.out['agency-key'], `agency: ${gb.openpgp!.fingerprint}`, "the agency's fingerprint, as registered");
    const sent = JSON.parse(readFileSync(join(doc.dir, 'notice.json'), 'utf8')) as { id: string };
    const receipt = JSON.parse(first.out.send ?? '{}') as { notice_id?: string; recipients?: string[] };
    t.equal(receipt.notice_id, sent.id, 'the GnuPG-made envelope is accepted, with a receipt');
    t.same(receipt.recipients, ['th-customs']);
    t.match(first.out.switch, `registered: ${gb.openpgp!.fingerprint}`);
    await waitFor(
      () => (g.gw.registry.snapshot.agency('gb-border-force')?.delivery_format === 'openpgp' ? true : undefined),
      'the switch to OpenPGP deliveries',
    );

    // Another member sends gb-border-force a notice: fr-douane, signed with its OpenPGP key.
    const fromFr = sampleNotice('seizure-report', {
      operation: 'aircop',
      origin: { country: 'FR', agency: 'fr-douane' },
      addressees: ['gb-border-force'],
      tlp: 'GREEN',
    });
    const posted = await g.post(
      await encrypt({
        message: await createMessage({ text: JSON.stringify(fromFr) }),
        encryptionKeys: await readKey({ armoredKey: (g.jwks as unknown as { openpgp: string }).openpgp }),
        signingKeys: await readPrivateKey({ armoredKey: g.creds('fr-douane').openpgp!.private_armored }),
      }),
      'application/pgp-encrypted',
    );
    t.equal(posted.status, 202);
    const inbox = new InboxClient({
      url,
      agency: 'gb-border-force',
      signingKey: gb.signing,
      encryptionKey: gb.encryption,
      brokerId: g.config.brokerId,
    });
    await waitFor(
      async () => ((await inbox.pull()).deliveries.find((d) => d.notice_id === fromFr.id)?.openpgp ? true : undefined),
      'the OpenPGP delivery to gb-border-force',
      15_000,
    );

    const second = await walk(['home', 'pull', 'receive', 'cleanup']);
    t.equal(second.status, 0, `receiving runs without a terminal: ${second.stderr}`);
    t.match(second.out.pull, `${fromFr.id} aircop from fr-douane (FR)`);
    t.match(
      second.out.pull,
      `OpenPGP delivery signed by the broker (${brokerFpr}); signature verified (`,
      'the CLI opened and verified it',
    );
    t.equal(
      second.stderr.match(/^gpg: Good signature from /gm)?.length,
      2,
      "gpg checked the broker's signature, then the origin's",
    );
    t.same(
      JSON.parse(readFileSync(join(doc.dir, 'received.json'), 'utf8')),
      fromFr,
      'opened with GnuPG: the notice as fr-douane signed it',
    );
    t.notOk(existsSync(join(doc.dir, 'data', 'walk-gnupg')), 'the walk removes its keyring');
  },
);
