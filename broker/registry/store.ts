import type { KV } from 'nats';
import type { Logger } from 'pino';
import { watchAcrossReconnects, type NatsBus } from '../nats/connection.js';
import { checkRegistryReferences } from '../schemas/notice-validator.js';
import { RegistrySnapshot, type Agency, type Operation, type RegistrySeed } from './model.js';

export const REGISTRY_BUCKET = 'registry';
const dec = new TextDecoder();
const enc = new TextEncoder();

export const agencyKey = (id: string) => `agency.${id}`;
export const operationKey = (id: string) => `operation.${id}`;

export type RecordValidator = (seed: unknown) => { ok: true } | { ok: false; errors: { path: string; message: string }[] };

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
    readonly kv: KV,
    private readonly validate: RecordValidator,
    private readonly logger: Logger,
    private readonly bus: NatsBus,
  ) {}

  static async open(bus: NatsBus, validate: RecordValidator, logger: Logger, replicas = 1): Promise<RegistryStore> {
    const kv = await bus.kv(REGISTRY_BUCKET, { history: 64, replicas });
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
    if (!refs.ok) throw new Error(`registry seed is invalid: ${refs.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
    const keys = await this.kv.keys();
    for await (const _ of keys) return false;
    for (const a of seed.agencies) await this.kv.create(agencyKey(a.id), enc.encode(JSON.stringify(a)));
    for (const o of seed.operations) await this.kv.create(operationKey(o.id), enc.encode(JSON.stringify(o)));
    return true;
  }

  async putAgency(a: Agency): Promise<void> {
    this.#check({ agencies: [a], operations: [] });
    await this.kv.put(agencyKey(a.id), enc.encode(JSON.stringify(a)));
  }

  async putOperation(o: Operation): Promise<void> {
    this.#check({ agencies: [], operations: [o] });
    await this.kv.put(operationKey(o.id), enc.encode(JSON.stringify(o)));
  }

  /** The agency record as stored now (not the watched snapshot), or undefined. */
  async readAgency(id: string): Promise<Agency | undefined> {
    const e = await this.kv.get(agencyKey(id));
    return e && e.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as Agency) : undefined;
  }

  /** The operation record as stored now, or undefined. */
  async readOperation(id: string): Promise<Operation | undefined> {
    const e = await this.kv.get(operationKey(id));
    return e && e.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as Operation) : undefined;
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
  setOperation(id: string, change: (o: Operation | undefined) => Operation | undefined): Promise<Operation | undefined> {
    return this.#change<Operation>(operationKey(id), 'operation', change);
  }

  async #change<T extends Agency | Operation>(key: string, kind: 'agency' | 'operation', change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      const e = await this.kv.get(key);
      const current = e && e.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as T) : undefined;
      const next = change(current);
      if (next === undefined) return current;
      this.#check(kind === 'agency' ? { agencies: [next as Agency], operations: [] } : { agencies: [], operations: [next as Operation] });
      try {
        if (current && e) await this.kv.update(key, enc.encode(JSON.stringify(next)), e.revision);
        else await this.kv.create(key, enc.encode(JSON.stringify(next)));
        return next;
      } catch (err) {
        if (!/wrong last sequence|key exists/i.test((err as Error).message) || attempt >= 9) throw err;
      }
    }
  }

  /** What is wrong with a record by the registry schema (JSON Pointer and message each); empty when it is valid. */
  recordErrors(kind: 'agency' | 'operation', record: unknown): string[] {
    const r = this.validate(kind === 'agency' ? { agencies: [record], operations: [] } : { agencies: [], operations: [record] });
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
    this.#stop = await watchAcrossReconnects(this.bus, () => this.#startWatch(), (e) =>
      this.logger.warn({ event: 'registry-rewatch-failed', err: { message: e.message } }, 'registry watch could not be restarted after a reconnect; the running one continues'),
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
        const [kind, id] = [e.key.slice(0, e.key.indexOf('.')), e.key.slice(e.key.indexOf('.') + 1)];
        if (e.operation === 'DEL' || e.operation === 'PURGE') {
          if (kind === 'agency') agencies.delete(id);
          if (kind === 'operation') operations.delete(id);
        } else {
          this.#apply(kind, id, e.value, agencies, operations);
        }
        if (live) publish();
      }
    })();
    await initialized;
    return () => {
      stopped = true;
      iter.stop();
    };
  }

  #apply(kind: string, id: string, value: Uint8Array, agencies: Map<string, Agency>, operations: Map<string, Operation>): void {
    let record: unknown;
    try {
      record = JSON.parse(dec.decode(value));
    } catch {
      this.logger.error({ event: 'registry-record-invalid', kind, id }, 'registry record is not JSON; ignored');
      return;
    }
    const seed = kind === 'agency' ? { agencies: [record], operations: [] } : { agencies: [], operations: [record] };
    const r = this.validate(seed);
    if (!r.ok || (record as { id?: unknown }).id !== id || (kind !== 'agency' && kind !== 'operation')) {
      this.logger.error({ event: 'registry-record-invalid', kind, id }, 'registry record fails the registry schema; ignored');
      // Fail closed: a broken update removes the record rather than keeping a stale (e.g. not-yet-revoked) one.
      if (kind === 'agency') agencies.delete(id);
      if (kind === 'operation') operations.delete(id);
      return;
    }
    if (kind === 'agency') agencies.set(id, record as Agency);
    else operations.set(id, record as Operation);
  }

  close(): void {
    this.#stop?.();
  }
}
