import { randomUUID } from 'node:crypto';
import { integrity, streamWhere } from '../core/integrity.js';
import type { Logger } from 'pino';
import { CodedError, LiaisonError } from '../core/errors.js';
import { isUuid, SLUG, subjectToken } from '../core/ids.js';
import { rewrapNoticeKeys } from '../vault/rewrap.js';
import {
  dropStorageKeys,
  rotateEncryptionKeys,
  rotateSigningKey,
  rotateStorageKey,
  type BrokerKeyring,
  type BrokerSigningKey,
} from '../keys/broker-keys.js';
import { importKey, publicPart } from '../keys/jwk.js';
import type { KeyringStore } from '../keys/keyring-store.js';
import { appendEntry, ENTRY_HEADER } from '../log/append.js';
import { decodeEntry, encodeEntry } from '../log/entry.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from '../log/entry-signature.js';
import type { StorePort, StoredMessage } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import type { Agency, Operation } from '../registry/model.js';
import type { RegistryStore } from '../registry/store.js';
import { applyAgencyEvent, checkNewKey, existingKey, type NewAgencyKey } from './agency-keys.js';
import { applySetEvent, checkAgencyRecord, checkOperationRecord } from './registry-records.js';
import { checkErasureReason, erasureEventId } from './erasure-record.js';
import { findNoticeLogged } from '../log/notice-lookup.js';
import {
  registryLogEntry,
  signRegistryEvent,
  openRegistryEvent,
  type RegistryEvent,
  type RegistryEventType,
} from './registry-event.js';

/**
 * Key lifecycle, and agency and operation records, through the admin API. Every
 * change is a broker-signed registry event, kept in REGISTRY_EVENTS and
 * committed to by a `registry` log entry.
 *
 *  - Agency keys (add, rotate, revoke) and records (agency-set, operation-set:
 *    registry-records.ts): the event is stored and logged first,
 *    then applied to the KV record (compare-and-set, idempotent). A
 *    retry with the same event id finds the stored event and completes it, so a
 *    change is never half-made and never logged twice.
 *  - Broker keys (rotate encryption, rotate signing): the new keys are made,
 *    the keyring is put to KV `broker-keys` (compare-and-set) with the signed
 *    event inside it, then the event is logged. Whoever next loads that keyring
 *    (any instance: start-up, watch, or a retry) logs it if that did not happen.
 *
 * Every gateway instance takes the change up through its KV watch.
 */
export const EVENT_ENTRY_HEADER = ENTRY_HEADER;
export const eventSubject = (id: string) => `registry-events.${subjectToken(id, 'event id')}`;
export const eventMsgId = (id: string) => `registry:${id}`;

export interface Actor {
  agency: string;
  kid: string;
}

/** The broker itself as the actor of an event it makes on its own (erasure at the end of retention). */
export interface BrokerActor {
  broker: string;
  kid: string;
}

/**
 * What puts a logged `notice-erased` event in force: crypto-shred the notice
 * and purge its content everywhere (broker/erasure/, wired in by the
 * composition root). Idempotent: a retry of the erasure calls it again.
 */
export type EraseContent = (event: RegistryEvent, logIndex: number) => Promise<void>;

export interface RecordedEvent {
  event_id: string;
  type: RegistryEventType;
  log_index: number;
  /** The broker-signed event (compact JWS). */
  event: string;
  /** True when this id had already been recorded (a retry). */
  duplicate: boolean;
}

export interface KeyAdminOptions {
  bus: StorePort;
  registry: RegistryStore;
  keyring: BrokerKeyring;
  keyringStore: KeyringStore;
  brokerId: string;
  encryptionKeyGraceSeconds: number;
  agencyKeyOverlapSeconds: number;
  logger: Logger;
  /** Why an agency's webhook URL must not be stored, or null (the delivery transport's address policy); none: any URL the schema takes. */
  webhookUrlRefusal?: (url: string) => Promise<string | null>;
  /**
   * A superseded storage key is dropped only this long after the rotation (default 60 s), so that an instance whose
   * KV watch has not yet brought it the new key, and still wraps under the old one, is covered by a later run.
   */
  storageKeyDropAfterSeconds?: number;
  /** Erasure of a notice's content once its event is logged; none: notices cannot be erased through this instance. */
  eraseContent?: EraseContent;
  now?: () => Date;
}

