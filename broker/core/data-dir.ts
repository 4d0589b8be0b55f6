import { chmodSync, mkdirSync, statSync } from 'node:fs';

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
