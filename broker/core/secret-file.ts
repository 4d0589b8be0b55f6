import { readFileSync, statSync } from 'node:fs';

/**
 * A secret kept in a file (a password, a token, NATS credentials), read when
 * asked. `oneLine`: the secret is the file's one line (a trailing newline is
 * dropped). Errors name `what` (the setting) and the file, never the content.
 */
export function readSecretFile(file: string, what: string, opts: { oneLine: boolean }): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = opts.oneLine ? text.replace(/\r?\n$/, '') : text;
  if (value === '' || (opts.oneLine && /[\r\n]/.test(value)))
    throw new Error(`${what}: ${file} must hold the secret on one line`);
  return value;
}

/** Whether others than the file's owner may read it (worth a warning for a secret). */
export function readableByOthers(file: string): boolean {
  const st = statSync(file, { throwIfNoEntry: false });
  return st !== undefined && (st.mode & 0o077) !== 0;
}
