import {
  config as defaultConfig,
  enums,
  Message,
  PacketList,
  type AnyPacket,
  type LiteralDataPacket,
  type OnePassSignaturePacket,
  type SignaturePacket,
} from 'openpgp';
import { LiaisonError } from '../../broker/core/errors.js';
import type { OpenPgpSigner, OpenPgpSignerResolver } from './signers.js';
import { armorMessage } from './dearmor.js';

export interface VerifiedMessage {
  /** The signed message (one-pass signature, literal data, signature), decompressed and ASCII-armored. */
  signed: Uint8Array;
  payload: Uint8Array;
  signer: OpenPgpSigner;
}

/** Signature types a notice may carry: over binary or canonical text (RFC 9580 5.2.1). */
const DOCUMENT_SIGNATURES: readonly number[] = [enums.signature.binary, enums.signature.text];
/** Leeway for a signature dated slightly ahead of the broker's clock; the notice's own created_at is checked later with the configured skew. */
const SIGNATURE_SKEW_MS = 5 * 60_000;

/**
 * Step 3 (OpenPGP): the decrypted content must be exactly one signed message,
 * [compressed data ⊃] one-pass signature, literal data, signature, made by a
 * registered, active agency OpenPGP key. Unsigned content is `signature-invalid`;
 * more than one signature, or a literal that is itself an OpenPGP message
 * (nested), is `openpgp-limits`.
 */
/**
 * The packets of a list, including those openpgp.js left in its internal
 * array stream (it does so after a literal packet with partial body lengths, as
 * GnuPG writes when it signs from a pipe). Everything is in memory already.
 */
export async function allPackets(list: PacketList<AnyPacket>): Promise<unknown[]> {
  const out: unknown[] = [...list];
  const stream = (
    list as unknown as { stream?: { getReader(): { read(): Promise<{ done: boolean; value: unknown }> } } }
  ).stream;
  if (stream && typeof stream.getReader === 'function') {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (Array.isArray(value)) out.push(...(value as unknown[]));
      else if (value !== undefined) out.push(value);
    }
  }
  return out;
}

/** openpgp.js writes packets read with partial lengths as an (in-memory) stream: collect it. */
export async function toBytes(data: unknown): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  const reader = (data as { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } }).getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value) chunks.push(value);
  }
  return Buffer.concat(chunks);
}

export async function verifyMessage(
  decrypted: Message<Uint8Array>,
  resolve: OpenPgpSignerResolver,
  now: Date,
  cfg: typeof defaultConfig,
): Promise<VerifiedMessage> {
  const tagOf = (p: unknown) => (p as { constructor: { tag?: number } }).constructor.tag ?? -1;
  let packets = await allPackets(decrypted.packets);
  if (packets.length === 1 && tagOf(packets[0]) === (enums.packet.compressedData as number)) {
    packets = await allPackets((packets[0] as { packets: PacketList<AnyPacket> }).packets);
  }
  const tags = packets.map(tagOf);
  const count = (tag: number) => tags.filter((t) => t === tag).length;
  if (count(enums.packet.compressedData) > 0)
    throw new LiaisonError('openpgp-limits', { publicDetail: 'nested compressed data is refused' });
  if (count(enums.packet.literalData) !== 1)
    throw new LiaisonError('envelope-malformed', {
      publicDetail: 'the message must hold exactly one literal data packet',
    });
  const signatures = count(enums.packet.signature);
  if (signatures === 0) throw new LiaisonError('signature-invalid', { publicDetail: 'the message is not signed' });
  if (signatures > 1 || count(enums.packet.onePassSignature) > 1)
    throw new LiaisonError('openpgp-limits', { publicDetail: 'exactly one signature is accepted' });
  if (tags.join(',') !== [enums.packet.onePassSignature, enums.packet.literalData, enums.packet.signature].join(',')) {
    throw new LiaisonError('envelope-malformed', {
      publicDetail: 'expected a one-pass signed message (one-pass signature, literal data, signature)',
    });
  }
  const [ops, literal, sig] = packets as unknown as [
    OnePassSignaturePacket & { issuerKeyID: SignaturePacket['issuerKeyID'] },
    LiteralDataPacket,
    SignaturePacket,
  ];
  const inner = new PacketList();
  inner.push(ops, literal, sig);
  const payload = new Message(inner).getLiteralData() as Uint8Array | null;
  if (!(payload instanceof Uint8Array))
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the literal data cannot be read' });
  const head = Buffer.from(payload.subarray(0, 64)).toString('latin1').trimStart();
  if ((payload.length > 0 && ((payload[0] as number) & 0x80) !== 0) || head.startsWith('-----BEGIN PGP')) {
    throw new LiaisonError('openpgp-limits', {
      publicDetail: 'a nested OpenPGP message is refused; sign and encrypt the notice JSON once',
    });
  }
  if (!DOCUMENT_SIGNATURES.includes(sig.signatureType as number))
    throw new LiaisonError('signature-invalid', { detail: `signature type ${String(sig.signatureType)}` });
  const keyID = sig.issuerKeyID.toHex().toUpperCase();
  if (ops.issuerKeyID.toHex().toUpperCase() !== keyID)
    throw new LiaisonError('envelope-malformed', {
      publicDetail: 'the one-pass signature and the signature name different keys',
    });
  const fingerprint = sig.issuerFingerprint
    ? Buffer.from(sig.issuerFingerprint).toString('hex').toUpperCase()
    : undefined;
  const signer = await resolve(fingerprint ? { keyID, fingerprint } : { keyID });
  try {
    const [verification] = await new Message(inner).verify(
      [signer.key],
      new Date(now.getTime() + SIGNATURE_SKEW_MS),
      cfg,
    );
    if (!verification) throw new Error('no verification result');
    await verification.verified;
  } catch (e) {
    throw new LiaisonError('signature-invalid', {
      detail: `OpenPGP signature verification failed: ${e instanceof Error ? e.name : 'error'}`,
      cause: e,
    });
  }
  // What is stored and hashed: the sender's three packets, re-serialized without compression and armored,
  // so that `gpg --verify` or any OpenPGP implementation re-verifies it from NOTICES without the broker.
  const signed = new TextEncoder().encode(armorMessage(await toBytes(inner.write())));
  return { signed, payload, signer };
}
