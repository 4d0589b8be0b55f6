import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenPgpDeliverySealer } from '../adapters/openpgp/seal-delivery.js';
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
