/**
 * NATS-native subscribers: nats-server 2.9 accounts and users generated from
 * the registry. Pure: no I/O; the passwords come from the caller-supplied
 * `password()` (random by default).
 *
 * The boundary is the NATS account, not user permissions: nats-server 2.9
 * checks a request's subject against the publisher's permissions but not its
 * reply subject, and JetStream answers on the reply subject (a pull request's
 * `404 No Messages` status, a consumer info...). In one shared account an agency
 * could aim those answers at `$KV.registry.x`, `log.notice`, `notices.>`... and
 * JetStream would store them. So:
 * - the hub's account (`LIAISON`) holds JetStream, every stream and KV bucket,
 *   and the broker user (`liaison-broker`, full rights in that account): every
 *   gateway and operator command connects as it (NATS_USER=liaison-broker with
 *   NATS_PASSWORD_FILE, broker/nats/connection.ts). A narrower list would still
 *   hold $JS.API.> (full control of JetStream), so it would protect nothing.
 * - each subscribing agency has an account of its own (`agency-<id>`, no
 *   JetStream) that imports from the hub only its own consumer's services:
 *   `$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.inbox-<id>` (response_type stream: a
 *   pull batch has several replies), `$JS.API.CONSUMER.INFO.DELIVERIES.inbox-<id>`
 *   and `$JS.ACK.DELIVERIES.inbox-<id>.>`; the hub exports each to that account
 *   only. A reply subject the agency names lives in its own account: the server
 *   maps it to a private `_R_` subject in the hub's account and carries the
 *   answers back, so no answer can land on a hub subject.
 * - inside its account the agency's user may still only publish those three
 *   subjects and subscribe to its reply inbox `_INBOX.<id>.>` (the client
 *   connects with `inboxPrefix: "_INBOX.<id>"`): clear refusals, and no other
 *   user of the account can be reached.
 * The operator pre-creates each durable consumer `inbox-<id>` with filter
 * `deliveries.<id>.*.*` (agency-consumers.ts); the agency cannot create,
 * re-create or widen any consumer, nor reach NOTICES, LOG or any other stream.
 * Tested on a real nats-server in test/nats-accounts.test.ts.
 */
import { randomBytes } from 'node:crypto';
import type { RegistrySnapshot } from '../registry/model.js';
import { STREAMS } from './streams.js';

export const BROKER_NATS_USER = 'liaison-broker';
/** The hub's NATS account: JetStream, the streams and KV buckets, the broker user. */
export const HUB_NATS_ACCOUNT = 'LIAISON';

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export interface NatsPermissions {
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
}

export interface NatsUser {
  /** The account the user belongs to (HUB_NATS_ACCOUNT or agencyAccount(id)). */
  account: string;
  user: string;
  password: string;
  /** Absent: full rights (the broker). */
  permissions?: NatsPermissions;
}

/** What an agency needs to read its deliveries straight from NATS (written to its credentials file). */
export interface AgencyNatsCredentials {
  agency: string;
  /** The agency's own NATS account, which imports its consumer's services from the hub's. */
  account: string;
  user: string;
  password: string;
  inbox_prefix: string;
  /** The JetStream API prefix to connect with (AGENCY_JS_API_PREFIX). */
  js_api_prefix: string;
  stream: string;
  durable: string;
  filter_subject: string;
}

export interface SubscriberAuth {
  broker: NatsUser;
  agencies: AgencyNatsCredentials[];
  users: NatsUser[];
  /** A nats-server config fragment (`accounts { LIAISON {...} agency-<id> {...} }`) to include from the server's config. */
  config: string;
}

/** The durable consumer on DELIVERIES an agency reads through. */
export const agencyDurable = (agency: string): string => `inbox-${agency}`;
/** `deliveries.<agency>.*.*`, not `.>`: JetStream 2.9 wants a filter that is a subset of the stream's `deliveries.*.*.*`. */
export const agencyFilter = (agency: string): string => `deliveries.${agency}.*.*`;
export const agencyInboxPrefix = (agency: string): string => `_INBOX.${agency}`;
/** The agency's own NATS account (lower case: cannot clash with HUB_NATS_ACCOUNT). */
export const agencyAccount = (agency: string): string => `agency-${agency}`;

/**
 * The JetStream API prefix an agency's client uses (nats.js `jetstream({ apiPrefix })`, the nats CLI's
 * `--js-api-prefix`). Not `$JS.API`: nats-server 2.9 gives an account without JetStream its own
 * `$JS.API.>` responder, which answers a consumer info with "JetStream not enabled for account" before
 * the hub's import does; under another prefix only the imports answer.
 */
export const AGENCY_JS_API_PREFIX = 'liaison.API';

export interface AgencyService {
  /** The subject in the hub's account (exported to the agency's account only). */
  subject: string;
  /** The subject the agency publishes to in its own account (imported as `to`). */
  local: string;
  responseType: 'stream' | 'singleton';
}

/** The hub services an agency's account imports: its own consumer's pull, info and ack subjects, nothing else. */
export function agencyServices(agency: string): AgencyService[] {
  const d = STREAMS.deliveries;
  const durable = agencyDurable(agency);
  const api = (rest: string, responseType: AgencyService['responseType']): AgencyService => ({
    subject: `$JS.API.${rest}`,
    local: `${AGENCY_JS_API_PREFIX}.${rest}`,
    responseType,
  });
  return [
    api(`CONSUMER.MSG.NEXT.${d}.${durable}`, 'stream'), // a pull batch: several replies
    api(`CONSUMER.INFO.${d}.${durable}`, 'singleton'),
    // The acks go to the reply subject JetStream set on each delivery, as it is.
    { subject: `$JS.ACK.${d}.${durable}.>`, local: `$JS.ACK.${d}.${durable}.>`, responseType: 'singleton' },
  ];
}

