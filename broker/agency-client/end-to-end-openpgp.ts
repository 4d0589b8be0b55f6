/**
 * The OpenPGP form of end-to-end notices (openpgp-e2e, docs/end-to-end.md),
 * as an agency's client makes and opens them; the JOSE form is end-to-end.ts.
 * Keys are v4 (Ed25519 signing, cv25519 encryption subkey, as GnuPG 2.2 and
 * broker/keys/openpgp-agency.ts make them), so GnuPG 2.2 opens what this seals.
 */
import {
  createMessage,
  encrypt,
  PacketList,
  readKey,
  readMessage,
  readPrivateKey,
  sign,
  type AnyPacket,
  type PublicKey,
} from 'openpgp';
import { armorMessage } from '../../adapters/openpgp/dearmor.js';
import { allPackets, toBytes } from '../../adapters/openpgp/verify-message.js';
import { strictConfig } from '../../adapters/openpgp/decrypt-message.js';
import { E2E_PGP_MEDIA_TYPE, isArmoredMessage, parseE2ePgpEnvelope } from '../../adapters/e2e-openpgp/wire.js';
import { sha256Hex } from '../core/sha256.js';
import type { OpenPgpAgencyKey } from '../registry/model.js';
import type { RoutingHeader } from '../schemas/routing-header-validator.js';
import type { NoticeValidator } from '../schemas/notice-validator.js';
import {
  checkOpenedNotice,
  recipientMembers,
  routingHeaderOf,
  type OpenedEndToEnd,
  type OperationDirectory,
} from './end-to-end.js';
import { DeliveryVerificationError, verifyOpenPgp } from './open-delivery.js';

export { E2E_PGP_MEDIA_TYPE };

/** openpgp.js settings for a body anyone could have encrypted to us: grammar enforced, decompression bounded. */
const BODY_CONFIG = strictConfig({ maxPlaintextBytes: 8 * 1024 * 1024 });

/** A certificate's encryption (sub)key now, or undefined when it has none valid. */
async function encryptionCertificate(armored: string, at: Date): Promise<PublicKey | undefined> {
  try {
    const key = await readKey({ armoredKey: armored });
    await key.getEncryptionKey(undefined, at);
    return key.isPrivate() ? undefined : key;
  } catch {
    return undefined;
  }
}

/**
 * The recipients' OpenPGP certificates from the member directory: the
 * addressees expanded as the gateway expands them, one certificate each (the
 * last listed with a valid encryption key). A receiving member the addressees
 * name that has no OpenPGP certificate cannot be sealed for in this form: an
 * error that says so (seal it in the JOSE form, or address it otherwise).
 */
export async function recipientCertificates(
  notice: { origin?: unknown; addressees?: unknown },
  directory: OperationDirectory,
  at: Date = new Date(),
): Promise<{ agency: string; key: PublicKey }[]> {
  const members = recipientMembers(notice, directory, () => true);
  const out: { agency: string; key: PublicKey }[] = [];
  for (const m of members) {
    let key: PublicKey | undefined;
    for (const armored of [...(m.openpgp_keys ?? [])].reverse())
      if ((key = await encryptionCertificate(armored, at))) break;
    if (!key) throw new Error(`${m.agency} has no OpenPGP encryption certificate: seal this notice in the JOSE form`);
    out.push({ agency: m.agency, key });
  }
  return out;
}

/**
 * Seal a notice end to end in OpenPGP: the notice signed by the origin's
 * OpenPGP key as for a hub-readable OpenPGP notice (one-pass signature,
 * literal data, signature) and encrypted once, with one session key packet
 * per recipient certificate; beside it the routing header, signed the same
 * way, binding that body by its SHA-256. Returns the envelope to POST as
 * application/liaison-e2e-pgp+json.
 */
