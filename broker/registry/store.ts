import { LiaisonError } from '../core/errors.js';
import { integrity, kvWhere } from '../core/integrity.js';
import type { Logger } from 'pino';
import { watchAcrossReconnects } from '../core/reconnect-watch.js';
import type { KvBucket, KvRecord, StorePort } from '../core/store-port.js';
import { checkRegistryReferences } from '../schemas/notice-validator.js';
import { RegistrySnapshot, type Agency, type Operation, type RegistrySeed } from './model.js';

export const REGISTRY_BUCKET = 'registry';
const dec = new TextDecoder();
const enc = new TextEncoder();

export const agencyKey = (id: string) => `agency.${id}`;
export const operationKey = (id: string) => `operation.${id}`;

export type RecordValidator = (
  seed: unknown,
) => { ok: true } | { ok: false; errors: { path: string; message: string }[] };

/**
 * The live member registry: agency and operation records in the NATS KV bucket
 * `registry`, watched so that every gateway sees a change (a new agency, a
 * revoked key) within moments. Records that fail the registry schema are
 * ignored (and logged), never half-applied.
 */
export class RegistryStore {
  #snapshot = RegistrySnapshot.empty();
  #stop: (() => void) | undefined;
  readonly #listeners = new Set<(s: RegistrySnapshot) => void>();

  private constructor(
    readonly kv: KvBucket,
    private readonly validate: RecordValidator,
    private readonly logger: Logger,
    private readonly bus: StorePort,
  ) {}

  static async open(bus: StorePort, validate: RecordValidator, logger: Logger, replicas = 1): Promise<RegistryStore> {
    const kv = await bus.bucket(REGISTRY_BUCKET, { history: 64, replicas });
    return new RegistryStore(kv, validate, logger, bus);
  }

  get snapshot(): RegistrySnapshot {
    return this.#snapshot;
  }

