/**
 * Prometheus metrics of one gateway (prom-client), in a registry of its own:
 * never the process-global default, so two gateways in one process (tests)
 * never share or clash.
 *
 * The rest of the broker does not import prom-client: the pipeline, the router
 * and the SSE pump are given small observer objects (the pipeline's and the
 * router's interfaces in observers.ts, the SSE pump's next to it) and this
 * module implements them. Labels are codes, steps,
 * modes, outcomes, stream names and route templates, never notice, agency or
 * request ids, never content.
 *
 * Gauges that describe NATS state (log size, checkpoint age, router lag, stream
 * sizes) are read at scrape time by refresh(), each read bounded in time, so a
 * scrape during a NATS outage still answers (with liaison_nats_connected 0).
 */

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SseObserver } from '../../adapters/sse/pump.js';
import { problemCodes, type ProblemCode } from '../core/errors.js';
import { FINDING_SOURCES, integrity } from '../core/integrity.js';
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import type { PipelineObserver, RouterObserver } from './observers.js';
import { PAUSE_KINDS, PauseRecorder } from './pauses.js';
import { readThreadCpu, THREAD_ROLES, ThreadCpuAccount, type RoleThreadIds } from './thread-cpu.js';

/** Where the scrape-time gauges come from; attached once the gateway has them. */
export interface MetricsSources {
  bus: StorePort;
  /** The router (null when this gateway does not route). */
  router?: { readonly leading: boolean } | null;
  /** The checkpointer (null when this gateway does not checkpoint). */
  checkpointer?: {
    readonly status: {
      leader: boolean;
      treeSize: number;
      checkpointSize: number;
      halted: { index: number; reason: string } | null;
    };
  } | null;
  /** The log entries no signed checkpoint covers yet, and the age of the oldest (broker/log/checkpoint-lag.ts). */
  checkpointLag?: () => Promise<{ entries: number; oldestSeconds: number }>;
  /** The router's durable consumer on NOTICES. */
  routerConsumer?: string;
  /** The ids of the background thread and the sealing worker, where they run (liaison_thread_cpu_seconds_total). */
  threads?: () => RoleThreadIds;
}

/** Delivery modes an agency receives deliveries through. */
export type DeliveryMode = 'pull' | 'sse' | 'webhook';

/** For delivery adapters (SSE, webhook): counts by mode, retries and dead letters. */
export interface DeliveryObserver {
  delivered(mode: DeliveryMode, count: number): void;
  webhookRetry(): void;
  webhookDeadLetter(): void;
}

/** A notice post slower than this (the p99 target) is attributed (liaison_slow_notice_post_seconds_total). */
export const SLOW_SECONDS = 0.025;

export const INGEST_STEPS = ['open', 'decode', 'freshness', 'validate', 'policy', 'store', 'receipt'] as const;

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref?.();
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e)),
    );
  });

export class Metrics {
  readonly registry = new Registry();
  readonly #noticesAccepted: Counter<'duplicate'>;
  readonly #noticesRefused: Counter<'code'>;
  readonly #stepSeconds: Histogram<'step' | 'outcome'>;
  readonly #routed: Counter;
  readonly #routeFailures: Counter<'kind'>;
  readonly #written: Counter;
  readonly #skipped: Counter;
  readonly #delivered: Counter<'mode'>;
  readonly #webhookRetries: Counter;
  readonly #webhookDeadLetters: Counter;
  readonly #http: Histogram<'method' | 'route' | 'status'>;
  readonly #natsConnected: Gauge;
  readonly #logSize: Gauge;
  readonly #streamMessages: Gauge<'stream'>;
  readonly #checkpointAge: Gauge;
  readonly #checkpointTreeSize: Gauge;
  readonly #routerLag: Gauge;
  readonly #checkpointLagEntries: Gauge;
  readonly #pauses: PauseRecorder | undefined;
  readonly #slowRequests: Counter;
  readonly #slowRequestSeconds: Counter<'part'>;
  readonly #checkpointLagSeconds: Gauge;
  readonly #leader: Gauge<'role'>;
  readonly #scrapeErrors: Counter<'source'>;
  readonly #checkpointerHalted: Gauge;
  readonly #threadCpu: Counter<'thread'>;
  readonly #threadAccount = new ThreadCpuAccount(process.pid);
  #sources: MetricsSources | undefined;
  readonly #timeoutMs: number;