export async function sealEndToEndOpenPgp(
  notice: Record<string, unknown>,
  signingKeyArmored: string,
  recipients: readonly { key: PublicKey }[],
  opts: { raw?: Uint8Array } = {},
): Promise<{ envelope: string; header: RoutingHeader; body: string; signedHeader: string }> {
  const signingKey = await readPrivateKey({ armoredKey: signingKeyArmored });
  const bytes = opts.raw ?? new TextEncoder().encode(JSON.stringify(notice));
  const body = (await encrypt({
    message: await createMessage({ binary: bytes, format: 'binary' }),
    encryptionKeys: recipients.map((r) => r.key),
    signingKeys: signingKey,
    format: 'armored',
  })) as string;
  const header = routingHeaderOf(notice, sha256Hex(Buffer.from(body, 'utf8')));
  const signedHeader = (await sign({
    message: await createMessage({ binary: new TextEncoder().encode(JSON.stringify(header)), format: 'binary' }),
    signingKeys: signingKey,
    format: 'armored',
  })) as string;
  return { envelope: JSON.stringify({ header: signedHeader, body }), header, body, signedHeader };
}

/** Whether an `e2e` delivery is in the OpenPGP form (its header is an armored message), not the JOSE one. */
export function isOpenPgpE2e(envelope: string): boolean {
  try {
    return isArmoredMessage(parseE2ePgpEnvelope(envelope, Buffer.byteLength(envelope) + 1).header);
  } catch {
    return false;
  }
}

const fail = (code: 'routing-header-mismatch' | 'decrypt-failed' | 'notice-schema-invalid', m: string) =>
  new DeliveryVerificationError(code, m);

/**
 * Open an openpgp-e2e delivery as its recipient: the header's signature (the
 * origin's registered OpenPGP signing certificate, active when the broker
 * received it) and its binding of the body; decrypt with the recipient's own
 * key; the origin's signature on the notice; the notice's header fields equal
 * the routing header's; the notice valid against its type's schema.
 */
export async function openEndToEndOpenPgp(
  delivery: { e2e?: string | undefined; notice_id: string; origin: { agency: string }; received_at: string },
  myPrivateKeyArmored: string,
  originOpenPgpKeys: (agency: string) => Promise<readonly OpenPgpAgencyKey[]>,
  validator: NoticeValidator,
): Promise<OpenedEndToEnd> {
  if (typeof delivery.e2e !== 'string') throw fail('decrypt-failed', 'not an end-to-end delivery');
  let env;
  try {
    env = parseE2ePgpEnvelope(delivery.e2e, Buffer.byteLength(delivery.e2e) + 1);
  } catch {
    throw fail('routing-header-mismatch', 'the delivery is not an end-to-end envelope {header, body}');
  }
  if (!isArmoredMessage(env.header) || !isArmoredMessage(env.body))
    throw fail('routing-header-mismatch', 'the delivery is not in the OpenPGP end-to-end form');
  const signedHeader = await verifyOpenPgp(new TextEncoder().encode(env.header), delivery, originOpenPgpKeys);
  const header = signedHeader.notice as unknown as RoutingHeader;
  if (header.body_sha256 !== sha256Hex(Buffer.from(env.body, 'utf8')))
    throw fail('routing-header-mismatch', "the body is not the one the origin's routing header binds (body_sha256)");
  let inner: string;
  try {
    const key = await readPrivateKey({ armoredKey: myPrivateKeyArmored });
    const message = await readMessage({ armoredMessage: env.body, config: BODY_CONFIG });
    const decrypted = await message.decrypt([key], undefined, undefined, undefined, BODY_CONFIG);
    // openpgp.js leaves packets after a partial-length literal in a stream: all of them, armored as sent.
    const packets = new PacketList<AnyPacket>();
    packets.push(...((await allPackets(decrypted.packets)) as AnyPacket[]));
    inner = armorMessage(await toBytes(packets.write()));
  } catch (e) {
    throw fail('decrypt-failed', `the body does not decrypt with this key: ${(e as Error).message}`);
  }
  const opened = await verifyOpenPgp(new TextEncoder().encode(inner), delivery, originOpenPgpKeys);
  return checkOpenedNotice(opened, header, delivery, validator);
}
