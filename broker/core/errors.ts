/**
 * One error hierarchy for the whole broker, and one list of codes. Every error
 * Liaison throws is a CodedError whose `code` is a key of `errorCodes`; every
 * finding an audit reports carries a code from the same list. Each code is
 * defined once, here; `by` names the errors (and findings) that carry it, and
 * `CodeOf` turns that into the type a class accepts, so no module keeps a
 * union of codes of its own.
 *
 * The codes with a `status` are the HTTP problems: every refusal a client can
 * see is a LiaisonError with one of them, mapped once to an RFC 9457 problem
 * response (broker/http/problem.ts) and documented in docs/problems.md. The
 * `title` is a fixed public sentence per code: no decryption or signature
 * oracle, no echo of input. `detail` is for the log only unless `publicDetail`
 * is set, and must never carry notice content or secrets.
 */

/** What carries a code besides LiaisonError: an error class (by its domain), or an audit finding. */
export type CodeCarrier =
  | 'merkle'
  | 'checkpoint'
  | 'entry-signature'
  | 'config'
  | 'crl'
  | 'nats-auth'
  | 'kek'
  | 'archive'
  | 'usage'
  | 'cli'
  | 'http-client'
  | 'inbox-client'
  | 'delivery'
  | 'webhook'
  | 'routing'
  /** A format's finding on a stored origin signature (adapters/format.ts). */
  | 'origin-check'
  /** The audit's origin findings: a format's, or a format that is not registered (broker/audit/key-history.ts). */
  | 'audit-origin'
  /** Every finding of an audit (broker/audit/verify.ts). */
  | 'audit';

interface ProblemDefinition {
  status: number;
  title: string;
  by?: readonly CodeCarrier[];
}
interface CodeDefinition {
  /** What the code says went wrong. */
  means: string;
  by: readonly CodeCarrier[];
}

