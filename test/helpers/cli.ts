import { run } from '../../broker/cli/liaison.js';

/** Run the `liaison` command in process, as the tests drive it: its exit code and what it wrote to stdout and stderr. */
export async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = { stdout: '', stderr: '' };
  const code = await run(args, { out: (s) => void (io.stdout += s), err: (s) => void (io.stderr += s) });
  return { code, ...io };
}
