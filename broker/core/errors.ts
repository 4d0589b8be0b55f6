/**
 * One error hierarchy for the whole broker. Every refusal a client can see is a
 * LiaisonError with a stable `code`, mapped once to an RFC 9457 problem response
 * (broker/http/problem.ts). The `title` is a fixed public sentence per code: no
 * decryption or signature oracle, no echo of input. `detail` is for the log only
 * unless `publicDetail` is set, and must never carry notice content or secrets.
 */

export const problemCodes = {
  'envelope-malformed': { status: 400, title: 'The envelope is not a well-formed compact JWE or OpenPGP message.' },
  'unsupported-media-type': { status: 415, title: 'The request content type is not accepted here.' },
  'header-forbidden': { status: 400, title: 'The envelope carries a header parameter that is not allowed.' },
  'alg-not-allowed': { status: 400, title: 'The envelope uses an algorithm that is not allowed.' },
  'key-unknown': { status: 400, title: 'The key identifier is not known to the broker.' },
  'key-revoked': { status: 403, title: 'The key is revoked or outside its validity window.' },
  'decrypt-failed': { status: 400, title: 'The envelope could not be decrypted.' },
  'signature-invalid': { status: 400, title: 'The signature does not verify.' },
  'json-invalid': { status: 400, title: 'The signed payload is not acceptable JSON.' },
  'schema-invalid': { status: 422, title: 'The notice does not match its schema.' },
  'policy-denied': { status: 403, title: 'The notice is not allowed by the sharing rules.' },
  'replay': { status: 400, title: 'The notice is too old to be accepted.' },
  'clock-skew': { status: 400, title: 'The notice is dated in the future.' },
  'duplicate-conflict': { status: 409, title: 'A different notice with this id was already accepted.' },
  'too-large': { status: 413, title: 'The request body is larger than the configured limit.' },
  'request-timeout': { status: 408, title: 'The request did not arrive in time.' },
  'headers-too-large': { status: 431, title: 'The request headers are too large.' },
  'openpgp-limits': { status: 400, title: 'The OpenPGP message exceeds a structural limit (size, packets, recipients, signatures, compression or nesting).' },
  'bad-request': { status: 400, title: 'The request is not valid.' },
  'key-conflict': { status: 409, title: 'The key change conflicts with the registry.' },
  'ack-mismatch': { status: 422, title: 'The read receipt does not match a delivery to this agency.' },
  'unauthorized': { status: 401, title: 'The request is not authenticated.' },
  'forbidden': { status: 403, title: 'The request is not allowed for this agency.' },
  'not-found': { status: 404, title: 'No such resource.' },
  'method-not-allowed': { status: 405, title: 'The method is not allowed here.' },
  'client-cert-required': { status: 401, title: 'A client certificate from the network CA is required.' },
  'client-cert-invalid': { status: 403, title: 'The client certificate is not acceptable.' },
  'client-cert-mismatch': { status: 403, title: 'The client certificate belongs to another agency.' },
  'client-cert-revoked': { status: 403, title: 'The client certificate is revoked.' },
  'rate-limited': { status: 429, title: 'Too many requests.' },
  'log-state-invalid': { status: 502, title: 'The log store holds a record the broker cannot use.' },
  'unavailable': { status: 503, title: 'The broker cannot store notices right now; retry later.' },
  'format-unknown': { status: 500, title: 'The broker does not know this envelope format.' },
  'internal': { status: 500, title: 'An internal error occurred.' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problemCodes;

export interface ProblemExtras {
  /** Failing JSON paths for schema-invalid, safe to show: paths, never values. */
  errors?: { path: string; message: string }[];
  /** Seconds, for 429. A 503 always carries the configured retryAfterSeconds, set at the HTTP edge (http/problem.ts). */
  retryAfter?: number;
}

export class LiaisonError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly title: string;
  /** Shown to the client in addition to the title; must be free of secrets and notice content. */
  readonly publicDetail: string | undefined;
  readonly extras: ProblemExtras;

  constructor(code: ProblemCode, options: { detail?: string; publicDetail?: string; cause?: unknown } & ProblemExtras = {}) {
    super(options.detail ?? problemCodes[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LiaisonError';
    this.code = code;
    this.status = problemCodes[code].status;
    this.title = problemCodes[code].title;
    this.publicDetail = options.publicDetail;
    const extras: ProblemExtras = {};
    if (options.errors !== undefined) extras.errors = options.errors;
    if (options.retryAfter !== undefined) extras.retryAfter = options.retryAfter;
    this.extras = extras;
  }
}

export const isLiaisonError = (e: unknown): e is LiaisonError => e instanceof LiaisonError;