export const errorCodes = {
  // HTTP problems (LiaisonError): status and the public title.
  'envelope-malformed': { status: 400, title: 'The envelope is not a well-formed compact JWE or OpenPGP message.' },
  'unsupported-media-type': { status: 415, title: 'The request content type is not accepted here.' },
  'header-forbidden': { status: 400, title: 'The envelope carries a header parameter that is not allowed.' },
  'alg-not-allowed': { status: 400, title: 'The envelope uses an algorithm that is not allowed.' },
  'key-unknown': { status: 400, title: 'The key identifier is not known to the broker.', by: ['delivery', 'webhook'] },
  'key-revoked': { status: 403, title: 'The key is revoked or outside its validity window.' },
  'decrypt-failed': { status: 400, title: 'The envelope could not be decrypted.', by: ['delivery'] },
  'signature-invalid': { status: 400, title: 'The signature does not verify.', by: ['delivery', 'webhook'] },
  'json-invalid': { status: 400, title: 'The signed payload is not acceptable JSON.' },
  'schema-invalid': { status: 422, title: 'The notice does not match its schema.' },
  'policy-denied': { status: 403, title: 'The notice is not allowed by the sharing rules.' },
  replay: { status: 400, title: 'The notice is too old to be accepted.' },
  'clock-skew': { status: 400, title: 'The notice is dated in the future.' },
  'duplicate-conflict': { status: 409, title: 'A different notice with this id was already accepted.' },
  'too-large': { status: 413, title: 'The request body is larger than the configured limit.' },
  'request-timeout': { status: 408, title: 'The request did not arrive in time.' },
  'headers-too-large': { status: 431, title: 'The request headers are too large.' },
  'openpgp-limits': {
    status: 400,
    title:
      'The OpenPGP message exceeds a structural limit (size, packets, recipients, signatures, compression or nesting).',
  },
  'bad-request': { status: 400, title: 'The request is not valid.' },
  'key-conflict': { status: 409, title: 'The key change conflicts with the registry.' },
  'ack-mismatch': { status: 422, title: 'The read receipt does not match a delivery to this agency.' },
  'complaint-conflict': {
    status: 409,
    title: 'A different complaint about this notice by this agency is already recorded.',
  },
  unauthorized: { status: 401, title: 'The request is not authenticated.' },
  forbidden: { status: 403, title: 'The request is not allowed for this agency.' },
  'not-found': { status: 404, title: 'No such resource.' },
  'notice-unknown': { status: 404, title: 'No notice with this id is in the log.' },
  'operation-not-found': { status: 404, title: 'No such operation, or the caller is not one of its members.' },
  'operation-end-to-end': {
    status: 403,
    title: 'The operation is end to end: notices must be sealed for their recipients, not for the hub.',
  },
  'operation-not-end-to-end': {
    status: 403,
    title: 'The operation is not end to end: notices must be sealed for the hub.',
  },
  'body-hash-mismatch': { status: 400, title: "The end-to-end body does not match the routing header's body_sha256." },
  'recipients-mismatch': {
    status: 400,
    title: "The end-to-end body is not sealed exactly once for each recipient's current encryption key.",
  },
  'method-not-allowed': { status: 405, title: 'The method is not allowed here.' },
  'client-cert-required': { status: 401, title: 'A client certificate from the network CA is required.' },
  'client-cert-invalid': { status: 403, title: 'The client certificate is not acceptable.' },
  'client-cert-mismatch': { status: 403, title: 'The client certificate belongs to another agency.' },
  'client-cert-revoked': { status: 403, title: 'The client certificate is revoked.' },
  'rate-limited': { status: 429, title: 'Too many requests.' },
  'log-state-invalid': { status: 502, title: 'The log store holds a record the broker cannot use.' },
  unavailable: { status: 503, title: 'The broker cannot store notices right now; retry later.' },
  'format-unknown': { status: 500, title: 'The broker does not know this envelope format.', by: ['routing'] },
  internal: { status: 500, title: 'An internal error occurred.' },

  // Never an HTTP problem.
  'merkle-bad-argument': {
    means: 'A caller broke a documented Merkle precondition (bad index, size, hash length).',
    by: ['merkle'],
  },
  'merkle-bad-state': {
    means: 'Stored Merkle state is malformed: a serialized compact range, or a hash a node reader returned.',
    by: ['merkle'],
  },
  'checkpoint-malformed': { means: 'A checkpoint note does not parse.', by: ['checkpoint', 'audit'] },
  'checkpoint-signature-invalid': {
    means: 'No signature on a checkpoint verifies under a broker key.',
    by: ['checkpoint', 'audit'],
  },
  'checkpoint-origin-mismatch': { means: 'A checkpoint names another log origin.', by: ['checkpoint', 'audit'] },
  'entry-unsigned': { means: 'A log entry carries no gateway signature.', by: ['entry-signature', 'audit'] },
  'entry-signature-invalid': {
    means: "A log entry's gateway signature does not verify.",
    by: ['entry-signature', 'audit'],
  },
  'config-invalid': { means: 'A configuration setting is missing or has a bad value.', by: ['config'] },
  'crl-invalid': { means: 'A certificate revocation list is not one, or is not acceptable.', by: ['crl'] },
  'nats-auth-failed': { means: 'A NATS auth setting is bad, or NATS refused the credentials.', by: ['nats-auth'] },
  'storage-key-exists': {
    means: 'Another gateway instance made the first storage key meanwhile: nothing to make.',
    by: ['kek'],
  },
  'kek-mismatch': { means: 'The broker keyring in NATS is sealed under another key-encryption key.', by: ['kek'] },
  'archive-invalid': { means: 'An audit archive is not well-formed.', by: ['archive'] },
  'command-line-invalid': { means: 'A command line cannot be run as given (exit status 2).', by: ['usage'] },
  'command-refused': { means: 'A command ran and refused to go on (exit status 1).', by: ['cli'] },
  'client-request-failed': {
    means: 'A client could not reach the gateway, or could not use its answer.',
    by: ['http-client'],
  },
  'http-error': { means: 'The gateway answered with an error that is not a problem document.', by: ['inbox-client'] },
  'stream-malformed': { means: 'The inbox event stream cannot be read.', by: ['inbox-client'] },
  'origin-mismatch': { means: "A delivery's labels differ from the signed notice it carries.", by: ['delivery'] },
  'routing-header-mismatch': {
    means:
      "An end-to-end notice says other than its origin's signed routing header, or the body is not the one the header binds.",
    by: ['delivery'],
  },
  'notice-schema-invalid': {
    means: "A notice a recipient opened does not match its type's JSON Schema.",
    by: ['delivery'],
  },
  'wrong-recipient': { means: 'A webhook body is addressed to another agency.', by: ['webhook'] },
  'notice-unroutable': { means: 'A stored notice cannot be routed, ever (it is terminated).', by: ['routing'] },
  'entry-missing': { means: 'An index is missing from the log entries given.', by: ['audit'] },
  'entry-out-of-order': { means: 'A log entry claims another index than its position.', by: ['audit'] },
  'entry-malformed': { means: 'A log entry is not a canonical entry of a known kind.', by: ['audit'] },
  'entry-changed': { means: 'A log entry is not the entry the log signed.', by: ['audit'] },
  'entry-duplicate-notice': { means: 'The log holds a notice twice.', by: ['audit'] },
  'entry-duplicate-ack': { means: 'The log holds a read receipt twice.', by: ['audit'] },
  'entry-duplicate-complaint': { means: "The log holds a recipient's complaint about a notice twice.", by: ['audit'] },
  'complaint-not-in-log': { means: 'A complaint is held but has no log entry.', by: ['audit'] },
  'notice-content-missing': {
    means: 'A notice entry commits to a notice whose content the evidence lacks, and no erasure event names it.',
    by: ['audit'],
  },
  'complaint-missing': { means: 'A complaint entry commits to a complaint the evidence does not hold.', by: ['audit'] },
  'complaint-mismatch': {
    means: "A held complaint does not match its log entry, or is not signed by the recipient's key valid then.",
    by: ['audit'],
  },
  'entry-duplicate-event': { means: 'The log holds a registry event twice.', by: ['audit'] },
  'entries-do-not-match': {
    means: 'An entry in a range was changed, dropped or reordered (or a checkpoint is false).',
    by: ['audit'],
  },
  'registry-event-not-in-log': { means: 'A registry event is held but has no log entry.', by: ['audit'] },
  'registry-event-mismatch': { means: 'A registry event does not match its log entry.', by: ['audit'] },
  'checkpoint-rollback': { means: 'A checkpoint is smaller than one before it.', by: ['audit'] },
  'checkpoint-fork': { means: 'Two checkpoints sign one size with different roots.', by: ['audit'] },
  'checkpoint-inconsistent': { means: 'A checkpoint is not consistent with the one before it.', by: ['audit'] },
  'checkpoint-root-mismatch': {
    means: 'A checkpoint does not match the root recomputed from the entries.',
    by: ['audit'],
  },
  'checkpoint-beyond-log': { means: 'A checkpoint covers more entries than were given.', by: ['audit'] },
  'no-valid-checkpoint': { means: 'No checkpoint verifies: nothing anchors the log.', by: ['audit'] },
  'notice-commitment-mismatch': { means: 'A notice does not match the commitment of its log entry.', by: ['audit'] },
  'notice-not-in-log': { means: 'A notice is held but has no log entry.', by: ['audit'] },
  'notice-signature-invalid': {
    means: "A stored notice's origin signature does not verify.",
    by: ['origin-check', 'audit-origin', 'audit'],
  },
  'notice-signer-mismatch': {
    means: 'A stored notice is signed by another key than its log entry names.',
    by: ['origin-check', 'audit-origin', 'audit'],
  },
  'notice-signer-unknown': {
    means: 'The signer key of a stored notice is not (unambiguously) in the agency key history.',
    by: ['origin-check', 'audit-origin', 'audit'],
  },
  'notice-signer-wrong-agency': {
    means: 'The signer key of a stored notice belongs to another agency than its origin.',
    by: ['origin-check', 'audit-origin', 'audit'],
  },
  'notice-signer-not-valid': {
    means: 'The signer key of a stored notice was not valid when the broker received it.',
    by: ['origin-check', 'audit-origin', 'audit'],
  },
  'notice-format-unknown': {
    means: 'A log entry names an envelope format that is not registered: its signature cannot be checked.',
    by: ['audit-origin', 'audit'],
  },
} as const satisfies Record<string, ProblemDefinition | CodeDefinition>;

