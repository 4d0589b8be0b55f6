#!/usr/bin/env node
// The `liaison` command (npx liaison ...). The TypeScript sources are compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const cli = new URL('../dist/broker/cli/liaison.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('liaison: not built yet; run `npm run build` first\n');
  process.exit(1);
}
// A reader that stops early (`liaison ... | head`) closes the pipe: end quietly, as other command-line tools do, not with a stack trace.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
// Files the CLI writes (audit archives, credentials, keys) are for the owner alone: broker/core/data-dir.ts.
const { PRIVATE_UMASK } = await import(new URL('../dist/broker/core/data-dir.js', import.meta.url).href);
process.umask(PRIVATE_UMASK);
const { run } = await import(cli.href);
process.exitCode = await run(process.argv.slice(2));
