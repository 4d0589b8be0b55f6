import { GeneralEncrypt, generalDecrypt, CompactSign, importJWK, type JWK, type GeneralJWE } from 'jose';
import { isDeepStrictEqual } from 'node:util';
import {
  E2E_ALG,
  E2E_CTY,
  E2E_ENC,
  E2E_MEDIA_TYPE,
  parseE2eEnvelope,
  ROUTING_HEADER_TYP,
} from '../../adapters/e2e-jose/wire.js';
import { WITHDRAWAL_TYPE } from '../core/notice.js';
import { sha256Hex } from '../core/sha256.js';
import type { AgencyKey } from '../registry/model.js';
import { ROUTING_HEADER_NOTICE_FIELDS, type RoutingHeader } from '../schemas/routing-header-validator.js';
import type { NoticeValidator } from '../schemas/notice-validator.js';
import { DeliveryVerificationError, verifyJws, type OpenedDelivery } from './open-delivery.js';
import { signNotice } from './seal.js';
import { makeClientAssertion } from './assertion.js';
import { readJson, type FetchLike } from './http.js';

export { E2E_MEDIA_TYPE };

/**
 * The member directory of `operation` as `agency` sees it; undefined when the
 * broker answers 404 (no such operation, or not a member: the gateway refuses
 * the notice then, with the usual policy-denied).
 */
export async function fetchOperationDirectory(
  url: string,
  fetch: FetchLike,
  agency: string,
  signingKey: JWK,
  brokerId: string,
  operation: string,
): Promise<OperationDirectory | undefined> {
  const res = await fetch(`${url}/v1/operations/${encodeURIComponent(operation)}/members`, {
    headers: { authorization: `Bearer ${await makeClientAssertion(agency, signingKey, brokerId)}` },
  });
  if (res.status === 404) return undefined;
  return readJson<OperationDirectory>(res, `GET ${url}/v1/operations/${operation}/members`);
}

/** GET /v1/operations/:id/members, as the broker serves it. */
export interface OperationDirectory {
  operation: string;
  end_to_end: boolean;
  members: {
    agency: string;
    country: string;
    receives: boolean;
    encryption_keys: JWK[];
    /** The member's active OpenPGP certificates (armored), for the OpenPGP form (end-to-end-openpgp.ts). */
    openpgp_keys?: string[];
  }[];
}

const COUNTRY = /^[A-Z]{2}$/;

/**
 * The recipients' keys for a notice from the member directory: the addressees
 * expanded as the gateway expands them (every receiving member but the origin
 * for "*", those of a country, or the agency named), one key each (the last
 * listed, the newest). Throws when an addressee has no receiving member.
 */
export function recipientKeys(
  notice: { origin?: unknown; addressees?: unknown },
  directory: OperationDirectory,
): { agency: string; key: JWK }[] {
  return recipientMembers(notice, directory, (m) => m.encryption_keys.length > 0).map((m) => ({
    agency: m.agency,
    key: m.encryption_keys[m.encryption_keys.length - 1]!,
  }));
}

/**
 * The members a notice's addressees expand to, as the gateway expands them
 * (every receiving member but the origin for "*", those of a country, or the
 * agency named), sorted by agency id; among them only those `usable` accepts
 * (a key of the form being sealed). Throws when an addressee has none.
 */
export function recipientMembers(
  notice: { origin?: unknown; addressees?: unknown },
  directory: OperationDirectory,
  usable: (m: OperationDirectory['members'][number]) => boolean,
): OperationDirectory['members'] {
  const origin = (notice.origin as { agency?: unknown } | undefined)?.agency;
  const addressees = Array.isArray(notice.addressees) ? (notice.addressees as unknown[]) : [];
  const receiving = directory.members.filter((m) => m.receives && m.agency !== origin && usable(m));
  const chosen = new Map<string, OperationDirectory['members'][number]>();
  for (const a of addressees) {
    const matching = receiving.filter((m) =>
      a === '*' ? true : typeof a === 'string' && COUNTRY.test(a) ? m.country === a : m.agency === a,
    );
    if (matching.length === 0)
      throw new Error(`addressee ${String(a)} has no receiving member in ${directory.operation}`);
    for (const m of matching) chosen.set(m.agency, m);
  }
  return [...chosen.values()].sort((a, b) => (a.agency < b.agency ? -1 : 1));
}

/**
 * Seal a notice end to end (docs/end-to-end.md): the origin's compact JWS
 * over the notice JSON (as for any notice), encrypted once (A256GCM) for each
 * recipient's key (ECDH-ES+A256KW, General JSON Serialization), beside a
 * compact JWS over the routing header that binds that body by its SHA-256.
 * Returns the envelope to POST as application/liaison-e2e+json.
 */
export async function sealEndToEnd(
  notice: Record<string, unknown>,
  signingKey: JWK,
  recipients: readonly { key: JWK }[],
  opts: { raw?: Uint8Array } = {},
): Promise<{ envelope: string; header: RoutingHeader; jws: string; body: string }> {
  const jws = await signNotice(opts.raw ?? new TextEncoder().encode(JSON.stringify(notice)), signingKey);
  const enc = new GeneralEncrypt(new TextEncoder().encode(jws)).setProtectedHeader({ enc: E2E_ENC, cty: E2E_CTY });
  for (const { key } of recipients)
    enc.addRecipient(await importJWK(key, E2E_ALG)).setUnprotectedHeader({ alg: E2E_ALG, kid: key.kid! });
  const body = JSON.stringify(await enc.encrypt());
  const header = routingHeaderOf(notice, sha256Hex(Buffer.from(body, 'utf8')));
  const alg = signingKey.alg ?? (signingKey.crv === 'Ed25519' ? 'EdDSA' : 'ES256');
  const headerJws = await new CompactSign(new TextEncoder().encode(JSON.stringify(header)))
    .setProtectedHeader({ alg, kid: signingKey.kid!, typ: ROUTING_HEADER_TYP })
    .sign(await importJWK(signingKey, alg));
  return { envelope: JSON.stringify({ header: headerJws, body }), header, jws, body };
}

