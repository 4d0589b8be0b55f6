import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../broker/cli/liaison.js';
import { startGpg } from './helpers/gpg.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

/** `liaison audit export --encrypt-to KEYFILE`: the archive as an OpenPGP message that the auditor's GnuPG decrypts. */
t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);
const gpg = startGpg(t);
const dir = mkdtempSync(join(tmpdir(), 'liaison-export-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await gpg.importKey(g.gw.keyring.openpgp!.publicArmored);

const notice = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['KH'],
  tlp: 'GREEN',
});
const posted = await g.post((await g.seal(notice, 'vn-customs')).jwe);
t.equal(posted.status, 202);

let out = '';
const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };

for (const kind of ['ed25519', 'rsa3072'] as const) {
  t.test(
    `GnuPG (${kind}) decrypts the exported archive and checks the broker's signature`,
    { timeout: 120_000 },
    async (t) => {
      const fpr = await gpg.genKey(`Auditor ${kind} <audit-${kind}@example.org>`, kind);
      const keyFile = join(dir, `${kind}.asc`);
      writeFileSync(keyFile, await gpg.exportPublic(fpr));
      const file = join(dir, `archive-${kind}.asc`);
      out = '';
      const code = await run(
        [
          'audit',
          'export',
          '--nats',
          nats.url,
          '--data-dir',
          g.dataDir,
          '--origin',
          g.config.brokerId,
          '--out',
          file,
          '--encrypt-to',
          keyFile,
        ],
        io,
      );
      t.equal(code, 0, out);
      const armored = readFileSync(file, 'utf8');
      t.match(armored, /^-----BEGIN PGP MESSAGE-----/);
      t.notMatch(armored, /notice_id/, 'nothing in clear');
      const opened = await gpg.run(['--status-fd', '2', '--decrypt'], { input: armored });
      t.match(
        opened.stderr,
        new RegExp(`VALIDSIG [0-9A-F]+ .* ${g.gw.keyring.openpgp!.fingerprint}`),
        "signed by the broker's OpenPGP key",
      );
      const archive = JSON.parse(opened.stdout.toString('utf8')) as { entries: unknown[] };
      t.ok(archive.entries.length >= 1, 'the archive, with its log entries');
      t.match(opened.stdout.toString('utf8'), posted.json.notice_id, 'the posted notice is in it');
    },
  );
}

t.test('a key file that is not a usable public key is refused before anything is written', async (t) => {
  const bad = join(dir, 'bad.asc');
  writeFileSync(bad, 'not a key');
  out = '';
  const file = join(dir, 'never.asc');
  const code = await run(
    ['audit', 'export', '--nats', nats.url, '--data-dir', g.dataDir, '--out', file, '--encrypt-to', bad],
    io,
  );
  t.not(code, 0);
  t.match(out, /encrypt-to/);
  t.throws(() => readFileSync(file), { code: 'ENOENT' }, 'no file was written');
});
