/**
 * The signed notices of an audit archive, encrypted to one auditor: a compact
 * JWE (ECDH-ES+A256KW, A256GCM) to the auditor's public X25519 or P-256 JWK,
 * kept in the archive as `notices_jwe`. The rest of the archive (entries,
 * checkpoints, keys) holds no notice content and stays readable to anyone.
 */
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import type { AuditArchive } from './archive.js';

const CTY = 'liaison-audit-notices+json';
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

export async function sealNoticesTo(auditor: JWK, notices: NonNullable<AuditArchive['notices']>): Promise<string> {
  const key = await importJWK({ ...auditor, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(notices)))
    .setProtectedHeader({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      cty: CTY,
      ...(auditor.kid ? { kid: auditor.kid } : {}),
    })
    .encrypt(key);
}

export async function openNoticesWith(auditor: JWK, jwe: string): Promise<unknown> {
  const key = await importJWK({ ...auditor, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, {
    keyManagementAlgorithms: ['ECDH-ES+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  if (protectedHeader.cty !== CTY) throw new Error('not the notices of an audit archive');
  return JSON.parse(new TextDecoder().decode(plaintext)) as unknown;
}
