import { LiaisonError } from './errors.js';

/** Agency and operation ids: lower-case slugs, safe as NATS subject tokens and KV keys. */
export const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
/** ISO 3166-1 alpha-2. */
export const COUNTRY = /^[A-Z]{2}$/;
/** Notice ids: canonical lower-case UUIDs. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Notice type names. */
export const TYPE_NAME = SLUG;

// Control characters are among what a subject token must not hold.
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_SUBJECT = /[.*>\s\u0000-\u001f\u007f]/u;

/**
 * A value about to become one token of a NATS subject. Even after schema
 * validation this is checked again at the boundary, so that no path can put
 * `.`, `*`, `>` or whitespace from input into a subject.
 */
export function subjectToken(value: unknown, what: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > 64 ||
    UNSAFE_IN_SUBJECT.test(value) ||
    !/^[A-Za-z0-9_-]+$/.test(value)
  ) {
    throw new LiaisonError('bad-request', {
      detail: `unsafe subject token for ${what}`,
      publicDetail: `${what} is not a safe identifier`,
    });
  }
  return value;
}

export const isSlug = (v: unknown): v is string => typeof v === 'string' && SLUG.test(v);
export const isCountry = (v: unknown): v is string => typeof v === 'string' && COUNTRY.test(v);
export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
/** An RFC 3339 date-time (upper-case T and Z) that is also a real time. */
export const isRfc3339 = (v: unknown): v is string =>
  typeof v === 'string' && RFC3339.test(v) && !Number.isNaN(Date.parse(v));
/** Lower-case hex SHA-256, as log entries write it. */
export const isSha256Hex = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