export class KeyAdmin {
  readonly #o: KeyAdminOptions;
  readonly #now: () => Date;

  constructor(o: KeyAdminOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => new Date());
  }

  // ---- broker keys -------------------------------------------------------

  rotateBrokerEncryptionKeys(
    actor: Actor,
    req: { id?: string; grace_seconds?: number; reason?: string },
  ): Promise<RecordedEvent> {
    const grace = req.grace_seconds ?? this.#o.encryptionKeyGraceSeconds;
    return this.#brokerChange(actor, req, 'broker-encryption-keys-rotated', async (file, base) => {
      const r = await rotateEncryptionKeys(file, this.#now(), grace);
      return {
        file: r.file,
        event: {
          ...base,
          added: r.added,
          retired: r.retired.map((x) => ({ kid: x.kid, until: x.decrypt_until })),
          ...(r.dropped.length ? { destroyed: r.dropped } : {}),
        },
      };
    });
  }

  rotateBrokerSigningKey(actor: Actor, req: { id?: string; reason?: string }): Promise<RecordedEvent> {
    return this.#brokerChange(actor, req, 'broker-signing-key-rotated', async (file, base) => {
      const r = await rotateSigningKey(file, this.#now());
      return {
        file: r.file,
        event: { ...base, added: [r.added], retired: [{ kid: r.retired.kid, until: r.retired.retired_at }] },
      };
    });
  }

  /**
   * A new storage key becomes current (broker/vault/): new notices' data keys
   * are wrapped under it; records under older ones are re-wrapped by
   * rewrapNoticeKeys, after which the older keys are dropped. The event names
   * kids only: a storage key's bytes never leave the sealed keyring.
   */
  async rotateBrokerStorageKey(actor: Actor, req: { id?: string; reason?: string }): Promise<RecordedEvent> {
    const recorded = await this.#storageRotation(actor, req);
    await this.finishStorageRotation();
    return recorded;
  }

  /**
   * Re-wrap every notice key record under the current storage key (broker/vault/rewrap.ts), then drop the older
   * storage keys no record needs any more (once storageKeyDropAfterSeconds have passed since they were superseded).
   * Idempotent: run after each rotation and at start-up, so an interrupted run is finished by the next.
   */
  async finishStorageRotation(): Promise<{ rewrapped: number; dropped: string[] }> {
    const { bus, keyring, logger } = this.#o;
    const older = (keyring.file.storage ?? []).slice(1).map((k) => String(k.kid));
    if (older.length === 0) return { rewrapped: 0, dropped: [] };
    const r = await rewrapNoticeKeys(bus, keyring);
    const graceMs = (this.#o.storageKeyDropAfterSeconds ?? 60) * 1000;
    const now = this.#now().getTime();
    const due = older.filter((kid) => {
      const at = keyring.file.meta?.[kid]?.superseded_at;
      return !r.stillUsed.has(kid) && at !== undefined && Date.parse(at) + graceMs <= now;
    });
    let dropped: string[] = [];
    if (due.length > 0) {
      // A second pass first: records an instance still wrapped under an old key meanwhile are re-wrapped too.
      const again = await rewrapNoticeKeys(bus, keyring);
      const droppable = due.filter((kid) => !again.stillUsed.has(kid));
      if (droppable.length > 0) {
        ({ result: dropped } = await this.#o.keyringStore.update(async (file) => {
          const held = new Set((file.storage ?? []).slice(1).map((k) => String(k.kid)));
          const gone = droppable.filter((kid) => held.has(kid));
          return { file: dropStorageKeys(file, gone), result: gone };
        }));
      }
    }
    logger.info(
      { event: 'storage-keys-rewrapped', rewrapped: r.rewrapped, erased: r.erased, dropped },
      'notice keys re-wrapped under the current storage key',
    );
    return { rewrapped: r.rewrapped, dropped };
  }

  #storageRotation(actor: Actor, req: { id?: string; reason?: string }): Promise<RecordedEvent> {
    return this.#brokerChange(actor, req, 'broker-storage-key-rotated', async (file, base) => {
      const r = rotateStorageKey(file, this.#now());
      return {
        file: r.file,
        event: {
          ...base,
          added: [{ kty: 'oct', kid: r.added, alg: 'A256KW' }],
          ...(r.superseded ? { retired: [{ kid: r.superseded, until: base.at }] } : {}),
        },
      };
    });
  }

  /**
   * A keyring from before sealing at rest gets its first storage key on first
   * start, as a logged rotation by the broker itself. Instances starting
   * together: the compare-and-set lets one make it; the others find it there.
   */
  async ensureStorageKey(): Promise<RecordedEvent | null> {
    if (this.#o.keyring.storageKey) return null;
    const actor = { agency: this.#o.brokerId, kid: this.#o.keyring.signing.kid };
    try {
      return await this.#brokerChange(
        actor,
        { reason: 'first storage key' },
        'broker-storage-key-rotated',
        async (file, base) => {
          if (file.storage?.length) throw new AlreadyMade();
          const r = rotateStorageKey(file, this.#now());
          return { file: r.file, event: { ...base, added: [{ kty: 'oct', kid: r.added, alg: 'A256KW' }] } };
        },
      );
    } catch (e) {
      if (e instanceof AlreadyMade || (e as { cause?: unknown }).cause instanceof AlreadyMade) return null;
      throw e;
    }
  }

  async #brokerChange(
    actor: Actor,
    req: { id?: string; reason?: string },
    type: RegistryEventType,
    make: (
      file: BrokerKeyring['file'],
      base: RegistryEvent,
    ) => Promise<{ file: BrokerKeyring['file']; event: RegistryEvent }>,
  ): Promise<RecordedEvent> {
    const id = this.#eventId(req.id);
    const subject = { broker: this.#o.brokerId };
    const prior = await this.#storedEvent(id);
    if (prior) return this.#completeStored(prior, type, subject);
    // A retry after the keyring was changed but before its event was logged.
    const pending = this.#o.keyring.file.last_event;
    if (pending?.id === id) return this.#logPending(pending, type);
    try {
      const { result } = await this.#o.keyringStore.update(async (file) => {
        const base: RegistryEvent = {
          id,
          type,
          subject,
          at: this.#now().toISOString(),
          actor,
          ...(req.reason ? { reason: req.reason } : {}),
        };
        const { file: next, event } = await make(file, base);
        // Signed by the key that is current before the change: a new signing key is vouched for by its predecessor.
        const signer = await signerOf(file);
        const jws = await signRegistryEvent(signer, event);
        const entryBytes = encodeEntry(registryLogEntry(event, jws, signer.kid));
        const entry = Buffer.from(entryBytes).toString('base64url');
        // The entry's own gateway signature, made now with the same key, kept with the event until it is logged.
        const last_event = { id, jws, entry, entry_signature: signEntry(signer, entryBytes) };
        return { file: { ...next, last_event }, result: last_event };
      });
      return await this.#logPending(result, type);
    } catch (e) {
      throw unavailable(e, `broker key change ${type}`);
    }
  }

  /** Log a keyring's pending event (found at start-up or in a watch); a no-op when it is logged already. */
  async ensureKeyringEventLogged(): Promise<void> {
    const pending = this.#o.keyring.file.last_event;
    if (!pending || (await this.#storedEvent(pending.id))) return;
    await this.#record(pending.id, pending.jws, Buffer.from(pending.entry, 'base64url'), pending.entry_signature);
    this.#o.logger.warn(
      { event: 'registry-event-repaired', event_id: pending.id },
      'a broker key change whose event was not logged has been logged now',
    );
  }

  async #logPending(
    p: { id: string; jws: string; entry: string; entry_signature?: string },
    type: RegistryEventType,
  ): Promise<RecordedEvent> {
    const logIndex = await this.#record(p.id, p.jws, Buffer.from(p.entry, 'base64url'), p.entry_signature);
    return { event_id: p.id, type, log_index: logIndex, event: p.jws, duplicate: false };
  }

  // ---- agency keys -------------------------------------------------------

  addAgencyKey(
    actor: Actor,
    agencyId: string,
    req: { id?: string; key: NewAgencyKey; reason?: string },
  ): Promise<RecordedEvent> {
    return this.#agencyChange(actor, agencyId, req, 'agency-key-added', async (_agency, base) => ({
      ...base,
      added: [await checkNewKey(this.#o.registry.snapshot, req.key)],
    }));
  }

  rotateAgencyKey(
    actor: Actor,
    agencyId: string,
    kid: string,
    req: { id?: string; key: NewAgencyKey; overlap_seconds?: number; reason?: string },
  ): Promise<RecordedEvent> {
    return this.#agencyChange(actor, agencyId, req, 'agency-key-rotated', async (agency, base) => {
      const old = existingKey(agency, kid);
      if (old.status === 'revoked')
        throw new LiaisonError('key-conflict', { publicDetail: `key ${kid} is revoked; add a new key instead` });
      if (old.use !== req.key.use)
        throw new LiaisonError('bad-request', { publicDetail: `the new key must have the old key's use (${old.use})` });
      const added = await checkNewKey(this.#o.registry.snapshot, req.key);
      const until = new Date(
        this.#now().getTime() + (req.overlap_seconds ?? this.#o.agencyKeyOverlapSeconds) * 1000,
      ).toISOString();
      return { ...base, added: [added], retired: [{ kid, until }] };
    });
  }

  revokeAgencyKey(
    actor: Actor,
    agencyId: string,
    kid: string,
    req: { id?: string; revoked_at?: string; reason?: string },
  ): Promise<RecordedEvent> {
    return this.#agencyChange(actor, agencyId, req, 'agency-key-revoked', async (agency, base) => {
      const old = existingKey(agency, kid);
      if (old.status === 'revoked')
        throw new LiaisonError('key-conflict', { publicDetail: `key ${kid} is already revoked` });
      const at = req.revoked_at ?? base.at;
      // A revocation takes effect now or later: dating it back would turn signatures made in good faith into forgeries in the audit.
      if (Date.parse(at) < Date.parse(base.at) - 1000)
        throw new LiaisonError('bad-request', { publicDetail: 'revoked_at may not be in the past' });
      return { ...base, revoked: [{ kid, revoked_at: new Date(Date.parse(at)).toISOString() }] };
    });
  }

  #agencyChange(
    actor: Actor,
    agencyId: string,
    req: { id?: string; reason?: string },
    type: RegistryEventType,
    make: (agency: Agency, base: RegistryEvent) => Promise<RegistryEvent>,
  ): Promise<RecordedEvent> {
    return this.#registryChange(actor, { agency: agencyId }, req, type, async (base) => {
      const agency = await this.#o.registry.readAgency(agencyId);
      if (!agency) throw new LiaisonError('not-found', { publicDetail: `no agency ${agencyId}` });
      return make(agency, base);
    });
  }

  // ---- agency and operation records --------------------------------------

  /** An agency's record as stored now (not the watched snapshot). */
  readAgency(id: string): Promise<Agency | undefined> {
    return this.#o.registry.readAgency(id);
  }

  /** An operation's record as stored now. */
  readOperation(id: string): Promise<Operation | undefined> {
    return this.#o.registry.readOperation(id);
  }

  /** The whole member registry as this instance enforces it, in the seed's form (schemas/registry.schema.json). */
  registry(): { agencies: Agency[]; operations: Operation[] } {
    const s = this.#o.registry.snapshot;
    const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    return { agencies: s.agencies().sort(byId), operations: s.operations().sort(byId) };
  }

  /** Create an agency (its record and first keys) or set an existing one's record, its keys apart (registry-records.ts). */
  setAgency(
    actor: Actor,
    agencyId: string,
    req: { id?: string; agency: unknown; keys?: NewAgencyKey[]; reason?: string },
  ): Promise<RecordedEvent> {
    return this.#registryChange(actor, { agency: agencyId }, req, 'agency-set', async (base) => {
      const { registry } = this.#o;
      const existing = await registry.readAgency(agencyId);
      const { record, added } = await checkAgencyRecord(
        registry.snapshot,
        agencyId,
        existing,
        req.agency,
        req.keys,
        (r) => registry.recordErrors('agency', r),
      );
      const refusal =
        record.webhook && this.#o.webhookUrlRefusal ? await this.#o.webhookUrlRefusal(record.webhook.url) : null;
      if (refusal) throw new LiaisonError('bad-request', { publicDetail: `agency.webhook.url: ${refusal}` });
      return { ...base, record, ...(added.length > 0 ? { added } : {}) };
    });
  }

  // ---- notices -------------------------------------------------------------

  /**
   * Erase a notice: a `notice-erased` event (its id derived from the notice
   * id, so there is one per notice), logged first, then put in force by
   * eraseContent (the key crypto-shredded, the content purged). Asked again,
   * it completes what a crash left half-done and answers the same event
   * (duplicate). The notice's id stays taken.
   */
  async eraseNotice(actor: Actor | BrokerActor, noticeId: string, req: { reason: unknown }): Promise<RecordedEvent> {
    const reason = checkErasureReason(req.reason);
    if (!isUuid(noticeId) || !(await findNoticeLogged(this.#o.bus, noticeId)))
      throw new LiaisonError('notice-unknown', { publicDetail: 'no notice with this id is in the log' });
    return this.#registryChange(
      actor,
      { notice: noticeId },
      { id: erasureEventId(noticeId), reason },
      'notice-erased',
      async (base) => base,
    );
  }

  /** Create an operation or set its record (members, status, dates...). */
  setOperation(
    actor: Actor,
    operationId: string,
    req: { id?: string; operation: unknown; reason?: string },
  ): Promise<RecordedEvent> {
    return this.#registryChange(actor, { operation: operationId }, req, 'operation-set', async (base) => {
      const { registry } = this.#o;
      const isAgency = await this.#agencyLookup((req.operation as { members?: unknown } | null)?.members);
      return {
        ...base,
        record: checkOperationRecord(isAgency, operationId, req.operation, (r) =>
          registry.recordErrors('operation', r),
        ),
      };
    });
  }

  /**
   * Whether each of `ids` is a registered agency: by this instance's registry,
   * or, for one its watch has not seen yet (created a moment ago through
   * another gateway), by the store.
   */
  async #agencyLookup(ids: unknown): Promise<(id: string) => boolean> {
    const { registry } = this.#o;
    const stored = new Set<string>();
    for (const m of Array.isArray(ids) ? ids.slice(0, 1000) : []) {
      // Only a well-formed id becomes a KV key; any other fails the record's schema.
      if (
        typeof m === 'string' &&
        SLUG.test(m) &&
        registry.snapshot.agency(m) === undefined &&
        (await registry.readAgency(m))
      )
        stored.add(m);
    }
    return (id) => registry.snapshot.agency(id) !== undefined || stored.has(id);
  }

  /** One change of the registry: signed, stored and logged first (write-ahead), then applied; a retry with its id completes it. */
  async #registryChange(
    actor: Actor | BrokerActor,
    subject: { agency: string } | { operation: string } | { notice: string },
    req: { id?: string; reason?: string },
    type: RegistryEventType,
    make: (base: RegistryEvent) => Promise<RegistryEvent>,
  ): Promise<RecordedEvent> {
    const id = this.#eventId(req.id);
    try {
      const prior = await this.#storedEvent(id);
      if (prior) return await this.#completeStored(prior, type, subject);
      const base: RegistryEvent = {
        id,
        type,
        subject,
        at: this.#now().toISOString(),
        actor,
        ...(req.reason ? { reason: req.reason } : {}),
      };
      const event = await make(base);
      const signer = this.#o.keyring.signing;
      const jws = await signRegistryEvent(signer, event);
      // Write-ahead: the change is evidence before it is in force.
      const entryBytes = encodeEntry(registryLogEntry(event, jws, signer.kid));
      const logIndex = await this.#record(id, jws, entryBytes, signEntry(signer, entryBytes));
      await this.#apply(event, logIndex);
      return { event_id: id, type, log_index: logIndex, event: jws, duplicate: false };
    } catch (e) {
      throw unavailable(e, `registry change ${type}`);
    }
  }

  /** Put a logged event in force (idempotent: see applyAgencyEvent and applySetEvent). */
  async #apply(event: RegistryEvent, logIndex: number): Promise<void> {
    const { registry } = this.#o;
    if ('notice' in event.subject) {
      if (!this.#o.eraseContent) throw new Error('this instance cannot erase notices (no eraser wired)');
      await this.#o.eraseContent(event, logIndex);
      return;
    }
    if ('operation' in event.subject) {
      await registry.setOperation(event.subject.operation, (o) => applySetEvent(o, event, logIndex));
      return;
    }
    if (!('agency' in event.subject)) return;
    if (event.type === 'agency-set') {
      await registry.setAgency(event.subject.agency, (a) => applySetEvent(a, event, logIndex));
      return;
    }
    const written = await registry.updateAgency(event.subject.agency, (a) => applyAgencyEvent(a, event));
    if (!written) throw new LiaisonError('not-found', { publicDetail: `no agency ${event.subject.agency}` });
  }

  /** A retry: the stored event must be the same kind of change on the same subject; it is logged (no-op if done) and applied again (idempotent). */
  async #completeStored(
    m: StoredMessage,
    type: RegistryEventType,
    subject: RegistryEvent['subject'],
  ): Promise<RecordedEvent> {
    const jws = new TextDecoder().decode(m.data);
    const entryBytes = Buffer.from(m.header?.get(EVENT_ENTRY_HEADER) ?? '', 'base64url');
    let entry: ReturnType<typeof decodeEntry> | undefined;
    try {
      entry = entryBytes.length === 0 ? undefined : decodeEntry(entryBytes);
    } catch {
      entry = undefined;
    }
    let event: RegistryEvent | undefined;
    if (entry?.kind === 'registry') {
      try {
        ({ event } = openRegistryEvent(jws, this.#o.keyring.verificationKeys));
      } catch {
        event = undefined;
      }
    }
    if (!entry || typeof entry !== 'object' || !event) {
      // Junk stored under this event id (not an event the broker signed): a finding; the id cannot be used.
      integrity.report(
        this.#o.logger,
        'registry-events',
        streamWhere(STREAMS.registryEvents, m.seq),
        'not a broker-signed registry event',
      );
      throw new LiaisonError('key-conflict', { publicDetail: 'this event id was already used for another change' });
    }
    if (
      entry.kind !== 'registry' ||
      entry.event !== type ||
      JSON.stringify(entry.subject) !== JSON.stringify(subject)
    ) {
      throw new LiaisonError('key-conflict', { publicDetail: 'this event id was already used for another change' });
    }
    // The signature stored beside the entry, as is: bytes read back from a stream are never signed anew.
    const logIndex =
      (
        await appendEntry(
          this.#o.bus,
          eventMsgId(entry.event_id),
          entryBytes,
          m.header?.get(ENTRY_SIGNATURE_HEADER) || undefined,
        )
      ).seq - 1;
    await this.#apply(event, logIndex);
    return { event_id: entry.event_id, type, log_index: logIndex, event: jws, duplicate: true };
  }

  async #record(id: string, jws: string, entryBytes: Uint8Array, signature: string | undefined): Promise<number> {
    const msgID = eventMsgId(id);
    const headers: Record<string, string> = { [EVENT_ENTRY_HEADER]: Buffer.from(entryBytes).toString('base64url') };
    if (signature) headers[ENTRY_SIGNATURE_HEADER] = signature;
    await this.#o.bus.publish(eventSubject(id), new TextEncoder().encode(jws), { msgID, headers });
    return (await appendEntry(this.#o.bus, msgID, entryBytes, signature)).seq - 1;
  }

  #storedEvent(id: string): Promise<StoredMessage | null> {
    return this.#o.bus.lastMessage(STREAMS.registryEvents, eventSubject(id), 'registry event lookup');
  }

  #eventId(id: string | undefined): string {
    if (id === undefined) return randomUUID();
    if (!isUuid(id)) throw new LiaisonError('bad-request', { publicDetail: 'id must be a lower-case UUID' });
    return id;
  }
}

/** ensureStorageKey: another instance made the first storage key meanwhile. */
class AlreadyMade extends CodedError<'storage-key-exists'> {
  constructor() {
    super('storage-key-exists', 'the keyring already holds a storage key');
  }
}

/** A change that failed part-way as the one `unavailable` (503: retry it, it is idempotent); a LiaisonError is kept as it is. */
function unavailable(err: unknown, what: string): LiaisonError {
  if (err instanceof LiaisonError) return err;
  return new LiaisonError('unavailable', {
    detail: `${what}: ${err instanceof Error ? err.message : String(err)}`,
    cause: err,
  });
}

async function signerOf(file: BrokerKeyring['file']): Promise<BrokerSigningKey> {
  const current = file.signing[0];
  if (!current?.kid) throw new Error('broker key file has no signing key');
  return {
    kid: current.kid,
    alg: 'EdDSA',
    privateKey: await importKey(current, 'EdDSA'),
    publicJwk: publicPart(current),
  };
}
