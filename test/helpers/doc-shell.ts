/**
 * Documented shell commands, run as written. A guide marks a block with
 * `<!-- run: NAME -->` on the line before its ```sh fence; `shellBlocks` reads
 * them, and `docShell` runs one with bash in a directory laid out like a clone
 * of the repository with the demo running (`docs`, `node_modules`, and `data`
 * the test gateway's data dir).
 *
 * `npx liaison …` in a block runs the liaison CLI of this very process (the
 * sources as they are, no build needed, and covered), through a small client
 * on PATH that forwards its arguments, working directory and LIAISON_*
 * variables over a unix socket. Everything else (curl, sed, node) is the real
 * program.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../broker/cli/liaison.js';
import { repoRoot } from '../../broker/core/paths.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

/** The marked shell blocks of a Markdown file, by name, in order. */
export function shellBlocks(markdownFile: string): Map<string, string> {
  const text = readFileSync(markdownFile, 'utf8');
  const blocks = new Map<string, string>();
  for (const m of text.matchAll(/<!-- run: ([a-z0-9-]+) -->\n```sh\n([\s\S]*?)```/g))
    blocks.set(m[1] as string, m[2] as string);
  return blocks;
}

export interface ShellResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface DocShell {
  /** The clone-like working directory the blocks run in. */
  dir: string;
  /** Run a script with bash -euo pipefail in `dir`, with `env` added. */
  sh(script: string, env?: Record<string, string>, timeoutMs?: number): Promise<ShellResult>;
}

export async function docShell(t: Tap, dataDir: string, url: string): Promise<DocShell> {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-doc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(join(repoRoot, 'docs'), join(dir, 'docs'));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(dataDir, join(dir, 'data'));
  const bin = join(dir, '.bin');
  mkdirSync(bin);
  const npx = join(bin, 'npx');
  const client = join(repoRoot, 'test', 'helpers', 'doc-shell-client.mjs');
  writeFileSync(
    npx,
    `#!/bin/sh\n[ "$1" = liaison ] || { echo "npx $1: only npx liaison runs in this test" >&2; exit 127; }\nshift\nexec '${process.execPath}' '${client}' "$@"\n`,
  );
  chmodSync(npx, 0o755);

  // One command at a time: it runs in the block's directory with the block's LIAISON_* variables.
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      queue = queue
        .then(async () => {
          const { args, cwd, env } = JSON.parse(text) as { args: string[]; cwd: string; env: Record<string, string> };
          const out = { code: 1, stdout: '', stderr: '' };
          const saved = {
            cwd: process.cwd(),
            env: Object.fromEntries(
              Object.keys(process.env)
                .filter((k) => k.startsWith('LIAISON_'))
                .map((k) => [k, process.env[k]]),
            ),
          };
          for (const k of Object.keys(saved.env)) delete process.env[k];
          Object.assign(process.env, env);
          process.chdir(cwd);
          try {
            out.code = await run(args, { out: (s) => void (out.stdout += s), err: (s) => void (out.stderr += s) });
          } finally {
            process.chdir(saved.cwd);
            for (const k of Object.keys(env)) delete process.env[k];
            Object.assign(process.env, saved.env);
          }
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(out));
        })
        .catch((e: unknown) => {
          res.statusCode = 500;
          res.end(JSON.stringify({ code: 1, stdout: '', stderr: `test bridge: ${String(e)}\n` }));
        });
    });
  });
  const socket = join(dir, '.cli.sock');
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const sh = (script: string, env: Record<string, string> = {}, timeoutMs = 60_000) =>
    new Promise<ShellResult>((resolve) => {
      const childEnv: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        LIAISON_URL: url,
        LIAISON_TEST_CLI_SOCKET: socket,
        ...env,
      };
      delete childEnv.LIAISON_DATA_DIR; // the blocks use the default, ./data
      execFile(
        'bash',
        ['-euo', 'pipefail', '-c', script],
        { cwd: dir, env: childEnv, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' },
        (err, stdout, stderr) =>
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      );
    });
  return { dir, sh };
}
