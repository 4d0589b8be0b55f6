/**
 * NATS-native subscribers: per-agency nats-server 2.9 users (static users with
 * permissions in the server's config) generated from the registry. Pure: no I/O;
 * the passwords come from the caller-supplied `password()` (random by default).
 *
 * An agency may only
 * - subscribe to its own reply inbox `_INBOX.<agency>.>` (the client connects with
 *   `inboxPrefix: "_INBOX.<agency>"`);
 * - pull from, and read the info of, its own durable consumer `inbox-<agency>` on
 *   DELIVERIES, which the operator pre-creates with filter `deliveries.<agency>.*.*`
 *   (the agency cannot create, re-create or widen any consumer);
 * - acknowledge what that consumer delivered (`$JS.ACK.DELIVERIES.inbox-<agency>.>`).
 * Nothing else: no NOTICES, LOG or other stream, no consumer create, no publish to `notices.>`.
 *
 * The broker user (`liaison-broker`) is what every gateway connects as
 * (NATS_USER=liaison-broker with NATS_PASSWORD_FILE, broker/nats/connection.ts),
 * and the operator commands too. It has no permissions block, i.e. every subject
 * of the account: a gateway creates and updates the streams, the KV buckets
 * (registry, leases, replay guard, tiles, ...), the router's and the agencies'
 * durable consumers, publishes to notices.>, log.>, deliveries.>, checkpoints,
 * acks, deadletter/redeliver, and uses $JS.API.>, $JS.ACK.>, $JS.FC.>, $KV.> and
 * _INBOX.>. A narrower list would still hold $JS.API.> (full control of
 * JetStream), so it would protect nothing and break on the next new stream.
 * Keep Liaison in an account of its own when the server serves other apps.
 */
import { randomBytes } from 'node:crypto';
import type { RegistrySnapshot } from '../registry/model.js';
import { STREAMS } from './streams.js';

export const BROKER_NATS_USER = 'liaison-broker';

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
}

export interface NatsUser {
  user: string;
  password: string;
  /** Absent: full rights (the broker). */
  permissions?: NatsPermissions;
}

/** What an agency needs to read its deliveries straight from NATS (written to its credentials file). */
export interface AgencyNatsCredentials {
  agency: string;
  user: string;
  password: string;
  inbox_prefix: string;
  stream: string;
  durable: string;
  filter_subject: string;
}

export interface SubscriberAuth {
  broker: NatsUser;
  agencies: AgencyNatsCredentials[];
  users: NatsUser[];
  /** A nats-server config fragment (`authorization { users = [...] }`) to include from the server's config. */
  config: string;
}

/** The durable consumer on DELIVERIES an agency reads through. */
export const agencyDurable = (agency: string): string => `inbox-${agency}`;
/** `deliveries.<agency>.*.*`, not `.>`: JetStream 2.9 wants a filter that is a subset of the stream's `deliveries.*.*.*`. */
export const agencyFilter = (agency: string): string => `deliveries.${agency}.*.*`;
export const agencyInboxPrefix = (agency: string): string => `_INBOX.${agency}`;

export const randomPassword = (): string => randomBytes(24).toString('base64url');

/** The permissions of an agency's NATS user: its own durable consumer and reply inbox, nothing else. */
export function agencyPermissions(agency: string): NatsPermissions {
  if (!SLUG.test(agency)) throw new Error(`agency id ${JSON.stringify(agency)} cannot name a NATS user or consumer`);
  const d = STREAMS.deliveries;
  const durable = agencyDurable(agency);
  return {
    publish: {
      allow: [`$JS.API.CONSUMER.MSG.NEXT.${d}.${durable}`, `$JS.API.CONSUMER.INFO.${d}.${durable}`, `$JS.ACK.${d}.${durable}.>`],
      // Redundant with the allow list (anything not allowed is refused); spelled out so a later edit cannot open them by accident.
      deny: ['notices.>', 'log.>', 'deliveries.>', '$JS.API.CONSUMER.CREATE.>', '$JS.API.CONSUMER.DURABLE.CREATE.>', '$JS.API.STREAM.>'],
    },
    subscribe: {
      allow: [`${agencyInboxPrefix(agency)}.>`],
      deny: ['deliveries.>', 'notices.>', 'log.>'],
    },
  };
}

/** The agencies that get a NATS user: every registry agency with the `subscribe` role. */
export function subscribingAgencies(registry: RegistrySnapshot): string[] {
  return registry
    .agencies()
    .filter((a) => a.roles.includes('subscribe'))
    .map((a) => a.id)
    .sort();
}

const q = (s: string) => {
  if (/["\\\n\r]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)} in a nats-server config`);
  return `"${s}"`;
};
const list = (xs: string[]) => `[${xs.map(q).join(', ')}]`;

function userBlock(u: NatsUser): string {
  const head = `    { user: ${q(u.user)}, password: ${q(u.password)}`;
  if (!u.permissions) return `    # full rights in this account: the gateways and operator commands (NATS_USER=${u.user}, NATS_PASSWORD_FILE=<creds dir>/${u.user}.password)\n${head} }`;
  const p = u.permissions;
  return (
    `${head},\n      permissions: {\n` +
    `        publish: { allow: ${list(p.publish.allow)}, deny: ${list(p.publish.deny)} }\n` +
    `        subscribe: { allow: ${list(p.subscribe.allow)}, deny: ${list(p.subscribe.deny)} }\n` +
    `      }\n    }`
  );
}

/** Render the users as a nats-server config `authorization` block (plain passwords: keep the file 0600). */
export function renderAuthorization(users: NatsUser[]): string {
  return `# Generated by "liaison nats creds" from the member registry. Contains passwords: keep it 0600.\nauthorization {\n  users = [\n${users.map(userBlock).join('\n')}\n  ]\n}\n`;
}

/**
 * One NATS user per subscribing agency plus the full-rights broker user.
 * `existing` keeps passwords already issued (by user name), so re-running after a registry change does not rotate everyone.
 */
export function subscriberAuth(
  registry: RegistrySnapshot,
  opts: { brokerUser?: string; brokerPassword?: string; password?: () => string; existing?: Record<string, string> } = {},
): SubscriberAuth {
  const password = opts.password ?? randomPassword;
  const pick = (user: string) => opts.existing?.[user] ?? password();
  const brokerUser = opts.brokerUser ?? BROKER_NATS_USER;
  const broker: NatsUser = { user: brokerUser, password: opts.brokerPassword ?? pick(brokerUser) };
  const agencies: AgencyNatsCredentials[] = [];
  const users: NatsUser[] = [broker];
  for (const id of subscribingAgencies(registry)) {
    const permissions = agencyPermissions(id);
    if (id === brokerUser) throw new Error(`agency ${id} has the broker's NATS user name`);
    const pw = pick(id);
    users.push({ user: id, password: pw, permissions });
    agencies.push({ agency: id, user: id, password: pw, inbox_prefix: agencyInboxPrefix(id), stream: STREAMS.deliveries, durable: agencyDurable(id), filter_subject: agencyFilter(id) });
  }
  return { broker, agencies, users, config: renderAuthorization(users) };
}