  onChange(fn: (s: RegistrySnapshot) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Load a seed into an empty bucket. Returns false (and writes nothing) when the bucket already holds records. */
  async seedIfEmpty(seed: RegistrySeed): Promise<boolean> {
    const check = this.validate(seed);
    const refs = check.ok ? checkRegistryReferences(seed) : check;
    if (!refs.ok)
      throw new Error(`registry seed is invalid: ${refs.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
    const keys = await this.kv.keys();
    for await (const _ of keys) return false;
    for (const a of seed.agencies) await this.#seed(agencyKey(a.id), a);
    for (const o of seed.operations) await this.#seed(operationKey(o.id), o);
    return true;
  }

  async #seed(key: string, record: Agency | Operation): Promise<void> {
    if ((await this.kv.create(key, enc.encode(JSON.stringify(record)))) === undefined)
      throw new LiaisonError('unavailable', {
        detail: `${REGISTRY_BUCKET} ${key}: written by someone else while seeding`,
      });
  }

  async putAgency(a: Agency): Promise<void> {
    this.#check({ agencies: [a], operations: [] });
    await this.kv.put(agencyKey(a.id), enc.encode(JSON.stringify(a)));
  }

  async putOperation(o: Operation): Promise<void> {
    this.#check({ agencies: [], operations: [o] });
    await this.kv.put(operationKey(o.id), enc.encode(JSON.stringify(o)));
  }

  /** The agency record as stored now (not the watched snapshot), or undefined (also when what is stored is not a valid record: a finding). */
  async readAgency(id: string): Promise<Agency | undefined> {
    return this.#record<Agency>('agency', id, await this.kv.get(agencyKey(id), 'registry read'));
  }

  /** The operation record as stored now, or undefined (as readAgency). */
  async readOperation(id: string): Promise<Operation | undefined> {
    return this.#record<Operation>('operation', id, await this.kv.get(operationKey(id), 'registry read'));
  }

  /** The valid record an entry holds; undefined for none (no entry, a delete marker) or junk (reported). */
  #record<T extends Agency | Operation>(kind: 'agency' | 'operation', id: string, e: KvRecord | null): T | undefined {
    if (!e || e.operation !== 'PUT') return undefined;
    const r = this.#parse(kind, id, e.value);
    if (r.ok) return r.record as T;
    this.#finding(e, r.reason);
    return undefined;
  }

  /** A registry value as a record of `kind` with id `id`, or why it is not one (never its content). */
  #parse(
    kind: string,
    id: string,
    value: Uint8Array,
  ): { ok: true; record: Agency | Operation } | { ok: false; reason: string } {
    if (kind !== 'agency' && kind !== 'operation') return { ok: false, reason: 'not an agency or operation key' };
    if (value.length === 0) return { ok: false, reason: 'empty value' };
    let record: unknown;
    try {
      record = JSON.parse(dec.decode(value));
    } catch {
      return { ok: false, reason: 'not JSON' };
    }
    const seed = kind === 'agency' ? { agencies: [record], operations: [] } : { agencies: [], operations: [record] };
    if (!this.validate(seed).ok) return { ok: false, reason: 'fails the registry schema' };
    if ((record as { id?: unknown }).id !== id) return { ok: false, reason: 'record id is not its key' };
    return { ok: true, record: record as Agency | Operation };
  }

  #finding(e: { key: string; revision: number }, reason: string): void {
    integrity.report(this.logger, 'registry', kvWhere(REGISTRY_BUCKET, e.key, e.revision), reason);
  }

  /**
   * Change an agency record: compare-and-set on its KV revision, retried on a
   * concurrent write, so no change is lost. `change` must be a pure function of
   * the record (it may run more than once). Returns the record written, or
   * undefined when the agency does not exist.
   */
  updateAgency(id: string, change: (a: Agency) => Agency): Promise<Agency | undefined> {
    return this.#change<Agency>(agencyKey(id), 'agency', (a) => a && change(a));
  }

  /** Create or change an agency record (compare-and-set as updateAgency); `change` returns undefined to leave it as it is. Returns the record as it is after. */
  setAgency(id: string, change: (a: Agency | undefined) => Agency | undefined): Promise<Agency | undefined> {
    return this.#change<Agency>(agencyKey(id), 'agency', change);
  }

  /** Create or change an operation record, the same way. */
  setOperation(
    id: string,
    change: (o: Operation | undefined) => Operation | undefined,
  ): Promise<Operation | undefined> {
    return this.#change<Operation>(operationKey(id), 'operation', change);
  }

  async #change<T extends Agency | Operation>(
    key: string,
    kind: 'agency' | 'operation',
    change: (current: T | undefined) => T | undefined,
  ): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      const e = await this.kv.get(key);
      // Junk under the key reads as no record (reported); a record written over it replaces it (compare-and-set on the junk's revision).
      const current = this.#record<T>(kind, key.slice(kind.length + 1), e);
      const next = change(current);
      if (next === undefined) return current;
      this.#check(
        kind === 'agency'
          ? { agencies: [next as Agency], operations: [] }
          : { agencies: [], operations: [next as Operation] },
      );
      const value = enc.encode(JSON.stringify(next));
      const written =
        e && (current || e.operation === 'PUT')
          ? await this.kv.update(key, value, e.revision)
          : await this.kv.create(key, value);
      if (written !== undefined) return next;
      if (attempt >= 9)
        throw new LiaisonError('unavailable', { detail: `${REGISTRY_BUCKET} ${key}: too many concurrent changes` });
    }
  }

  /** What is wrong with a record by the registry schema (JSON Pointer and message each); empty when it is valid. */
  recordErrors(kind: 'agency' | 'operation', record: unknown): string[] {
    const r = this.validate(
      kind === 'agency' ? { agencies: [record], operations: [] } : { agencies: [], operations: [record] },
    );
    return r.ok ? [] : r.errors.map((e) => `${e.path.replace(/^\/(agencies|operations)\/0/, '') || '/'} ${e.message}`);
  }

  #check(seed: RegistrySeed): void {
    const r = this.validate(seed);
    if (!r.ok) throw new Error(`invalid registry record: ${r.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
  }

  /**
   * Start watching; resolves once the current records are loaded. The watch is
   * started afresh whenever the NATS connection comes back (watchAcrossReconnects).
   */
  async watch(): Promise<void> {
    this.#stop = await watchAcrossReconnects(
      this.bus,
      () => this.#startWatch(),
      (e) =>
        this.logger.warn(
          { event: 'registry-rewatch-failed', err: { message: e.message } },
          'registry watch could not be restarted after a reconnect; the running one continues',
        ),
    );
  }

  /**
   * One watch from scratch: every current record (deleted ones are not
   * replayed), gathered into maps of its own and published as one snapshot when
   * the replay ends, then each change as it comes. Resolves with its stop once
   * the replay is published; after the stop it publishes nothing more.
   */
  async #startWatch(): Promise<() => void> {
    const agencies = new Map<string, Agency>();
    const operations = new Map<string, Operation>();
    let live = false;
    let stopped = false;
    let ready!: () => void;
    const initialized = new Promise<void>((r) => (ready = r));
    const publish = () => {
      this.#snapshot = new RegistrySnapshot(agencies.values(), operations.values());
      for (const fn of this.#listeners) fn(this.#snapshot);
    };
    const iter = await this.kv.watch({
      key: '>',
      initializedFn: () => {
        if (stopped) return;
        live = true;
        publish();
        ready();
      },
    });
    void (async () => {
      for await (const e of iter) {
        if (stopped) break;
        try {
          await this.#apply(e, agencies, operations);
        } catch (err) {
          // Never let one entry stop the watch: the gateway would stop seeing registry changes.
          this.logger.error(
            {
              event: 'registry-watch-entry-failed',
              key: e.key,
              revision: e.revision,
              err: { message: (err as Error).message },
            },
            'registry entry not applied',
          );
        }
        if (live) publish();
      }
    })().catch((err: unknown) => {
      this.logger.error(
        { event: 'registry-watch-ended', err: { message: (err as Error)?.message } },
        'registry watch ended by an error; the last registry is kept until the next reconnect',
      );
      if (!live) ready();
    });
    await initialized;
    return () => {
      stopped = true;
      iter.stop();
    };
  }

  /**
   * One watched entry. Junk (not JSON, not a valid record, not its key's record,
   * an unknown key, a delete or purge marker: nothing in the broker deletes a
   * registry key) is a finding and changes nothing: the last good record of the
   * key stays. When none was seen yet (a watch from scratch, junk the newest
   * value), the newest good one in the key's history (64 revisions) is taken; with none there
   * either, the agency or operation is absent. Junk never grants anything.
   */
  async #apply(e: KvRecord, agencies: Map<string, Agency>, operations: Map<string, Operation>): Promise<void> {
    const dot = e.key.indexOf('.');
    const [kind, id] = dot < 0 ? [e.key, ''] : [e.key.slice(0, dot), e.key.slice(dot + 1)];
    const map = (kind === 'agency' ? agencies : kind === 'operation' ? operations : undefined) as
      Map<string, Agency | Operation> | undefined;
    const r =
      e.operation === 'PUT'
        ? this.#parse(kind, id, e.value)
        : { ok: false as const, reason: `${e.operation === 'DEL' ? 'delete' : 'purge'} marker` };
    if (r.ok) {
      map?.set(id, r.record);
      return;
    }
    this.#finding(e, r.reason);
    if (!map || map.has(id)) return;
    const good = await this.#lastGood(kind, id, e.revision);
    if (good) map.set(id, good);
  }

  /** The newest valid record of a key older than `before`, from the bucket's history. */
  async #lastGood(kind: string, id: string, before: number): Promise<Agency | Operation | undefined> {
    let found: Agency | Operation | undefined;
    const iter = await this.kv.history({ key: `${kind}.${id}` });
    for await (const h of iter) {
      if (h.revision >= before || h.operation !== 'PUT') continue;
      const r = this.#parse(kind, id, h.value);
      if (r.ok) found = r.record;
    }
    return found;
  }

  close(): void {
    this.#stop?.();
  }
}
