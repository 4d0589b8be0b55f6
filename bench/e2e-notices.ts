import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { JWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import {
  E2E_MEDIA_TYPE,
  fetchOperationDirectory,
  recipientKeys,
  sealEndToEnd,
  type OperationDirectory,
} from '../broker/agency-client/end-to-end.js';
import { credentialsPath, readCredentials } from '../broker/demo/demo-network.js';
import type { Operation } from '../broker/registry/model.js';
import { makeNotice, NOTICE_TYPES, SIZES, type BenchEnvelope } from './notices.js';
import { sleep } from './processes.js';

/**
 * The bench's own end-to-end operation, registered through the admin API on the benchmarked gateway before the e2e
 * levels (the demo network's `mekong-sealed` has 4 members, and tests rely on it). Its members are the five origins of
 * the JOSE mix (bench/notices.ts) and la-customs: every notice goes to the 5 other members, named one by one (TLP
 * AMBER+STRICT allows nothing else), so each is sealed for exactly 5 recipients, Ed25519/X25519 and ES256/P-256 mixed.
 */
export const E2E_OPERATION: Operation = {
  id: 'bench-e2e',
  name: 'Bench: end-to-end notices, five recipients each',
  status: 'active',
  members: ['vn-customs', 'th-customs', 'iq-police', 'kh-police-adp', 'fr-douane', 'la-customs'],
  categories: ['drugs'],
  end_to_end: true,
};
/** Recipients per e2e notice: every member but the origin. */
export const E2E_RECIPIENTS = E2E_OPERATION.members.length - 1;

/** Pure: a notice of the JOSE mix moved to the e2e operation, addressed to every other member by name. */
export function e2eNotice(type: string, size: (typeof SIZES)[number]): Record<string, unknown> {
  const n = makeNotice(type, size);
  const origin = (n.origin as { agency: string }).agency;
  if (!E2E_OPERATION.members.includes(origin))
    throw new Error(`${type}: origin ${origin} is not in ${E2E_OPERATION.id}`);
  return { ...n, operation: E2E_OPERATION.id, addressees: E2E_OPERATION.members.filter((m) => m !== origin) };
}

/**
 * Register E2E_OPERATION as the demo network's operator (hub-operator, role operator), then wait until the gateway
 * serves its member directory with every member receiving (registry changes reach each gateway through its KV watch).
 * Returns that directory, as an agency reads it before sealing.
 */
export async function registerE2eOperation(
  url: string,
  dataDir: string,
  brokerId: string,
): Promise<OperationDirectory> {
  const op = readCredentials(credentialsPath(dataDir, 'hub-operator'));
  const res = await fetch(`${url}/v1/admin/operations/${E2E_OPERATION.id}`, {
    method: 'PUT',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${await makeClientAssertion(op.agency, op.signing, brokerId)}`,
    },
    body: JSON.stringify({ id: randomUUID(), operation: E2E_OPERATION, reason: 'bench: end-to-end level' }),
  });
  if (!res.ok)
    throw new Error(`PUT /v1/admin/operations/${E2E_OPERATION.id} answered ${res.status}: ${await res.text()}`);
  const member = readCredentials(credentialsPath(dataDir, E2E_OPERATION.members[0]!));
  for (let i = 0; i < 100; i++) {
    const dir = await fetchOperationDirectory(url, fetch, member.agency, member.signing, brokerId, E2E_OPERATION.id);
    if (dir?.end_to_end && dir.members.filter((m) => m.receives).length === E2E_OPERATION.members.length) return dir;
    await sleep(100);
  }
  throw new Error(`the gateway does not serve ${E2E_OPERATION.id}'s member directory after 10 s`);
}

/**
 * Seal `count` end-to-end notices (the JOSE mix's types, origins and sizes) for their 5 recipients' keys in
 * `directory`: the origin's JWS, one A256GCM body with 5 ECDH-ES+A256KW entries, the signed routing header. The
 * client's cost, paid before the clock starts; `parallel` notices at a time (jose's WebCrypto runs on libuv's pool).
 */
export async function sealE2eEnvelopes(
  count: number,
  dataDir: string,
  directory: OperationDirectory,
  parallel = 16,
): Promise<BenchEnvelope[]> {
  const keys = new Map<string, JWK>();
  const signingKey = (agency: string) => {
    let k = keys.get(agency);
    if (!k) keys.set(agency, (k = readCredentials(credentialsPath(dataDir, agency)).signing));
    return k;
  };
  const out: BenchEnvelope[] = new Array<BenchEnvelope>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const type = NOTICE_TYPES[i % NOTICE_TYPES.length]!;
      const size = SIZES[Math.floor(i / NOTICE_TYPES.length) % SIZES.length]!;
      const notice = e2eNotice(type, size);
      const recipients = recipientKeys(notice, directory);
      if (recipients.length !== E2E_RECIPIENTS)
        throw new Error(`${type}: ${recipients.length} recipients, expected ${E2E_RECIPIENTS}`);
      const { envelope } = await sealEndToEnd(
        notice,
        signingKey((notice.origin as { agency: string }).agency),
        recipients,
      );
      out[i] = {
        id: notice.id as string,
        type,
        size,
        bytes: envelope.length,
        body: envelope,
        mediaType: E2E_MEDIA_TYPE,
      };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return out;
}

/** sealE2eEnvelopes split over `threads` worker threads (one per core by default): the same envelopes, sealed sooner. */
export async function sealE2eEnvelopesInWorkers(
  count: number,
  dataDir: string,
  directory: OperationDirectory,
  threads = cpus().length,
): Promise<BenchEnvelope[]> {
  const n = Math.max(1, Math.min(threads, Math.ceil(count / 50)));
  const shares = Array.from({ length: n }, (_, i) => Math.floor(count / n) + (i < count % n ? 1 : 0));
  const parts = await Promise.all(
    shares.map(
      (share) =>
        new Promise<BenchEnvelope[]>((resolve, reject) => {
          const w = new Worker(new URL('./e2e-seal-worker.js', import.meta.url), {
            workerData: { count: share, dataDir, directory },
          });
          w.once('message', (m: BenchEnvelope[]) => resolve(m));
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`e2e sealing worker exited with ${code}`)));
        }),
    ),
  );
  return parts.flat();
}
