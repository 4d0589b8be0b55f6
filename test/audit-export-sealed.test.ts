import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../broker/cli/liaison.js';
import type { AddressInfo } from 'node:net';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { inboxClients } from './helpers/inbox.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

/**
 * `liaison audit export` must not write notice content in clear: by default
 * the archive holds no notices (verify counts them as not fetched); with
 * `--encrypt-to` an auditor's X25519/P-256 JWK the notices are in a JWE to
 * it, which `audit verify --decrypt-with` the private JWK opens; so are the
 * recipients' complaints, whose detail may quote the notice.
 */
t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { checkpointEveryEntries: 1, checkpointIntervalMs: 200 });
const dir = mkdtempSync(join(tmpdir(), 'liaison-export-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const kh = inboxClients(g, `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`)('kh-police-adp');
const MARKER = `AUDIT-MARKER-${randomBytes(6).toString('hex')}`;
const notice = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['KH'],
  tlp: 'GREEN',
  summary: `Seizure ${MARKER}`,
});

let out = '';
const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
const exportTo = (file: string, ...extra: string[]) =>
  run(
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
      ...extra,
    ],
    io,
  );
/** The marker, raw or in any base64url token of the file, decoded (twice: an archive's notices are base64url of JWSs). */
const holdsMarker = (text: string, depth = 0): boolean =>
  text.includes(MARKER) ||
  (depth < 3 &&
    (text.match(/[A-Za-z0-9_-]{16,}/g) ?? []).some((tok) =>
      holdsMarker(Buffer.from(tok, 'base64url').toString('utf8'), depth + 1),
    ));

t.test('by default the archive holds no notices; verify counts them as not fetched', async (t) => {
  t.equal((await g.post((await g.seal(notice, 'vn-customs')).jwe)).status, 202);
  // The recipient complains, quoting the notice.
  await waitFor(
    async () => (await kh.pull({ limit: 10 })).deliveries.find((d) => d.notice_id === notice.id),
    "kh-police-adp's delivery",
  );
  await kh.fileComplaint({ noticeId: notice.id, reason: 'body-schema-invalid', detail: `It says "${MARKER}"` });
  await waitFor(async () => ((g.gw.checkpointer?.status.checkpointSize ?? 0) >= 2 ? true : undefined), 'checkpoint');
  const file = join(dir, 'plain.json');
  out = '';
  t.equal(await exportTo(file), 0, out);
  const text = readFileSync(file, 'utf8');
  t.notOk(holdsMarker(text), 'no notice content in the file');
  t.equal((JSON.parse(text) as Record<string, unknown>).notices, undefined);
  out = '';
  t.equal(await run(['audit', 'verify', '--archive', file, '--json'], io), 0, out);
  t.match(JSON.parse(out), { ok: true, noticesChecked: 0, noticesNotFetched: 1, noticesErased: 0 });
});

for (const kind of ['X25519', 'P-256-ECDH'] as const) {
  t.test(`--encrypt-to a ${kind} JWK: the notices in a JWE that --decrypt-with opens`, async (t) => {
    const auditor = await makeKeyPair(kind);
    const pub = join(dir, `${kind}.pub.jwk`);
    const priv = join(dir, `${kind}.jwk`);
    writeFileSync(pub, JSON.stringify(auditor.publicJwk));
    writeFileSync(priv, JSON.stringify(auditor.privateJwk));
    const file = join(dir, `sealed-${kind}.json`);
    out = '';
    t.equal(await exportTo(file, '--encrypt-to', pub), 0, out);
    const text = readFileSync(file, 'utf8');
    t.notOk(holdsMarker(text), 'no notice content in clear');
    const archive = JSON.parse(text) as Record<string, unknown>;
    t.equal(archive.notices, undefined);
    t.type(archive.notices_jwe, 'string');
    out = '';
    t.equal(await run(['audit', 'verify', '--archive', file, '--decrypt-with', priv, '--json'], io), 0, out);
    t.match(JSON.parse(out), { ok: true, noticesChecked: 1, noticesErased: 0, complaints: 1, complaintsChecked: 1 });
    out = '';
    t.equal(await run(['audit', 'verify', '--archive', file, '--json'], io), 0, 'without the key: not fetched');
    t.match(JSON.parse(out), { noticesNotFetched: 1, complaints: 1 });
    t.equal((JSON.parse(out) as Record<string, unknown>).complaintsChecked, undefined, 'nor the complaint');
    const other = await makeKeyPair(kind);
    const wrong = join(dir, `${kind}.wrong.jwk`);
    writeFileSync(wrong, JSON.stringify(other.privateJwk));
    out = '';
    t.not(await run(['audit', 'verify', '--archive', file, '--decrypt-with', wrong], io), 0);
    t.match(out, /do not open/);
  });
}

t.test('a private JWK given to --encrypt-to, or a public one to --decrypt-with, is refused', async (t) => {
  const k = await makeKeyPair('X25519');
  const priv = join(dir, 'priv.jwk');
  const pub = join(dir, 'pub.jwk');
  writeFileSync(priv, JSON.stringify(k.privateJwk));
  writeFileSync(pub, JSON.stringify(k.publicJwk));
  out = '';
  const file = join(dir, 'never.json');
  t.not(await exportTo(file, '--encrypt-to', priv), 0);
  t.match(out, /private key/);
  t.throws(() => readFileSync(file), { code: 'ENOENT' }, 'nothing written');
  out = '';
  t.not(await run(['audit', 'verify', '--archive', join(dir, 'plain.json'), '--decrypt-with', pub], io), 0);
  t.match(out, /no private part/);
});
