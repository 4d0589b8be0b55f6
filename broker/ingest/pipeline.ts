import { envelopeFormat } from '../formats/registry.js';
import type { EnvelopeAdapter, EnvelopeContext, ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import { sha256Hex } from '../core/sha256.js';
import type { NoticeHeader } from '../core/notice.js';
import type { NoticeLogEntry } from '../log/entry.js';
import type { LogWriter } from '../log/writer.js';
import type { PipelineObserver } from '../metrics/observers.js';
import type { RegistrySnapshot } from '../registry/model.js';
import type { NoticeValidator } from '../schemas/notice-validator.js';
import { decodeNotice } from './decode-notice.js';
import { checkSealedFor } from './e2e-recipients.js';
import { checkFreshness } from './freshness.js';
import { evaluatePolicy } from './policy.js';
import { receiptClaims, signReceipt, type ReceiptClaims } from './notice-receipt.js';
import { validateNotice } from './validate.js';
import { evaluateWithdrawalPolicy, isWithdrawal, type OriginalLookup } from './withdrawal-policy.js';

export interface PipelineDeps {
  adapters: readonly EnvelopeAdapter[];
  keyring: BrokerKeyring;
  registry: () => RegistrySnapshot;
  /** Shared with read authentication: kid -> checked agency signing key. */
  resolveSigner: (kid: string) => Promise<ResolvedSigner>;
  validator: NoticeValidator;
  /** Step 7: stores the notice and its log entry (broker/log/writer.ts). */
  log: LogWriter;
  /** For withdrawals: the superseded notice's log entry and whom it was delivered to. */
  originals: OriginalLookup;
  limits: { bodyLimitBytes: number; maxJsonDepth: number; clockSkewSeconds: number; maxNoticeAgeSeconds: number };
  now?: () => Date;
  /** Step timings for metrics (broker/metrics); sees step names and durations only. */
  observer?: PipelineObserver;
}

export interface IngestResult {
  receipt: string;
  claims: ReceiptClaims;
  duplicate: boolean;
}

/** Who the transport says is sending: the agency of a verified client certificate (mTLS), when there is one. */
export interface IngestCaller {
  clientCertAgency?: string | null;
}

/** What the request log may say about a notice: ids and labels, never content. */
export interface IngestTrace {
  agency?: string;
  notice_id?: string;
  operation?: string;
  step?: string;
}

/** Steps 1-8 of the data flow, in order. Steps 1-3 are the envelope adapter's. */
export function createIngestPipeline(deps: PipelineDeps) {
  const now = deps.now ?? (() => new Date());
  const ctx: EnvelopeContext = {
    decryptionKey: (kid) => deps.keyring.decryptionKey(kid)?.privateKey,
    resolveSigner: deps.resolveSigner,
  };
  // An adapter of an unregistered format would write entries nothing downstream can read: refused at start.
  for (const a of deps.adapters) envelopeFormat(a.format);
  const byMediaType = new Map(deps.adapters.flatMap((a) => a.mediaTypes.map((m) => [m, a] as const)));

  return async function ingest(
    body: string,
    mediaType: string,
    trace: IngestTrace = {},
    caller: IngestCaller = {},
  ): Promise<IngestResult> {
    let step: string | undefined;
    let started = performance.now();
    const lap = (ok: boolean) => {
      if (step !== undefined) deps.observer?.step(step, (performance.now() - started) / 1000, ok);
      started = performance.now();
    };
    const enter = (next: string) => {
      lap(true);
      step = next;
      trace.step = next;
    };
    try {
      const result = await ingestSteps(body, mediaType, trace, caller, enter);
      lap(true);
      return result;
    } catch (e) {
      lap(false);
      throw e;
    }
  };

  async function ingestSteps(
    body: string,
    mediaType: string,
    trace: IngestTrace,
    caller: IngestCaller,
    enter: (step: string) => void,
  ): Promise<IngestResult> {
    const adapter = byMediaType.get(mediaType);
    if (!adapter)
      throw new LiaisonError('unsupported-media-type', {
        publicDetail: `send one of: ${[...byMediaType.keys()].join(', ')}`,
      });
    enter('open');
    const opened = await adapter.open(body, ctx);
    trace.agency = opened.signer.agencyId;
    // With mTLS the signer must be the client certificate's agency, whatever the envelope format; checked before anything is stored.
    const certAgency = caller.clientCertAgency ?? null;
    if (certAgency !== null && opened.signer.agencyId !== certAgency) {
      throw new LiaisonError('client-cert-mismatch', {
        detail: `certificate of ${certAgency}, notice signed by ${opened.signer.agencyId}`,
        publicDetail: 'the client certificate belongs to another agency than the notice signer',
      });
    }
    enter('decode');
    const notice = decodeNotice(opened.payload, {
      maxBytes: deps.limits.bodyLimitBytes,
      maxDepth: deps.limits.maxJsonDepth,
    });
    enter('freshness');
    const at = now();
    checkFreshness(notice, at, deps.limits);
    enter('validate');
    // An end-to-end payload is a routing header its format has validated; the notice is sealed for the recipients.
    const endToEnd = opened.sealedFor !== undefined;
    const header = endToEnd ? (notice as unknown as NoticeHeader) : validateNotice(notice, deps.validator);
    trace.notice_id = header.id;
    trace.operation = header.operation;
    enter('policy');
    // A withdrawal goes to the agencies the notice it supersedes was delivered to (withdrawal-policy.ts).
    const registry = deps.registry();
    const { recipients } = isWithdrawal(header)
      ? await evaluateWithdrawalPolicy(header, opened.signer.agencyId, registry, at, deps.originals, { endToEnd })
      : evaluatePolicy(header, opened.signer.agencyId, registry, at, { endToEnd });
    if (opened.sealedFor) checkSealedFor(recipients, opened.sealedFor, registry, at, opened.format);
    enter('store');
    const entry: NoticeLogEntry = {
      v: 1,
      kind: 'notice',
      notice_id: header.id,
      sha256: sha256Hex(opened.signed),
      format: envelopeFormat(opened.format).name,
      signer_kid: opened.signer.kid,
      origin: { country: header.origin.country, agency: header.origin.agency },
      operation: header.operation,
      type: header.type,
      tlp: header.tlp,
      received_at: at.toISOString(),
      recipients,
    };
    const stored = await deps.log.append({ signed: opened.signed, entry, signer: deps.keyring.signing });
    enter('receipt');
    const claims = receiptClaims(deps.keyring.brokerId, stored.entry, stored.logIndex);
    const receipt = await signReceipt(deps.keyring.signing, claims);
    return { receipt, claims, duplicate: stored.duplicate };
  }
}

export type IngestFn = ReturnType<typeof createIngestPipeline>;
