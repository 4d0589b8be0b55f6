import type { ChildProcess } from 'node:child_process';

/** Child processes a benchmark started; any still running when it exits are killed by PID. */
export const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
});

/** Stop a child by PID: SIGTERM, then SIGKILL after `ms`; wait for its exit. */
export async function stopChild(c: ChildProcess, ms = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || !c.pid) return void children.delete(c);
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  process.kill(c.pid, 'SIGTERM');
  const timer = setTimeout(
    () => c.pid && c.exitCode === null && c.signalCode === null && process.kill(c.pid, 'SIGKILL'),
    ms,
  );
  await exited;
  clearTimeout(timer);
  children.delete(c);
}

export const out = (s = '') => void process.stdout.write(s + '\n');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
