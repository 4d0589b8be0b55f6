import { createHash } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import { parseProtectedHeader } from '../core/jose-header.js';
import type { Role, RegistrySnapshot } from '../registry/model.js';

/** Longest accepted lifetime of a client assertion (exp - iat), seconds. */
export const MAX_ASSERTION_LIFETIME = 300;
const JTI = /^[A-Za-z0-9_.:-]{8,128}$/;

export interface AuthenticatedAgency {
  agencyId: string;
  country: string;
  roles: Role[];
  kid: string;
}

/** Remembers jti values until their assertion has expired; `claim` returns false for a value already seen. */
export interface ReplayGuard {
  claim(agencyId: string, jti: string, expiresAt: number): Promise<boolean>;
}

const unauthorized = (publicDetail: string, cause?: unknown) =>
  new LiaisonError('unauthorized', { publicDetail, cause });

/**
 * A client assertion (RFC 7523 style): a JWT signed by one of the agency's
 * active signing keys, iss = sub = the agency id, aud = the broker id, a short
 * lifetime and a unique jti, which is refused the second time it is seen.
 */
export async function verifyClientAssertion(
  token: string,
  opts: {
    brokerId: string;
    registry: RegistrySnapshot;
    resolveSigner: (kid: string) => Promise<ResolvedSigner>;
    replay: ReplayGuard;
    now?: Date;
  },
): Promise<AuthenticatedAgency> {
  const parts = token.split('.');
  if (parts.length !== 3) throw unauthorized('the bearer token is not a compact JWS client assertion');
  let header;
  try {
    header = parseProtectedHeader(parts[0] as string, {
      what: 'JWS',
      allowedAlgs: ['EdDSA', 'Ed25519', 'ES256'],
      allowedParams: ['alg', 'kid', 'typ'],
    });
  } catch (e) {
    throw unauthorized((e as LiaisonError).publicDetail ?? 'the assertion header is not acceptable', e);
  }
  let signer: ResolvedSigner;
  try {
    signer = await opts.resolveSigner(header.kid);
  } catch (e) {
    throw unauthorized('the assertion key is unknown, revoked or expired', e);
  }
  const now = opts.now ?? new Date();
  let payload;
  try {
    ({ payload } = await jwtVerify(token, signer.key, {
      algorithms: [...signer.algorithms],
      audience: opts.brokerId,
      issuer: signer.agencyId,
      subject: signer.agencyId,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
      currentDate: now,
      clockTolerance: 30,
      maxTokenAge: MAX_ASSERTION_LIFETIME + 30,
    }));
  } catch (e) {
    throw unauthorized('the client assertion does not verify (signature, aud, iss/sub, iat/exp)', e);
  }
  // jose accepts an aud array that merely contains the broker; an assertion meant for several parties could be replayed
  // here by any of them, so aud must be this broker alone (RFC 7523 3: the audience identifies the authorization server).
  if (payload.aud !== opts.brokerId) throw unauthorized('aud must be the broker id alone');
  const exp = payload.exp as number;
  const iat = payload.iat as number;
  if (exp - iat > MAX_ASSERTION_LIFETIME)
    throw unauthorized(`assertion lifetime must be at most ${MAX_ASSERTION_LIFETIME} s`);
  if (typeof payload.jti !== 'string' || !JTI.test(payload.jti))
    throw unauthorized('jti must be 8-128 characters of [A-Za-z0-9_.:-]');
  if (!(await opts.replay.claim(signer.agencyId, payload.jti, exp)))
    throw unauthorized('the assertion was already used (jti replay)');
  const agency = opts.registry.agency(signer.agencyId);
  if (!agency) throw unauthorized('the agency is not in the registry');
  return { agencyId: agency.id, country: agency.country, roles: agency.roles, kid: signer.kid };
}

/** A KV key for a jti: the agency and a hash, so any jti is a safe key. */
export const jtiKey = (agencyId: string, jti: string) =>
  `${agencyId}.${createHash('sha256').update(jti).digest('hex')}`;
