/**
 * The contents of an audit archive, encrypted to one auditor: the signed
 * notices and the recipients' complaints (whose detail may quote a notice), as
 * a compact JWE (ECDH-ES+A256KW, A256GCM) to the auditor's public X25519 or
 * P-256 JWK, kept in the archive as `notices_jwe`. The rest of the archive
 * (entries, checkpoints, keys) holds no notice content and stays readable to
 * anyone.
 */
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import type { AuditArchive } from './archive.js';

/** `{notices, complaints}`; archives written before complaints were sealed hold the notices array alone, under LEGACY_CTY. */
const CTY = 'liaison-audit-contents+json';
const LEGACY_CTY = 'liaison-audit-notices+json';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Why `jwk` is not an auditor's public encryption key, or null. */
export function auditorKeyRefusal(jwk: unknown, wantPrivate: boolean): string | null {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not a JWK';
  const k = jwk as JWK;
  const ok = (k.kty === 'OKP' && k.crv === 'X25519') || (k.kty === 'EC' && k.crv === 'P-256');
  if (!ok) return 'not an X25519 or P-256 key';
  const isPrivate = PRIVATE_MEMBERS.some((m) => m in k);
  if (wantPrivate && !isPrivate) return 'it holds no private part';
  if (!wantPrivate && isPrivate) return 'it holds a private key; give the public key';
  return null;
}

/** What `notices_jwe` holds. */
export interface SealedContents {
  notices: NonNullable<AuditArchive['notices']>;
  complaints?: AuditArchive['complaints'];
}

export async function sealContentsTo(auditor: JWK, contents: SealedContents): Promise<string> {
  const key = await importJWK({ ...auditor, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(contents)))
    .setProtectedHeader({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      cty: CTY,
      ...(auditor.kid ? { kid: auditor.kid } : {}),
    })
    .encrypt(key);
}

/** The archive members `notices_jwe` opens to (unchecked: the archive reader checks their shape). */
export async function openContentsWith(auditor: JWK, jwe: string): Promise<{ notices: unknown; complaints?: unknown }> {
  const key = await importJWK({ ...auditor, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, {
    keyManagementAlgorithms: ['ECDH-ES+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  if (protectedHeader.cty !== CTY && protectedHeader.cty !== LEGACY_CTY)
    throw new Error('not the contents of an audit archive');
  const v = JSON.parse(new TextDecoder().decode(plaintext)) as unknown;
  if (protectedHeader.cty === LEGACY_CTY) return { notices: v };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not the contents of an audit archive');
  const { notices, complaints } = v as { notices?: unknown; complaints?: unknown };
  return { notices, ...(complaints === undefined ? {} : { complaints }) };
}
