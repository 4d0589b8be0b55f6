import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';

/**
 * The umask of every Liaison process that writes under the data dir: files
 * 0600 and directories 0700, whoever creates them. It is inherited by the
 * nats-server child, whose JetStream store (notices as received) would
 * otherwise be 0640 files in 0750 directories.
 */
export const PRIVATE_UMASK = 0o077;

/**
 * Make `dir` (the data dir: broker keys, the demo agencies' private keys, NATS
 * credentials and store, the registry seed) reachable by its owner alone:
 * created 0700, or an existing one with group or other bits narrowed to 0700.
 * Returns the mode it had when it was narrowed, so the caller can say so.
 */
export function securePrivateDir(dir: string): { narrowedFrom: number | null } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return { narrowedFrom: null };
  chmodSync(dir, mode & 0o700);
  return { narrowedFrom: mode };
}

/** Write a file for its owner alone (0600), an existing file narrowed too (writeFileSync keeps an existing file's mode). */
export function write0600(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** A directory for its owner alone (0700), an existing one narrowed too (mkdirSync keeps an existing directory's mode). */
export function mkdir0700(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}
