import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import { CodedError, LiaisonError } from '../core/errors.js';
import { integrity, kvWhere } from '../core/integrity.js';
import type { Logger } from 'pino';
import { watchAcrossReconnects } from '../core/reconnect-watch.js';
import type { KvBucket, StorePort } from '../core/store-port.js';
import { brokerKeyFilePath, writeSecretJson, type BrokerKeyFile, type BrokerKeyring } from './broker-keys.js';
import { OPENPGP_KEY_FILE } from './openpgp-keys.js';

/**
 * The broker keyring shared by every gateway instance of a network: the NATS KV
 * bucket `broker-keys`, key `keyring`, holds the keyring file as a compact JWE
 * (`dir`, A256GCM) under the key-encryption key (KEK), a 32-byte secret every
 * instance is given as a file. NATS therefore never holds a private key in
 * clear, and a rotation made through any instance reaches all of them through
 * the KV watch, within moments.
 *
 * Changes are compare-and-set on the KV revision, so two concurrent rotations
 * cannot lose one another. Each instance also writes the keyring it runs with
 * to its own dataDir/broker/keys.json (0600): the offline audit tools read it,
 * and it seeds the bucket on a network's first start.
 */
export const BROKER_KEYS_BUCKET = 'broker-keys';
const KEYRING_KEY = 'keyring';
const CTY = 'liaison-keyring+json';

export class KekMismatchError extends CodedError<'kek-mismatch'> {
  constructor(expected: string, got: string | undefined) {
    super(
      'kek-mismatch',
      `the broker keyring in NATS (KV ${BROKER_KEYS_BUCKET}) is sealed under key-encryption key ${got ?? '(unnamed)'}, this instance holds ${expected}: give every gateway of the network the same KEK file (LIAISON_KEK_FILE)`,
    );
  }
}

export interface Kek {
  /** First 16 hex digits of SHA-256 of the key: names it in the JWE header and in errors, reveals nothing. */
  id: string;
  key: Uint8Array;
}

/** Read the KEK file (base64url of 32 bytes); when `create` and it does not exist, make one (0600, exclusive create). */
export function loadOrCreateKek(path: string, create: boolean): Kek {
  if (!existsSync(path)) {
    if (!create) throw new Error(`LIAISON_KEK_FILE: ${path} does not exist`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.length !== 32) throw new Error(`${path}: the key-encryption key must be 32 bytes, base64url`);
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key: new Uint8Array(key) };
}

export const defaultKekPath = (dataDir: string) => join(dataDir, 'broker', 'kek');

async function seal(kek: Kek, file: BrokerKeyFile): Promise<Uint8Array> {
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(file)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: kek.id, cty: CTY })
    .encrypt(kek.key);
  return new TextEncoder().encode(jwe);
}

