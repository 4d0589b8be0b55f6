export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bounded wait: poll fn every 50 ms until it returns a value other than undefined, or fail naming `what` after `ms`. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Settles within ms: 'ok' when the promise resolves, the error message when it rejects, 'timeout' otherwise. */
export async function outcome(p: Promise<unknown>, ms = 3000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([
      p.then(
        () => 'ok',
        (e: Error) => e.message || String(e),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
