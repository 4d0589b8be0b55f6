import type { StorePort } from './store-port.js';

/**
 * Keep a KV watch current across connection losses: `start` opens one (and
 * returns its stop); it runs now, and again each time the connection comes
 * back, replacing the previous watch. The client's own watch resumes only
 * when its idle heartbeat notices the gap (about 12 s after a server
 * restart), and a change made meanwhile (a key revoked) would reach this
 * instance that late. Restarts run one at a time; one that fails is reported
 * to `onRestartError` and the running watch continues. Returns the stop.
 */
export async function watchAcrossReconnects(
  bus: Pick<StorePort, 'onReconnect'>,
  start: () => Promise<() => void>,
  onRestartError: (e: Error) => void,
): Promise<() => void> {
  let stopCurrent: (() => void) | undefined;
  let closed = false;
  const run = async () => {
    const stop = await start();
    if (closed) return stop();
    stopCurrent?.();
    stopCurrent = stop;
  };
  await run();
  let restarts = Promise.resolve();
  const unsubscribe = bus.onReconnect(() => {
    restarts = restarts.then(run).catch((e: unknown) => onRestartError(e as Error));
  });
  return () => {
    closed = true;
    unsubscribe();
    stopCurrent?.();
  };
}
