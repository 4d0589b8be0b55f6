import t from 'tap';
import { dearmorMessage } from '../adapters/openpgp/dearmor.js';
import { scanPackets, TAG } from '../adapters/openpgp/scan-packets.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenPgpDeliverySealer } from '../adapters/openpgp/seal-delivery.js';
import { openPgpFormat } from '../adapters/openpgp/format.js';
import { loadOrCreateBrokerOpenPgpKeys } from '../broker/keys/openpgp-keys.js';
import { currentOpenPgpRecipient } from '../adapters/openpgp/recipients.js';
import type { Agency } from '../broker/registry/model.js';
import { startGpg } from './helpers/gpg.js';

/** OpenPGP deliveries as GnuPG recipients see them (the sealer; routing does not use it yet). */
const dir = mkdtempSync(join(tmpdir(), 'liaison-pgp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const { keys: broker } = await loadOrCreateBrokerOpenPgpKeys(dir, 'liaison-hub');
const sealer = createOpenPgpDeliverySealer(broker.decryptionKeys[0]!);
const gpg = startGpg(t);
await gpg.importKey(broker.publicArmored);

const agency = async (fpr: string, patch: Record<string, unknown> = {}): Promise<Agency> => ({
  id: 'gb-border-force',
  country: 'GB',
  name: 'UK Border Force',
  roles: ['subscribe'],
  keys: [],
  delivery_format: 'openpgp',
  openpgp_keys: [
    { kid: fpr, use: 'sig', format: 'openpgp', armored: await gpg.exportPublic(fpr), status: 'active', ...patch },
  ],
});

for (const kind of ['ed25519', 'rsa3072'] as const) {
  t.test(
    `GnuPG (${kind}) decrypts a delivery, checks the broker's signature, then the origin's`,
    { timeout: 120_000 },
    async (t) => {
      const recipient = await gpg.genKey(`Recipient ${kind} <r-${kind}@example.org>`, kind);
      const origin = await gpg.genKey(`Origin ${kind} <o-${kind}@example.org>`, 'ed25519');
      const notice = JSON.stringify({ id: 'n-1', summary: 'container MSCU1234567' });
      const originSigned = (await gpg.run(['--armor', '--local-user', origin, '--sign'], { input: notice })).stdout;
      const to = await currentOpenPgpRecipient(await agency(recipient), new Date());
      t.equal(to?.kid, recipient);
      for (const [signed, format] of [
        [originSigned, 'openpgp'],
        [Buffer.from('eyJhbGciOiJFZERTQSJ9.e30.c2ln'), 'jose'],
      ] as const) {
        const delivery = await sealer.seal(signed, { key: to!.key, noticeId: 'n-1', format });
        t.match(delivery, /^-----BEGIN PGP MESSAGE-----/);
        const opened = await gpg.run(['--status-fd', '2', '--decrypt'], { input: delivery });
        t.match(
          opened.stderr,
          new RegExp(`VALIDSIG [0-9A-F]+ .* ${broker.fingerprint}`),
          `${format}: signed by the broker's OpenPGP key`,
        );
        t.ok(opened.stdout.equals(Buffer.from(signed)), `${format}: the origin's signed bytes, unchanged`);
        if (format === 'openpgp') {
          const inner = await gpg.run(['--status-fd', '2', '--decrypt'], { input: opened.stdout });
          t.match(
            inner.stderr,
            new RegExp(`VALIDSIG [0-9A-F]+ .* ${origin}`),
            "the origin's signature verifies in GnuPG",
          );
          t.equal(inner.stdout.toString('utf8'), notice);
        }
      }
    },
  );
}

t.test(
  'one notice to several recipients: signed and encrypted once, each its own PKESK and the same SEIPD, GnuPG opens each',
  { timeout: 120_000 },
  async (t) => {
    const fprs = [
      await gpg.genKey('Many A <many-a@example.org>', 'ed25519'),
      await gpg.genKey('Many B <many-b@example.org>', 'rsa3072'),
      await gpg.genKey('Many C <many-c@example.org>', 'ed25519'),
    ];
    const keys = await Promise.all(
      fprs.map(async (f) => (await currentOpenPgpRecipient(await agency(f), new Date()))!.key),
    );
    const signed = Buffer.from('eyJhbGciOiJFZERTQSJ9.e30.c2ln');
    const messages = await sealer.sealAll(signed, { keys, noticeId: 'n-2', format: 'jose' });
    t.equal(messages.length, 3, 'one message per recipient');
    // Each message's packets, by the broker's own scanner (independent of openpgp.js).
    const bins = messages.map((m) => dearmorMessage(m, { maxArmorBytes: 1 << 20, maxArmorHeaders: 8 }));
    const scanned = bins.map((b) => scanPackets(b, { maxPackets: 8, keepBodiesUpTo: 4096 }));
    for (const [i, packets] of scanned.entries()) {
      t.same(
        packets.map((p) => p.tag),
        [TAG.pkesk, TAG.seipd],
        `${i}: one session key packet, its own, and the encrypted data`,
      );
      // A version 3 PKESK (RFC 9580 §5.1.1): the version, then the 8-byte key ID.
      t.equal(packets[0]!.body![0], 3);
      const keyId = Buffer.from(packets[0]!.body!.subarray(1, 9)).toString('hex').toUpperCase();
      t.ok(
        keys[i]!.getKeyIDs().some((id) => id.toHex().toUpperCase() === keyId),
        `${i}: to its own certificate (${keyId})`,
      );
    }
    const seipd = scanned.map((packets, i) => Buffer.from(bins[i]!.subarray(packets[1]!.start)).toString('hex'));
    t.equal(new Set(seipd).size, 1, 'the same encrypted data for all three: encrypted (and signed) once');
    for (const [i, m] of messages.entries()) {
      const opened = await gpg.run(['--status-fd', '2', '--decrypt'], { input: m });
      t.match(opened.stderr, new RegExp(`VALIDSIG [0-9A-F]+ .* ${broker.fingerprint}`), `${i}: the broker's signature`);
      t.ok(opened.stdout.equals(signed), `${i}: GnuPG gets the signed bytes`);
    }
    t.same(await sealer.sealAll(signed, { keys: [], noticeId: 'n-3', format: 'jose' }), [], 'no recipients, no work');
    // A changed session key packet: GnuPG opens nothing.
    const bin = Buffer.from(bins[0]!);
    bin[scanned[0]![0]!.end - 3]! ^= 0x01;
    const bad = await gpg.run(['--status-fd', '2', '--decrypt'], { input: bin, allowFail: true });
    t.not(bad.status, 0, 'a changed PKESK does not decrypt');
    t.equal(bad.stdout.length, 0, 'and gives nothing out');
  },
);

t.test(
  "the router's OpenPGP sealer: one message per recipient with a certificate, in order",
  { timeout: 60_000 },
  async (t) => {
    const [a, c] = [
      await gpg.genKey('Order A <a@example.org>', 'ed25519'),
      await gpg.genKey('Order C <c@example.org>', 'ed25519'),
    ];
    const sealerOf = openPgpFormat.deliverySealer({ openPgpSigningKey: broker.decryptionKeys[0]! })!;
    const recipients = [
      { kid: a, agency: await agency(a) },
      { kid: 'none', agency: { ...(await agency(a)), id: 'no-cert', openpgp_keys: [] } },
      { kid: c, agency: await agency(c) },
    ];
    const signed = Buffer.from('eyJhbGciOiJFZERTQSJ9.e30.c2ln');
    const out = await sealerOf.seal(signed, recipients, { noticeId: 'n-4', format: 'jose' }, new Date());
    t.same(
      out.map((d) => d?.kid),
      [a, undefined, c],
      'undefined for the agency without a certificate, the others in order',
    );
    for (const [i, fpr] of [[0, a] as const, [2, c] as const]) {
      const opened = await gpg.run(['--status-fd', '2', '--decrypt'], { input: out[i]!.body });
      t.match(opened.stderr, new RegExp(`ENC_TO [0-9A-F]+`), `${i}: encrypted to one key`);
      const keyIds = [...opened.stderr.matchAll(/ENC_TO ([0-9A-F]+)/g)].map((m) => m[1]);
      t.equal(keyIds.length, 1, `${i}: one recipient only`);
      const own = (await currentOpenPgpRecipient(await agency(fpr), new Date()))!.key.getKeyIDs();
      t.ok(
        own.some((id) => id.toHex().toUpperCase() === keyIds[0]),
        `${i}: its own certificate`,
      );
      t.ok(opened.stdout.equals(signed), `${i}: GnuPG opens it`);
    }
  },
);

t.test(
  'no recipient certificate when revoked, expired in the registry, or mismatched',
  { timeout: 60_000 },
  async (t) => {
    const fpr = await gpg.genKey('Other <other@example.org>', 'ed25519');
    t.ok(await currentOpenPgpRecipient(await agency(fpr), new Date()));
    t.equal(
      await currentOpenPgpRecipient(
        await agency(fpr, { status: 'revoked', revoked_at: new Date(Date.now() - 1000).toISOString() }),
        new Date(),
      ),
      undefined,
    );
    t.equal(
      await currentOpenPgpRecipient(
        await agency(fpr, { not_after: new Date(Date.now() - 1000).toISOString() }),
        new Date(),
      ),
      undefined,
    );
    t.equal(await currentOpenPgpRecipient(await agency(fpr, { kid: 'A'.repeat(40) }), new Date()), undefined);
  },
);
