/**
 * The delivery-transport contract: how a delivery leaves the broker for its
 * recipient (pull and SSE, webhooks, NATS-native consumers). A transport is
 * one folder implementing `DeliveryTransport` and one line in
 * broker/transports/registry.ts; the composition root starts what each one
 * runs with a `TransportContext`, so a transport reaches DELIVERIES, the
 * leases, the registry and the broker's key only through the interfaces here.
 */
import type { CryptoKey } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../../broker/config/config.js';
import type { InboxDelivery } from '../../broker/core/inbox-delivery.js';
import type { Lease } from '../../broker/leader/lease.js';

/** One stored delivery, or an operator's request to deliver a parked one again, held until it is settled. */
export interface DeliveryMessage {
  /** The recipient agency. */
  readonly agency: string;
  /** The delivery's DELIVERIES sequence (the inbox cursor). */
  readonly cursor: number;
  /** An operator's redelivery request rather than a delivery in order. */
  readonly redelivery: boolean;
  /** The delivery; null when the stored message is not one (an integrity finding is made): term() it. */
  readonly delivery: InboxDelivery | null;
  /** Settled: never handed out again. */
  ack(): Promise<void>;
  /** Not settled: hand it out again after `delayMs`. */
  nak(delayMs: number): void;
  /** Never hand it out again, unsettled (not a delivery). */
  term(): void;
  /** Still being worked on: do not hand it out again yet. */
  working(): void;
}

/** A durable, acknowledged queue of deliveries: one agency's, or the redelivery requests of all. */
export type DeliveryQueue = { consumer: string; ackWaitMs: number } & ({ agency: string } | { redeliveries: true });

export interface DeliverySource {
  /**
   * Hand the queue's messages to `handle` one at a time, in order, until `signal` aborts; after a failure (told to
   * `failed`) it subscribes again. A message `handle` leaves unsettled comes back after the queue's ack wait.
   */
  consume(
    queue: DeliveryQueue,
    signal: AbortSignal,
    handle: (m: DeliveryMessage) => Promise<void>,
    failed: (e: Error) => void,
  ): Promise<void>;
}

/** Where a delivery that failed every try is parked for an operator (`liaison webhook deadletters`). */
export interface DeadLetterSink {
  /** Park `m` (once, however often asked); returns where it is parked. Ack `m` after. */
  park(m: DeliveryMessage, failure: { attempts: number; lastError: string; at: Date }): Promise<number>;
}

/** What the registry says about an agency's deliveries. */
export interface AgencyDeliverySettings {
  readonly id: string;
  /** It has the role `subscribe`. */
  readonly subscribes: boolean;
  readonly webhookUrl: string | undefined;
}

export interface AgencyDirectory {
  /** Every agency, as the registry has them now. */
  agencies(): readonly AgencyDeliverySettings[];
  agency(id: string): AgencyDeliverySettings | undefined;
}

/** The broker's current signing key (it changes on rotation: ask each time). */
export interface DeliverySigner {
  readonly issuer: string;
  readonly key: { readonly kid: string; readonly alg: string; readonly privateKey: CryptoKey };
}

export interface TransportContext {
  config: Config;
  logger: Logger;
  /** This instance's name in the leases it takes. */
  holder: string;
  /** Opens the leader lease `key` (broker/leader/leader-loop.ts runs work under it). */
  lease: (key: string) => Promise<Lease>;
  deliveries: DeliverySource;
  deadLetters: DeadLetterSink;
  agencies: AgencyDirectory;
  signer: () => DeliverySigner;
}

/** What a transport runs on a gateway: started once nothing else can fail, closed first. */
export interface TransportWorker {
  /** Whether this instance does the transport's work right now (it may be leased to another instance). */
  readonly leading: boolean;
  start(): void;
  close(): Promise<void>;
}

export interface DeliveryTransport {
  readonly name: string;
  /**
   * The worker this transport runs on a gateway; null when it runs nothing here: switched off, or served on request
   * (the inbox routes) or by NATS itself (an agency's own consumer).
   */
  worker(ctx: TransportContext): TransportWorker | null;
}