/**
 * The routing header of a notice: its shared fields, for a withdrawal the id
 * it supersedes (what the hub routes it by; action, reason and correction stay
 * sealed), and the body's hash.
 */
export function routingHeaderOf(notice: Record<string, unknown>, bodySha256: string): RoutingHeader {
  const h: Record<string, unknown> = {};
  for (const f of ROUTING_HEADER_NOTICE_FIELDS) if (notice[f] !== undefined) h[f] = notice[f];
  const supersedes = (notice.body as { supersedes?: unknown } | undefined)?.supersedes;
  if (notice.type === WITHDRAWAL_TYPE && supersedes !== undefined) h.supersedes = supersedes;
  return { ...(h as Omit<RoutingHeader, 'body_sha256'>), body_sha256: bodySha256 };
}

/**
 * The recipient's check of what the hub routed a withdrawal by: the sealed
 * notice's body.supersedes equals the routing header's `supersedes` and is in
 * its references (the rule the hub applies to a hub-readable withdrawal), and
 * only a withdrawal's header names one. Run after the shared fields (type
 * included) are found equal.
 */
export function checkSupersedes(notice: Record<string, unknown>, header: RoutingHeader): void {
  const named = header.supersedes;
  if (notice.type !== WITHDRAWAL_TYPE) {
    if (named !== undefined)
      throw fail(
        'routing-header-mismatch',
        'the routing header names a superseded notice, the notice is no withdrawal',
      );
    return;
  }
  const body = notice.body as { supersedes?: unknown } | undefined;
  const references = Array.isArray(notice.references) ? (notice.references as unknown[]) : [];
  if (typeof named !== 'string' || body?.supersedes !== named || !references.includes(named))
    throw fail(
      'routing-header-mismatch',
      "the withdrawal's body.supersedes and references are not the routing header's supersedes",
    );
}

export interface OpenedEndToEnd extends OpenedDelivery {
  routingHeader: RoutingHeader;
}

const fail = (code: 'routing-header-mismatch' | 'decrypt-failed' | 'notice-schema-invalid', m: string) =>
  new DeliveryVerificationError(code, m);

/**
 * Open an end-to-end delivery as its recipient: the routing header's
 * signature (the origin's registered key, valid when the broker received
 * it) and its binding of the body; decrypt with the recipient's own key; the
 * origin's signature on the notice; the notice's header fields equal the
 * routing header's; the notice valid against its type's JSON Schema (the
 * gateway's validator). The hub could check none of the last three.
 */
export async function openEndToEnd(
  delivery: { e2e?: string | undefined; notice_id: string; origin: { agency: string }; received_at: string },
  myDecryptionKey: JWK,
  originKeys: (agency: string) => Promise<readonly AgencyKey[]>,
  validator: NoticeValidator,
): Promise<OpenedEndToEnd> {
  if (typeof delivery.e2e !== 'string') throw fail('decrypt-failed', 'not an end-to-end delivery');
  let env;
  try {
    env = parseE2eEnvelope(delivery.e2e, Buffer.byteLength(delivery.e2e) + 1);
  } catch {
    throw fail('routing-header-mismatch', 'the delivery is not an end-to-end envelope {header, body}');
  }
  const signedHeader = await verifyJws(new TextEncoder().encode(env.header), delivery, originKeys);
  const header = signedHeader.notice as unknown as RoutingHeader;
  if (header.body_sha256 !== sha256Hex(Buffer.from(env.body, 'utf8')))
    throw fail('routing-header-mismatch', "the body is not the one the origin's routing header binds (body_sha256)");
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await generalDecrypt(
      JSON.parse(env.body) as GeneralJWE,
      await importJWK(myDecryptionKey, E2E_ALG),
      {
        keyManagementAlgorithms: [E2E_ALG],
        contentEncryptionAlgorithms: [E2E_ENC],
      },
    ));
  } catch (e) {
    throw fail('decrypt-failed', `the body does not decrypt with this key: ${(e as Error).message}`);
  }
  const opened = await verifyJws(plaintext, delivery, originKeys);
  return checkOpenedNotice(opened, header, delivery, validator);
}

/**
 * The recipient's checks of an opened end-to-end notice, in either form: its
 * header fields are the routing header's (and a withdrawal's supersedes), it
 * is the notice the delivery labels name, and it is valid against its type's
 * schema. The hub could check none of them.
 */
export function checkOpenedNotice(
  opened: OpenedDelivery,
  header: RoutingHeader,
  delivery: { notice_id: string; origin: { agency: string } },
  validator: NoticeValidator,
): OpenedEndToEnd {
  const notice = opened.notice;
  for (const f of ROUTING_HEADER_NOTICE_FIELDS)
    if (!isDeepStrictEqual(notice[f], (header as unknown as Record<string, unknown>)[f]))
      throw fail('routing-header-mismatch', `the notice's ${f} is not the routing header's`);
  checkSupersedes(notice, header);
  if (notice.id !== delivery.notice_id || (notice.origin as { agency?: unknown }).agency !== delivery.origin.agency)
    throw new DeliveryVerificationError('origin-mismatch', 'the signed notice does not match the delivery labels');
  const valid = validator.validate(notice);
  if (!valid.ok)
    throw fail(
      'notice-schema-invalid',
      `the notice does not match its schema: ${valid.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`,
    );
  return { ...opened, routingHeader: header };
}
