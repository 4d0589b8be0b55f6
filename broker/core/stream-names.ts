/** The JetStream streams of the broker (their configuration: broker/nats/streams.ts). */
export const STREAMS = {
  notices: 'NOTICES',
  log: 'LOG',
  deliveries: 'DELIVERIES',
  checkpoints: 'CHECKPOINTS',
  deadletter: 'DEADLETTER',
  acks: 'ACKS',
  registryEvents: 'REGISTRY_EVENTS',
  noticeKeys: 'NOTICE_KEYS',
} as const;

/** The one subject of CHECKPOINTS: signed tree heads, in publication order. */
export const CHECKPOINT_SUBJECT = 'checkpoints';
