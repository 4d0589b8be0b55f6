/**
 * Where the slow notice posts' time went, from the gateway's own account
 * (liaison_slow_notice_post_seconds_total, broker/metrics/pauses.ts): read
 * before and after a level, the difference is that level's. For the posts
 * over 25 ms in the gateway: how many ms of their windows (summed) were GC
 * pauses, event-loop stalls (GC included) and NATS store round trips, each
 * as a share of the windows. Attributed by time overlap, so the parts can
 * add up to more or less than 100 %.
 */
import { PAUSE_KINDS, type PauseKind } from '../broker/metrics/pauses.js';
import { scrapeMetricsText } from './levels.js';
import { round } from './stats.js';

export interface SlowAttribution {
  posts: number;
  windowMs: number;
  /** Ms of the windows in each part. */
  ms: Record<PauseKind, number>;
  /** Each part as a share of the windows (0..1). */
  share: Record<PauseKind, number>;
}

type Reading = { posts: number; window: number } & Record<PauseKind, number>;

const value = (text: string, line: string): number => {
  const m = new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

/** The gateway's counters now; undefined when it has none (the pass-through) or /metrics could not be read. */
export async function readSlowCounters(url: string): Promise<Reading | undefined> {
  try {
    const text = await scrapeMetricsText(url);
    const part = (p: string) => value(text, `liaison_slow_notice_post_seconds_total{part="${p}"}`);
    const r = { posts: value(text, 'liaison_slow_notice_posts_total'), window: part('window') } as Reading;
    for (const k of PAUSE_KINDS) r[k] = part(k);
    return Object.values(r).every(Number.isFinite) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: a level's attribution between two readings. */
export function slowAttribution(a: Reading, b: Reading): SlowAttribution {
  const windowMs = (b.window - a.window) * 1000;
  const ms = {} as Record<PauseKind, number>;
  const share = {} as Record<PauseKind, number>;
  for (const k of PAUSE_KINDS) {
    ms[k] = round((b[k] - a[k]) * 1000, 1);
    share[k] = windowMs > 0 ? round((b[k] - a[k]) / (b.window - a.window), 3) : 0;
  }
  return { posts: b.posts - a.posts, windowMs: round(windowMs, 1), ms, share };
}

export const fmtSlowAttribution = (s: SlowAttribution | undefined): string =>
  s
    ? `    in the gateway: ${s.posts} posts over 25 ms, ${s.windowMs} ms in all; of that GC ${pct(s.share.gc)}, event-loop stalls ${pct(s.share.event_loop)} (GC included), NATS store round trips ${pct(s.share.nats)}`
    : '    in the gateway: no slow-post account (its /metrics could not be read)';

const pct = (x: number) => `${round(x * 100, 1)} %`;
