/**
 * Integrity findings (issue 20): a malformed or foreign message found in a
 * bucket or stream the gateway reads. The reader skips or quarantines the item
 * (what that means is the reader's to decide), and reports it here: logged at
 * error level with where it is (stream#seq, or bucket/key@revision) and why,
 * never its content; counted per source (liaison_integrity_findings_total); the
 * last few per source kept for /readyz.
 *
 * One ledger per thread (`integrity`). The background thread's findings reach
 * the gateway thread's ledger through its status messages (background/worker.ts).
 */
import type { Logger } from 'pino';

export const FINDING_SOURCES = [
  'registry',
  'broker-keys',
  'leases',
  'replay-guard',
  'notices',
  'deliveries',
  'acks',
  'registry-events',
  'deadletter',
  'log',
  'checkpoints',
  'log-index',
  'tiles',
] as const;
export type FindingSource = (typeof FINDING_SOURCES)[number];

export interface Finding {
  source: FindingSource;
  /** `STREAM#seq` for a stream message, `bucket/key@revision` for a KV entry. Never content. */
  where: string;
  /** Short and fixed (e.g. "not JSON", "fails the registry schema", "status message stored"); never content. */
  reason: string;
  /** When it was last seen (ISO 8601). */
  at: string;
  /** How many times this same item was found (a reader that meets it again, e.g. each inbox read). */
  count: number;
}

/** Findings kept per source (the newest; older ones are dropped, the counter keeps counting). */
export const FINDINGS_KEPT_PER_SOURCE = 20;

export const streamWhere = (stream: string, seq: number) => `${stream}#${seq}`;
export const kvWhere = (bucket: string, key: string, revision: number) => `${bucket}/${key}@${revision}`;

export class IntegrityLedger {
  readonly #kept = new Map<FindingSource, Finding[]>();
  readonly #totals = new Map<FindingSource, number>();
  readonly #listeners = new Set<(f: Finding) => void>();
  #logger: Logger | undefined;

  /** The logger of findings reported without one (readers that have none, such as the inbox); the first given stays. */
  useLogger(logger: Logger): void {
    this.#logger ??= logger;
  }

  /**
   * Report a finding: logged at error level (event integrity-finding) and recorded.
   * The same item found again (same source, where and reason) is counted and its
   * time updated, not listed twice.
   */
  report(logger: Logger | undefined, source: FindingSource, where: string, reason: string): Finding {
    (logger ?? this.#logger)?.error(
      { event: 'integrity-finding', source, where, reason },
      'malformed or foreign message skipped',
    );
    return this.add({ source, where, reason, at: new Date().toISOString(), count: 1 });
  }

  /** Record a finding already logged elsewhere (the background thread's, on the gateway thread). */
  add(f: Finding): Finding {
    if (!FINDING_SOURCES.includes(f.source)) throw new Error(`unknown integrity source ${String(f.source)}`);
    const list = this.#kept.get(f.source) ?? [];
    const same = list.findIndex((x) => x.where === f.where && x.reason === f.reason);
    let kept: Finding;
    if (same >= 0) {
      const prev = list.splice(same, 1)[0] as Finding;
      kept = { ...prev, at: f.at, count: prev.count + f.count };
    } else {
      kept = { ...f };
    }
    list.push(kept);
    while (list.length > FINDINGS_KEPT_PER_SOURCE) list.shift();
    this.#kept.set(f.source, list);
    this.#totals.set(f.source, (this.#totals.get(f.source) ?? 0) + f.count);
    for (const fn of this.#listeners) fn({ ...f });
    return kept;
  }

  /** Every kept finding, oldest first per source. */
  list(): Finding[] {
    return FINDING_SOURCES.flatMap((s) => (this.#kept.get(s) ?? []).map((f) => ({ ...f })));
  }

  /** Findings counted per source since the thread started (the metric). */
  totals(): Map<FindingSource, number> {
    return new Map(this.#totals);
  }

  /** Be told each finding as it is recorded (the background thread forwards them); returns an unsubscribe. */
  onFinding(fn: (f: Finding) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}

/** This thread's ledger. */
export const integrity = new IntegrityLedger();
