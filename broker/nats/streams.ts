import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';
import { CHECKPOINT_SUBJECT, STREAMS } from '../core/stream-names.js';
import { isNotFound } from './errors.js';

export { CHECKPOINT_SUBJECT, STREAMS } from '../core/stream-names.js';

export interface StreamSettings {
  duplicateWindowSeconds: number;
  replicas: number;
  /** max_age of DELIVERIES; 30 days when not given. */
  deliveriesMaxAgeSeconds?: number;
}

const ns = (seconds: number) => seconds * 1_000_000_000;

export function streamConfigs(s: StreamSettings): Partial<StreamConfig>[] {
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: s.replicas,
    duplicate_window: ns(s.duplicateWindowSeconds),
    deny_delete: true,
    allow_rollup_hdrs: false,
  };
  // Evidence streams: nothing is ever dropped, purged or aged out; a full stream refuses new messages rather than losing old ones.
  const appendOnly = { discard: DiscardPolicy.New, deny_purge: true, max_age: 0, max_msgs: -1, max_bytes: -1 };
  return [
    {
      ...common,
      name: STREAMS.notices,
      subjects: ['notices.*.*.*'],
      description: "Origins' signed notices as received; subject notices.<operation>.<origin-country>.<type>",
      discard: DiscardPolicy.Old,
      deny_purge: false,
      // An erasure (broker/erasure/) overwrites the notice's message in place (secure delete); the commitment stays in LOG.
      deny_delete: false,
    },
    {
      ...common,
      name: STREAMS.log,
      subjects: ['log.*'],
      description: 'The signed log: one canonical JSON commitment per entry, in log order (index = seq - 1)',
      ...appendOnly,
    },
    {
      ...common,
      name: STREAMS.deliveries,
      subjects: ['deliveries.*.*.*'],
      description:
        'One encrypted copy of a notice per recipient agency; subject deliveries.<agency>.<operation>.<origin-country>; Msg-Id <notice-id>:<agency>',
      discard: DiscardPolicy.Old,
      deny_purge: false,
      // An erasure overwrites every recipient's copy of the notice in place.
      deny_delete: false,
      max_age: ns(s.deliveriesMaxAgeSeconds ?? 30 * 24 * 3600),
      // JetStream refuses a duplicate window longer than max_age.
      duplicate_window: ns(Math.min(s.duplicateWindowSeconds, s.deliveriesMaxAgeSeconds ?? 30 * 24 * 3600)),
    },
    {
      ...common,
      name: STREAMS.checkpoints,
      subjects: [CHECKPOINT_SUBJECT],
      description:
        'Signed checkpoints (C2SP signed notes) of the LOG Merkle tree, with the compact range state in a header',
      ...appendOnly,
    },
    {
      ...common,
      name: STREAMS.deadletter,
      subjects: ['deadletter.webhook.*', 'redeliver.webhook.*'],
      description:
        'Webhook deliveries that failed every try (deadletter.webhook.<agency>), and operator requests to send one again (redeliver.webhook.<agency>)',
      discard: DiscardPolicy.Old,
      deny_delete: false, // a re-delivered dead letter is removed
      deny_purge: false,
      max_age: ns(s.deliveriesMaxAgeSeconds ?? 30 * 24 * 3600),
      duplicate_window: ns(Math.min(s.duplicateWindowSeconds, s.deliveriesMaxAgeSeconds ?? 30 * 24 * 3600)),
    },
    {
      ...common,
      name: STREAMS.acks,
      subjects: ['acks.*.*', 'complaints.*.*'],
      description:
        "Recipients' signed read receipts and complaints (compact JWS, as received), subjects acks.<notice-id>.<agency> and complaints.<notice-id>.<agency>; Msg-Id ack:<notice-id>:<agency>, complaint:<notice-id>:<agency>",
      ...appendOnly,
    },
    {
      ...common,
      name: STREAMS.registryEvents,
      subjects: ['registry-events.*'],
      description:
        'Broker-signed registry events (key added, rotated, revoked; compact JWS), subject registry-events.<event-id>, with the log entry in a header; Msg-Id registry:<event-id>',
      ...appendOnly,
    },
    {
      ...common,
      name: STREAMS.noticeKeys,
      subjects: ['notice-keys.*'],
      description:
        "Each stored notice's own data key, wrapped under a broker storage key (broker/vault/notice-keys.ts), subject notice-keys.<notice-id>; after an erasure, a tombstone naming the erasure event",
      discard: DiscardPolicy.New,
      max_age: 0,
      max_msgs: -1,
      max_bytes: -1,
      deny_purge: true,
      // Erasure overwrites a notice's key in place (a secure delete of that one message): crypto-shredding.
      deny_delete: false,
    },
  ];
}

/** Fields that must match on an existing stream; anything else is updated in place. */
const mustMatch = ['storage', 'retention'] as const;

/** Create the streams, or check and update existing ones. Throws if an existing stream cannot be brought in line. */
export async function ensureStreams(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  for (const want of streamConfigs(s)) {
    const name = want.name as string;
    let info;
    try {
      info = await jsm.streams.info(name);
    } catch (e) {
      if (!isNotFound(e, 'stream')) throw e;
      await jsm.streams.add(want);
      continue;
    }
    for (const k of mustMatch) {
      if (info.config[k] !== want[k]) throw new Error(`stream ${name}: ${k} is ${info.config[k]}, expected ${want[k]}`);
    }
    const { num_replicas: _r, ...update } = want;
    const needs = Object.entries(update).some(
      ([k, v]) => JSON.stringify((info.config as unknown as Record<string, unknown>)[k]) !== JSON.stringify(v),
    );
    if (needs) await jsm.streams.update(name, { ...info.config, ...update });
  }
}
