/**
 * Server-Sent Events framing and back-pressure (WHATWG HTML §9.2). Pure over a
 * writable sink: the caller gives the source of events and the socket.
 */
/**
 * A sink may carry an observer under this key (set by whoever owns the sink,
 * e.g. the metrics plugin on the HTTP response): told how many events went out.
 */
export const SSE_OBSERVER: unique symbol = Symbol.for('liaison.sse.observer');

export interface SseObserver {
  sent(events: number): void;
}

export interface SseSink {
  [SSE_OBSERVER]?: SseObserver;
  write(chunk: string): boolean;
  readonly writableNeedDrain: boolean;
  on(event: 'drain', fn: () => void): unknown;
  off(event: 'drain', fn: () => void): unknown;
}

export interface SseEvent {
  id: number;
  event: string;
  data: unknown;
}

/** One event; data is JSON on one line, so no field can smuggle a newline into the framing. */
export const sseFrame = (e: SseEvent) => `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

function drained(sink: SseSink, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sink.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    sink.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Write events from `source` to `sink` until the source ends or `signal`
 * aborts. After a write the sink refuses (its buffer is over its high-water
 * mark), nothing more is taken from the source until 'drain': a slow reader
 * never makes the writer buffer more than one event past the mark, and the
 * source (a pull consumer) is not asked for more meanwhile.
 * Returns the number of events written.
 */
export async function pumpSse(source: AsyncIterable<SseEvent>, sink: SseSink, signal: AbortSignal): Promise<number> {
  let sent = 0;
  for await (const e of source) {
    if (signal.aborted) break;
    const ok = sink.write(sseFrame(e));
    sent++;
    sink[SSE_OBSERVER]?.sent(1);
    if (!ok) await drained(sink, signal);
    if (signal.aborted) break;
  }
  return sent;
}

/** Heartbeat comment lines every `ms`, skipped while the sink is behind. Returns a stop function. */
export function sseHeartbeat(sink: SseSink, ms: number, signal: AbortSignal): () => void {
  const timer = setInterval(() => {
    if (!sink.writableNeedDrain && !signal.aborted) sink.write(': heartbeat\n\n');
  }, ms);
  timer.unref?.();
  return () => clearInterval(timer);
}