export type ErrorCode = keyof typeof errorCodes;

/** The codes of HTTP problems: those with a status. */
export type ProblemCode = {
  [C in ErrorCode]: (typeof errorCodes)[C] extends { status: number } ? C : never;
}[ErrorCode];

/** The codes `carrier` may carry. */
export type CodeOf<Carrier extends CodeCarrier> = {
  [C in ErrorCode]: (typeof errorCodes)[C] extends { by: readonly (infer B)[] }
    ? Carrier extends B
      ? C
      : never
    : never;
}[ErrorCode];

const isProblemEntry = (
  entry: [string, ProblemDefinition | CodeDefinition],
): entry is [ProblemCode, ProblemDefinition] => 'status' in entry[1];

/** The HTTP problems of the list, with their status and title. */
export const problemCodes = Object.fromEntries(Object.entries(errorCodes).filter(isProblemEntry)) as {
  readonly [C in ProblemCode]: (typeof errorCodes)[C];
};

export const isProblemCode = (code: unknown): code is ProblemCode =>
  typeof code === 'string' && Object.hasOwn(problemCodes, code);

/** The base of every error Liaison throws: a message for people, a `code` from the list for programs. */
export abstract class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface ProblemExtras {
  /** Failing JSON paths for schema-invalid, safe to show: paths, never values. */
  errors?: { path: string; message: string }[];
  /** Seconds, for 429. A 503 always carries the configured retryAfterSeconds, set at the HTTP edge (http/problem.ts). */
  retryAfter?: number;
}

/** An HTTP problem: what the gateway answers a client it refuses (broker/http/problem.ts). */
export class LiaisonError extends CodedError<ProblemCode> {
  readonly status: number;
  readonly title: string;
  /** Shown to the client in addition to the title; must be free of secrets and notice content. */
  readonly publicDetail: string | undefined;
  readonly extras: ProblemExtras;

  constructor(
    code: ProblemCode,
    options: { detail?: string; publicDetail?: string; cause?: unknown } & ProblemExtras = {},
  ) {
    super(
      code,
      options.detail ?? problemCodes[code].title,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
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

/** A failed call to the message store as the one `unavailable` (503); an error that is already a LiaisonError is kept as it is. */
export function unavailable(err: unknown, what: string): LiaisonError {
  if (err instanceof LiaisonError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LiaisonError('unavailable', { detail: `${what}: ${message}`, cause: err });
}