async function unseal(kek: Kek, value: Uint8Array): Promise<BrokerKeyFile> {
  const jwe = new TextDecoder().decode(value);
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(jwe).kid;
  } catch {
    throw new Error(`KV ${BROKER_KEYS_BUCKET}: the keyring is not a JWE`);
  }
  if (kid !== kek.id) throw new KekMismatchError(kek.id, kid);
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, kek.key, {
    keyManagementAlgorithms: ['dir'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  if (protectedHeader.cty !== CTY) throw new Error(`KV ${BROKER_KEYS_BUCKET}: unexpected content type`);
  return JSON.parse(new TextDecoder().decode(plaintext)) as BrokerKeyFile;
}

export interface KeyringStoreOptions {
  bus: StorePort;
  keyring: BrokerKeyring;
  kek: Kek;
  dataDir: string;
  logger: Logger;
  replicas?: number;
  /** Write each revision taken up to the data dir (default). Off for a second reader in the same process (the background thread), so that one writer keeps the files. */
  persist?: boolean;
}

export class KeyringStore {
  #revision = 0;
  #stop: (() => void) | undefined;
  /** Serialises local applies, so a slow import cannot overtake a newer revision. */
  #applying: Promise<void> = Promise.resolve();

  private constructor(
    private readonly o: KeyringStoreOptions,
    private readonly kv: KvBucket,
  ) {}

  /**
   * Open the bucket and converge: the first instance of a network puts its
   * keyring in; every later one takes up the keyring found there.
   */
  static async open(o: KeyringStoreOptions): Promise<KeyringStore> {
    const kv = await o.bus.bucket(BROKER_KEYS_BUCKET, { history: 16, replicas: o.replicas ?? 1 });
    const store = new KeyringStore(o, kv);
    let entry = await kv.get(KEYRING_KEY);
    if (entry && entry.operation !== 'PUT')
      store.#finding(entry.revision, `${entry.operation === 'DEL' ? 'delete' : 'purge'} marker`);
    if (!entry || entry.operation !== 'PUT') {
      // Not created: another instance put its keyring in first, and that one is taken up.
      if ((await kv.create(KEYRING_KEY, await seal(o.kek, o.keyring.file))) !== undefined)
        o.logger.info({ event: 'broker-keyring-published' }, 'broker keyring put in NATS KV');
      entry = await kv.get(KEYRING_KEY);
    }
    if (!entry) throw new Error(`KV ${BROKER_KEYS_BUCKET}: no keyring`);
    const found = entry;
    try {
      await store.#apply(found.revision, () => unseal(o.kek, found.value));
    } catch (e) {
      // Another KEK is a configuration error: start-up stops. Anything else is junk under the key: this instance keeps
      // the keyring it has (its data dir holds the last one taken up) and says so; a rotation writes over the junk.
      if (e instanceof KekMismatchError) throw e;
      store.#finding(found.revision, 'not a keyring sealed under the key-encryption key');
    }
    return store;
  }

  #finding(revision: number, reason: string): void {
    integrity.report(this.o.logger, 'broker-keys', kvWhere(BROKER_KEYS_BUCKET, KEYRING_KEY, revision), reason);
  }

  /** Take up revision `revision` (its file from `load`, run only when it is newer than the one in use). */
  async #apply(revision: number, load: () => Promise<BrokerKeyFile>): Promise<void> {
    const run = this.#applying.then(async () => {
      if (revision <= this.#revision) return;
      const file = await load();
      await this.o.keyring.replace(file);
      this.#revision = revision;
      if (this.o.persist !== false) {
        writeSecretJson(brokerKeyFilePath(this.o.dataDir), file);
        if (file.openpgp)
          writeSecretJson(join(this.o.dataDir, ...OPENPGP_KEY_FILE), { version: 1, keys: file.openpgp });
      }
      this.o.logger.info(
        { event: 'broker-keyring-loaded', revision, signing_kid: this.o.keyring.signing.kid },
        'broker keyring taken up',
      );
    });
    this.#applying = run.catch(() => undefined);
    return run;
  }

  /** Follow changes made by other instances (the watch replays the current keyring, taken up only if newer). */
  async watch(): Promise<void> {
    this.#stop = await watchAcrossReconnects(
      this.o.bus,
      async () => {
        const iter = await this.kv.watch({ key: KEYRING_KEY });
        void (async () => {
          for await (const e of iter) {
            if (e.operation !== 'PUT') {
              // Nothing deletes the keyring: a marker is junk, and the keys in use stay.
              this.#finding(e.revision, `${e.operation === 'DEL' ? 'delete' : 'purge'} marker`);
              continue;
            }
            // A keyring this instance cannot open is not taken up: it keeps the keys it has, and says so.
            await this.#apply(e.revision, () => unseal(this.o.kek, e.value)).catch((err: Error) => {
              if (err instanceof KekMismatchError)
                this.o.logger.error(
                  { event: 'broker-keyring-invalid', revision: e.revision, err: err.message },
                  'broker keyring update not taken up',
                );
              else this.#finding(e.revision, 'not a keyring sealed under the key-encryption key');
            });
          }
        })().catch((err: unknown) =>
          this.o.logger.error(
            { event: 'broker-keyring-watch-ended', err: { message: (err as Error)?.message } },
            'broker keyring watch ended by an error; the keys in use stay until the next reconnect',
          ),
        );
        return () => iter.stop();
      },
      (e) =>
        this.o.logger.warn(
          { event: 'broker-keyring-rewatch-failed', err: { message: e.message } },
          'broker keyring watch could not be restarted after a reconnect; the running one continues',
        ),
    );
  }

  /**
   * Change the keyring: `change` gets the current file and returns the next one
   * (and anything it wants to hand back); the put is compare-and-set on the
   * revision, retried on a concurrent change. Applied locally before returning.
   */
  async update<T>(
    change: (file: BrokerKeyFile) => Promise<{ file: BrokerKeyFile; result: T }>,
  ): Promise<{ result: T; revision: number }> {
    for (let attempt = 0; ; attempt++) {
      const entry = await this.kv.get(KEYRING_KEY);
      if (!entry) throw new Error(`KV ${BROKER_KEYS_BUCKET}: no keyring`);
      // Junk under the key (a marker, or what does not open): the change starts from the keyring in use and writes over it.
      let current: BrokerKeyFile;
      try {
        if (entry.operation !== 'PUT') throw new Error('marker');
        current = await unseal(this.o.kek, entry.value);
      } catch (e) {
        if (e instanceof KekMismatchError) throw e;
        this.#finding(
          entry.revision,
          entry.operation === 'PUT'
            ? 'not a keyring sealed under the key-encryption key'
            : `${entry.operation === 'DEL' ? 'delete' : 'purge'} marker`,
        );
        current = this.o.keyring.file;
      }
      const { file, result } = await change(current);
      const revision = await this.kv.update(KEYRING_KEY, await seal(this.o.kek, file), entry.revision);
      if (revision !== undefined) {
        await this.#apply(revision, async () => file);
        return { result, revision };
      }
      if (attempt >= 4)
        throw new LiaisonError('unavailable', {
          detail: `${BROKER_KEYS_BUCKET} ${KEYRING_KEY}: too many concurrent changes`,
        });
    }
  }

  close(): void {
    this.#stop?.();
  }
}