export const randomPassword = (): string => randomBytes(24).toString('base64url');

/** The permissions of an agency's NATS user: its own durable consumer and reply inbox, nothing else. */
export function agencyPermissions(agency: string): NatsPermissions {
  if (!SLUG.test(agency)) throw new Error(`agency id ${JSON.stringify(agency)} cannot name a NATS user or consumer`);
  return {
    publish: {
      allow: agencyServices(agency).map((s) => s.local),
      // Redundant with the allow list (anything not allowed is refused); spelled out so a later edit cannot open them by accident.
      deny: [
        'notices.>',
        'log.>',
        'deliveries.>',
        '$JS.API.CONSUMER.CREATE.>',
        '$JS.API.CONSUMER.DURABLE.CREATE.>',
        '$JS.API.STREAM.>',
      ],
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

function userBlock(u: NatsUser, indent: string): string {
  const head = `${indent}{ user: ${q(u.user)}, password: ${q(u.password)}`;
  if (!u.permissions)
    return `${indent}# full rights in this account: the gateways and operator commands (NATS_USER=${u.user}, NATS_PASSWORD_FILE=<creds dir>/${u.user}.password)\n${head} }`;
  const p = u.permissions;
  return (
    `${head},\n${indent}  permissions: {\n` +
    `${indent}    publish: { allow: ${list(p.publish.allow)}, deny: ${list(p.publish.deny)} }\n` +
    `${indent}    subscribe: { allow: ${list(p.subscribe.allow)}, deny: ${list(p.subscribe.deny)} }\n` +
    `${indent}  }\n${indent}}`
  );
}

/**
 * Render the accounts as a nats-server config `accounts` block (plain passwords: keep the file 0600):
 * the hub's account with JetStream, the broker user and one export per agency service; one account per
 * agency with its user and the imports of its own services.
 */
export function renderAccounts(broker: NatsUser, agencies: AgencyNatsCredentials[], users: NatsUser[]): string {
  const exports: string[] = [];
  const accounts: string[] = [];
  for (const a of agencies) {
    const imports: string[] = [];
    for (const s of agencyServices(a.agency)) {
      exports.push(
        `      { service: ${q(s.subject)}${s.responseType === 'stream' ? ', response_type: stream' : ''}, accounts: [${q(a.account)}] }`,
      );
      imports.push(
        `      { service: { account: ${q(HUB_NATS_ACCOUNT)}, subject: ${q(s.subject)} }${s.local !== s.subject ? `, to: ${q(s.local)}` : ''} }`,
      );
    }
    const own = users.filter((u) => u.account === a.account);
    accounts.push(
      `  # ${a.agency}: no JetStream of its own; reaches only its consumer ${a.durable} on ${a.stream}\n` +
        `  ${q(a.account)} {\n    users = [\n${own.map((u) => userBlock(u, '      ')).join('\n')}\n    ]\n    imports = [\n${imports.join('\n')}\n    ]\n  }`,
    );
  }
  const hubUsers = users.filter((u) => u.account === broker.account);
  return (
    `# Generated by "liaison nats creds" from the member registry. Contains passwords: keep it 0600.\n` +
    `# Include it from nats-server.conf next to a top-level jetstream { store_dir: ... } block.\n` +
    `accounts {\n` +
    `  # The hub: JetStream, every Liaison stream and KV bucket; exports each agency's consumer services to that agency only.\n` +
    `  ${q(HUB_NATS_ACCOUNT)} {\n    jetstream: enabled\n    users = [\n${hubUsers.map((u) => userBlock(u, '      ')).join('\n')}\n    ]\n` +
    `    exports = [\n${exports.join('\n')}\n    ]\n  }\n` +
    accounts.map((a) => a + '\n').join('') +
    `}\n`
  );
}

/**
 * One NATS user per subscribing agency plus the full-rights broker user.
 * `existing` keeps passwords already issued (by user name), so re-running after a registry change does not rotate everyone.
 */
export function subscriberAuth(
  registry: RegistrySnapshot,
  opts: {
    brokerUser?: string;
    brokerPassword?: string;
    password?: () => string;
    existing?: Record<string, string>;
  } = {},
): SubscriberAuth {
  const password = opts.password ?? randomPassword;
  const pick = (user: string) => opts.existing?.[user] ?? password();
  const brokerUser = opts.brokerUser ?? BROKER_NATS_USER;
  const broker: NatsUser = {
    account: HUB_NATS_ACCOUNT,
    user: brokerUser,
    password: opts.brokerPassword ?? pick(brokerUser),
  };
  const agencies: AgencyNatsCredentials[] = [];
  const users: NatsUser[] = [broker];
  for (const id of subscribingAgencies(registry)) {
    const permissions = agencyPermissions(id);
    if (id === brokerUser) throw new Error(`agency ${id} has the broker's NATS user name`);
    const pw = pick(id);
    const account = agencyAccount(id);
    users.push({ account, user: id, password: pw, permissions });
    agencies.push({
      agency: id,
      account,
      user: id,
      password: pw,
      inbox_prefix: agencyInboxPrefix(id),
      js_api_prefix: AGENCY_JS_API_PREFIX,
      stream: STREAMS.deliveries,
      durable: agencyDurable(id),
      filter_subject: agencyFilter(id),
    });
  }
  return { broker, agencies, users, config: renderAccounts(broker, agencies, users) };
}
