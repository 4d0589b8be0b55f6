import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface GpgResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface Gpg {
  home: string;
  /** Run gpg in this home, non-interactive, with a bounded timeout; rejects when it fails unless `allowFail`. */
  run(
    args: string[],
    opts?: { input?: string | Uint8Array; allowFail?: boolean; timeoutMs?: number },
  ): Promise<GpgResult>;
  /** Generate a signing key with an encryption subkey; returns its primary fingerprint (upper-case hex). */
  genKey(uid: string, kind: 'ed25519' | 'rsa3072', opts?: { expire?: string }): Promise<string>;
  exportPublic(fpr: string): Promise<string>;
  importKey(armored: string): Promise<void>;
  /** Sign with each of `signers` and encrypt to `recipients` (fingerprints); ASCII-armored. */
  signEncrypt(data: string | Uint8Array, signers: string[], recipients: string[], extra?: string[]): Promise<string>;
}

/**
 * GnuPG (Debian's gpg 2.2) in a temporary GNUPGHOME, removed at teardown after
 * its gpg-agent is stopped (gpgconf --kill for that home only). gpg runs as a
 * child process without blocking the event loop (the gateway under test shares it).
 */
export function startGpg(t: Teardown): Gpg {
  // Short path: gpg-agent's socket path must stay under the UNIX socket length limit.
  const home = mkdtempSync(join(tmpdir(), 'lgpg-'));
  const env = { ...process.env, GNUPGHOME: home, LANG: 'C', LC_ALL: 'C' };
  t.teardown(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env, timeout: 10_000 });
    rmSync(home, { recursive: true, force: true });
  });
  const run: Gpg['run'] = (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(
        'gpg',
        ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', ...args],
        { env, timeout: opts.timeoutMs ?? 60_000 },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.stdin.on('error', () => undefined);
      child.on('error', reject);
      child.on('close', (status, signal) => {
        const result = { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
        if (!opts.allowFail && status !== 0)
          reject(new Error(`gpg ${args.join(' ')} failed (${status ?? signal}): ${result.stderr}`));
        else resolve(result);
      });
      child.stdin.end(opts.input ?? '');
    });
  return {
    home,
    run,
    async genKey(uid, kind, opts = {}) {
      const expire = opts.expire ?? '1y';
      await run(['--quick-gen-key', uid, kind, 'sign', expire], { timeoutMs: 120_000 });
      const list = (await run(['--with-colons', '--fingerprint', '--list-keys', `=${uid}`])).stdout.toString('utf8');
      const fpr = list
        .split('\n')
        .find((l) => l.startsWith('fpr:'))
        ?.split(':')[9];
      if (!fpr) throw new Error(`no fingerprint for ${uid}`);
      await run(['--quick-add-key', fpr, kind === 'ed25519' ? 'cv25519' : 'rsa3072', 'encr', expire], {
        timeoutMs: 120_000,
      });
      return fpr.toUpperCase();
    },
    async exportPublic(fpr) {
      return (await run(['--armor', '--export', fpr])).stdout.toString('utf8');
    },
    async importKey(armored) {
      await run(['--import'], { input: armored });
    },
    async signEncrypt(data, signers, recipients, extra = []) {
      const args = [
        '--armor',
        ...signers.flatMap((s) => ['--local-user', s]),
        ...recipients.flatMap((r) => ['--recipient', r]),
        ...extra,
        '--sign',
        '--encrypt',
      ];
      return (await run(args, { input: data })).stdout.toString('utf8');
    },
  };
}