  /** `pauses`: record GC pauses, event-loop stalls and NATS waits to attribute slow notice posts (default on). */
  constructor(opts: { scrapeTimeoutMs?: number; defaultMetrics?: boolean; pauses?: boolean } = {}) {
    this.#timeoutMs = opts.scrapeTimeoutMs ?? 2000;
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#pauses = opts.pauses === false ? undefined : new PauseRecorder();
    this.#slowRequests = new Counter({
      name: 'liaison_slow_notice_posts_total',
      help: `POST /v1/notices that took over ${SLOW_SECONDS * 1000} ms in the gateway.`,
      registers,
    });
    this.#slowRequestSeconds = new Counter({
      name: 'liaison_slow_notice_post_seconds_total',
      help: 'Of those posts: their time in all (part="window"), and how much of it this process spent in GC pauses, event-loop stalls (GC included) and NATS store round trips (each the union over the window).',
      labelNames: ['part'],
      registers,
    });

    this.#noticesAccepted = new Counter({
      name: 'liaison_notices_accepted_total',
      help: 'Notices accepted (202), by whether the post was a retry of an accepted notice.',
      labelNames: ['duplicate'],
      registers,
    });
    this.#noticesRefused = new Counter({
      name: 'liaison_notices_refused_total',
      help: 'Posts to /v1/notices refused, by problem code.',
      labelNames: ['code'],
      registers,
    });
    this.#stepSeconds = new Histogram({
      name: 'liaison_ingest_step_duration_seconds',
      help: 'Time spent in each ingest pipeline step (open = decrypt and verify), by outcome.',
      labelNames: ['step', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#routed = new Counter({
      name: 'liaison_router_notices_routed_total',
      help: 'Notices routed (fanned out to DELIVERIES) by this gateway.',
      registers,
    });
    this.#routeFailures = new Counter({
      name: 'liaison_router_failures_total',
      help: 'Routing attempts that failed: retry (will be retried) or unroutable (terminated).',
      labelNames: ['kind'],
      registers,
    });
    this.#written = new Counter({
      name: 'liaison_deliveries_written_total',
      help: 'Encrypted deliveries written to DELIVERIES by the router (one per recipient agency).',
      registers,
    });
    this.#skipped = new Counter({
      name: 'liaison_deliveries_skipped_total',
      help: 'Recipients left out at routing (no usable key, not a member any more, ...).',
      registers,
    });
    this.#delivered = new Counter({
      name: 'liaison_deliveries_total',
      help: 'Deliveries handed to agencies, by mode (pull: GET /v1/inbox, sse: /v1/inbox/stream, webhook).',
      labelNames: ['mode'],
      registers,
    });
    this.#webhookRetries = new Counter({
      name: 'liaison_webhook_retries_total',
      help: 'Webhook delivery attempts retried.',
      registers,
    });
    this.#webhookDeadLetters = new Counter({
      name: 'liaison_webhook_dead_letters_total',
      help: 'Webhook deliveries given up and dead-lettered.',
      registers,
    });
    this.#http = new Histogram({
      name: 'liaison_http_request_duration_seconds',
      help: 'HTTP requests by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#natsConnected = new Gauge({
      name: 'liaison_nats_connected',
      help: '1 while the gateway is connected to NATS, else 0.',
      registers,
    });
    this.#logSize = new Gauge({
      name: 'liaison_log_size',
      help: 'Entries in the signed log (LOG stream last sequence).',
      registers,
    });
    this.#streamMessages = new Gauge({
      name: 'liaison_stream_messages',
      help: 'Messages held per JetStream stream.',
      labelNames: ['stream'],
      registers,
    });
    this.#checkpointAge = new Gauge({
      name: 'liaison_checkpoint_age_seconds',
      help: 'Seconds since the newest checkpoint was published to CHECKPOINTS.',
      registers,
    });
    this.#checkpointTreeSize = new Gauge({
      name: 'liaison_checkpoint_tree_size',
      help: 'Tree size of the newest checkpoint known to this gateway (as leader) or -1.',
      registers,
    });
    this.#checkpointLagEntries = new Gauge({
      name: 'liaison_checkpoint_lag_entries',
      help: 'Log entries no signed checkpoint covers yet (LOG size minus the newest checkpoint size).',
      registers,
    });
    this.#checkpointLagSeconds = new Gauge({
      name: 'liaison_checkpoint_lag_oldest_seconds',
      help: 'Seconds since LOG stored the oldest entry no signed checkpoint covers yet; 0 when none, -1 when unreadable.',
      registers,
    });
    this.#routerLag = new Gauge({
      name: 'liaison_router_lag_notices',
      help: 'Notices stored but not yet routed (pending and unacked on the router consumer).',
      registers,
    });
    this.#leader = new Gauge({
      name: 'liaison_leader',
      help: '1 while this gateway holds the lease of the role (router, checkpointer).',
      labelNames: ['role'],
      registers,
    });
    this.#threadCpu = new Counter({
      name: 'liaison_thread_cpu_seconds_total',
      help: 'CPU time of the gateway process by thread (Linux): main (HTTP event loop, ingest), background (router, checkpointer), sealing (delivery encryption), other (GC and compiler helpers, libuv pool with WebCrypto).',
      labelNames: ['thread'],
      registers,
    });
    this.#scrapeErrors = new Counter({
      name: 'liaison_metrics_source_errors_total',
      help: 'Scrape-time reads that failed or timed out, by source.',
      labelNames: ['source'],
      registers,
    });
    // Read from this thread's integrity ledger at scrape time (the background thread's findings are forwarded into it).
    new Counter({
      name: 'liaison_integrity_findings_total',
      help: 'Malformed or foreign messages found (and skipped or quarantined) in a bucket or stream the gateway reads, by source (registry, broker-keys, notices, deliveries, ...). See /readyz for where.',
      labelNames: ['source'],
      registers,
      collect() {
        const totals = integrity.totals();
        this.reset();
        for (const source of FINDING_SOURCES) this.labels(source).inc(totals.get(source) ?? 0);
      },
    });
    this.#checkpointerHalted = new Gauge({
      name: 'liaison_checkpointer_halted',
      help: '1 while the checkpointer has halted on a bad log entry (see /readyz), else 0.',
      registers,
    });

    // Known label values start at 0, so that rates and alerts work from the first scrape.
    for (const code of Object.keys(problemCodes) as ProblemCode[]) this.#noticesRefused.labels(code).inc(0);
    this.#noticesAccepted.labels('false').inc(0);
    this.#noticesAccepted.labels('true').inc(0);
    for (const mode of ['pull', 'sse', 'webhook'] as const) this.#delivered.labels(mode).inc(0);
    for (const kind of ['retry', 'unroutable']) this.#routeFailures.labels(kind).inc(0);
    for (const role of THREAD_ROLES) this.#threadCpu.labels(role).inc(0);
    for (const part of ['window', ...PAUSE_KINDS]) this.#slowRequestSeconds.labels(part).inc(0);
  }

  attach(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** A post to /v1/notices ended: accepted (duplicate or not) or refused with a code. */
  notice(outcome: { accepted: true; duplicate: boolean } | { accepted: false; code: ProblemCode }): void {
    if (outcome.accepted) this.#noticesAccepted.labels(String(outcome.duplicate)).inc();
    else this.#noticesRefused.labels(outcome.code).inc();
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.#http.labels(method, route, String(status)).observe(seconds);
    if (method === 'POST' && route === '/v1/notices' && seconds > SLOW_SECONDS) this.#attributeSlow(seconds);
  }

  /** Where the window of a slow notice post, just answered, went. */
  #attributeSlow(seconds: number, end = Date.now()): void {
    this.#slowRequests.inc();
    this.#slowRequestSeconds.labels('window').inc(seconds);
    if (!this.#pauses) return;
    const parts = this.#pauses.overlap(end - seconds * 1000, end);
    for (const kind of PAUSE_KINDS) this.#slowRequestSeconds.labels(kind).inc(parts[kind] / 1000);
  }

  readonly pipeline: PipelineObserver = {
    step: (step, seconds, ok) => {
      this.#stepSeconds.labels(step, ok ? 'ok' : 'refused').observe(seconds);
      if (step === 'store') this.#pauses?.natsWait(seconds);
    },
  };

  /** Stop the pause recorder's observer and timer. */
  close(): void {
    this.#pauses?.close();
  }

  readonly router: RouterObserver = {
    routed: (written, skipped) => {
      this.#routed.inc();
      this.#written.inc(written);
      this.#skipped.inc(skipped);
    },
    failed: (kind) => this.#routeFailures.labels(kind).inc(),
  };

  readonly deliveries: DeliveryObserver = {
    delivered: (mode, count) => this.#delivered.labels(mode).inc(count),
    webhookRetry: () => this.#webhookRetries.inc(),
    webhookDeadLetter: () => this.#webhookDeadLetters.inc(),
  };

  readonly sse: SseObserver = { sent: (n) => this.#delivered.labels('sse').inc(n) };

  /** Read the scrape-time gauges from NATS and the leased roles; every read bounded, failures counted, never thrown. */
  async refresh(): Promise<void> {
    this.#readThreads();
    const s = this.#sources;
    if (!s) return;
    const connected = s.bus.isConnected();
    this.#natsConnected.set(connected ? 1 : 0);
    if (s.router !== undefined) this.#leader.labels('router').set(s.router?.leading ? 1 : 0);
    if (s.checkpointer !== undefined) {
      this.#leader.labels('checkpointer').set(s.checkpointer?.status.leader ? 1 : 0);
      this.#checkpointTreeSize.set(s.checkpointer?.status.leader ? s.checkpointer.status.checkpointSize : -1);
      this.#checkpointerHalted.set(s.checkpointer?.status.halted ? 1 : 0);
    }
    if (!connected) return;
    const read = async (source: string, fn: () => Promise<void>) => {
      try {
        await withTimeout(fn(), this.#timeoutMs);
      } catch {
        this.#scrapeErrors.labels(source).inc();
      }
    };
    await Promise.all([
      ...Object.values(STREAMS).map((name) =>
        read(`stream:${name}`, async () => {
          const info = await s.bus.streamInfo(name);
          if (!info) return; // a stream this deployment does not use (yet)
          this.#streamMessages.labels(name).set(info.messages);
          if (name === STREAMS.log) this.#logSize.set(info.lastSeq);
          if (name === STREAMS.checkpoints) {
            const last = Date.parse(info.lastTime);
            this.#checkpointAge.set(
              info.messages > 0 && Number.isFinite(last) ? Math.max(0, (Date.now() - last) / 1000) : -1,
            );
          }
        }),
      ),
      read('checkpoint-lag', async () => {
        if (!s.checkpointLag) return;
        const lag = await s.checkpointLag();
        this.#checkpointLagEntries.set(lag.entries);
        this.#checkpointLagSeconds.set(lag.oldestSeconds);
      }),
      read('router-consumer', async () => {
        const c = await s.bus.consumerInfo(STREAMS.notices, s.routerConsumer ?? 'router');
        if (c) return void this.#routerLag.set(c.pending + c.ackPending);
        // No router consumer yet: nothing has been routed, everything stored is waiting.
        const notices = await s.bus.streamInfo(STREAMS.notices);
        if (!notices) throw new Error(`no ${STREAMS.notices} stream`);
        this.#routerLag.set(notices.messages);
      }),
    ]);
  }

  /** Per-thread CPU since the last scrape (a local /proc read, never NATS). */
  #readThreads(): void {
    const added = this.#threadAccount.observe(readThreadCpu(), this.#sources?.threads?.() ?? {});
    for (const role of THREAD_ROLES) if (added[role] > 0) this.#threadCpu.labels(role).inc(added[role]);
  }

  /** The exposition text, after a refresh. */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
