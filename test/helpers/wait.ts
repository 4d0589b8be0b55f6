export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bounded wait: poll fn every 50 ms until it returns a value other than undefined, or fail naming `what` after `ms`. */
export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
