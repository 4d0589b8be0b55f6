import { LiaisonError } from '../core/errors.js';
import type { Agency, Operation, RegistrySnapshot } from '../registry/model.js';
import { checkNewKey, withKeys, type NewAgencyKey } from './agency-keys.js';
import type { AddedAgencyKey, AgencyFields, RegistryEvent } from './registry-event.js';

/**
 * Agency and operation records set through the admin API (events agency-set
 * and operation-set), as pure functions: checking a requested record against
 * the registry as it is, and applying a logged event to the stored record.
 *
 * A set replaces the record as a whole (a member left out of `members` leaves
 * the operation; a `webhook` left out is removed), except an agency's keys,
 * which only key events change: a new agency's first keys come with its
 * agency-set event, and an existing agency's keys are kept as they are (a
 * request may list keys the agency has, as a fetched record does, no other).
 *
 * The record remembers the event that set it and that event's log index
 * (`changed_by`). Applying an event at or below that index changes nothing, so
 * an event applied again (a retry after a crash) never undoes a later one.
 */

const bad = (publicDetail: string) => new LiaisonError('bad-request', { publicDetail });
type Errors = (record: unknown) => string[];

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} must be a JSON object`);
  if ('changed_by' in v) throw bad(`${what}.changed_by is set by the broker`);
  return v as Record<string, unknown>;
}

/** The operation record an operation-set event carries: valid by the registry schema, its id the path's, every member a registered agency (`isAgency`). */
export function checkOperationRecord(
  isAgency: (id: string) => boolean,
  id: string,
  requested: unknown,
  errors: Errors,
): Omit<Operation, 'changed_by'> {
  const r = asObject(requested, 'operation');
  if (r.id !== id) throw bad(`operation.id must be "${id}", the id in the path`);
  const why = errors(r);
  if (why.length > 0) throw bad(`operation: ${why.join('; ')}`);
  const op = r as unknown as Omit<Operation, 'changed_by'>;
  const unknown = op.members.filter((m) => !isAgency(m));
  if (unknown.length > 0) throw bad(`operation.members: no agency ${unknown.join(', ')} in the registry`);
  return op;
}

/**
 * The fields and first keys an agency-set event carries. An existing agency's
 * keys are not part of the request (they change through the key routes) and
 * its country stays; a new agency's keys are checked as the key routes check
 * them (public, importable, kid free).
 */
export async function checkAgencyRecord(
  snapshot: RegistrySnapshot,
  id: string,
  existing: Agency | undefined,
  requested: unknown,
  keys: readonly NewAgencyKey[] | undefined,
  errors: Errors,
): Promise<{ record: AgencyFields; added: AddedAgencyKey[] }> {
  const r = asObject(requested, 'agency');
  if (r.id !== id) throw bad(`agency.id must be "${id}", the id in the path`);
  if ('keys' in r || 'openpgp_keys' in r)
    throw bad(
      "an agency's keys are not part of its record here: give a new agency's first keys in `keys`, and change an existing agency's through its key routes",
    );
  const record = r as unknown as AgencyFields;
  const added: AddedAgencyKey[] = [];
  if (existing) {
    // A record file may list the keys the agency has (as fetched): those are left as they are; any other is refused.
    const held = new Set([...existing.keys, ...(existing.openpgp_keys ?? [])].map((k) => k.kid.toUpperCase()));
    const other = (keys ?? []).filter((k) => !held.has(k.kid.toUpperCase()));
    if (other.length > 0)
      throw bad(`agency ${id} exists: add ${other.map((k) => k.kid).join(', ')} through its key routes (add, rotate)`);
    if (record.country !== existing.country)
      throw bad(`agency ${id} is registered in ${existing.country}; its country does not change`);
  } else {
    const kids = new Set<string>();
    for (const k of keys ?? []) {
      if (kids.has(k.kid.toUpperCase())) throw bad(`keys: kid ${k.kid} is given twice`);
      kids.add(k.kid.toUpperCase());
      added.push(await checkNewKey(snapshot, k));
    }
  }
  const why = errors(recordWithKeys(record, existing, added));
  if (why.length > 0) throw bad(`agency: ${why.join('; ')}`);
  return { record, added };
}

/** An agency's record with these fields and the keys it has now, plus (a new agency's) keys added, active. */
function recordWithKeys(record: AgencyFields, current: Agency | undefined, added: readonly AddedAgencyKey[]): Agency {
  const kept: Agency = current
    ? { ...record, keys: current.keys, ...(current.openpgp_keys ? { openpgp_keys: current.openpgp_keys } : {}) }
    : { ...record, keys: [] };
  return withKeys(kept, added);
}

/** The record after a set event logged at `logIndex`, or undefined to leave it as it is (a set at this or a later index is in already). */
export function applySetEvent<T extends Agency | Operation>(
  current: T | undefined,
  event: RegistryEvent,
  logIndex: number,
): T | undefined {
  if (current?.changed_by && current.changed_by.log_index >= logIndex) return undefined;
  const changed_by = { event_id: event.id, log_index: logIndex };
  if (event.type === 'operation-set') return { ...(event.record as Operation), changed_by } as T;
  if (event.type !== 'agency-set') throw new TypeError(`${event.type} is not a set event`);
  return {
    ...recordWithKeys(
      event.record as AgencyFields,
      current as Agency | undefined,
      (event.added ?? []) as AddedAgencyKey[],
    ),
    changed_by,
  } as T;
}
