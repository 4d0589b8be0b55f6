import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import type { JWK } from 'jose';

const b64 = (v: string | Uint8Array) =>
  Buffer.from(typeof v === 'string' ? new TextEncoder().encode(v) : v).toString('base64url');

/** Sign a compact JWS with an arbitrary protected header (for headers jose refuses to produce: crit, jku, ...). */
export function forgeJws(header: Record<string, unknown>, payload: Uint8Array | string, privateJwk: JWK): string {
  const input = `${b64(JSON.stringify(header))}.${b64(payload)}`;
  const key = createPrivateKey({ key: privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const alg = privateJwk.crv === 'Ed25519' ? null : 'sha256';
  const sig = nodeSign(
    alg,
    Buffer.from(input),
    privateJwk.crv === 'Ed25519' ? key : { key, dsaEncoding: 'ieee-p1363' },
  );
  return `${input}.${b64(sig)}`;
}

/** Replace the protected header of a compact serialization (JWE or JWS), keeping the other parts. */
export function withHeader(compact: string, patch: Record<string, unknown>, remove: string[] = []): string {
  const parts = compact.split('.');
  const header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as Record<string, unknown>;
  for (const k of remove) delete header[k];
  parts[0] = b64(JSON.stringify({ ...header, ...patch }));
  return parts.join('.');
}

/** Flip one bit of one base64url part of a compact serialization. */
export function flipPart(compact: string, index: number): string {
  const parts = compact.split('.');
  const bytes = Buffer.from(parts[index] as string, 'base64url');
  const i = Math.floor(bytes.length / 2);
  bytes[i] = (bytes[i] as number) ^ 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join('.');
}

export { b64 };
