/**
 * The crypto ceiling: the pipeline's own functions for steps 1-6 and 8 in
 * process (parse, decrypt, verify, strict parse, freshness, validate, policy,
 * commitment hash, receipt signature), without HTTP or NATS. What the gateway
 * could do if HTTP and JetStream cost nothing.
 *
 * With `fanOut`, each notice is then also sealed to its recipients as the
 * router seals it (plan, then one JWE per recipient through the given sealer:
 * the router's sealing worker): the crypto the full gateway does per notice,
 * fan-out included, which the ceiling above leaves out.
 */
import { joseEnvelope } from '../adapters/jose/index.js';
import type { EnvelopeAdapter, EnvelopeContext } from '../broker/core/envelope.js';
import { decodeNotice } from '../broker/ingest/decode-notice.js';
import { checkFreshness } from '../broker/ingest/freshness.js';
import { evaluatePolicy } from '../broker/ingest/policy.js';
import { signReceipt } from '../broker/ingest/notice-receipt.js';
import { createSignerResolver } from '../broker/keys/jwk-signers.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { validateNotice } from '../broker/ingest/validate.js';
import type { BrokerKeyring } from '../broker/keys/broker-keys.js';
import type { RegistrySnapshot } from '../broker/registry/model.js';
import type { NoticeLogEntry } from '../broker/log/entry.js';
import { planDeliveries } from '../broker/routing/plan.js';
import { envelopeFormat } from '../broker/formats/registry.js';
import { sealAll, type DeliverySealers } from '../broker/routing/seal.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import type { BenchEnvelope } from './notices.js';
import { round } from './stats.js';

export interface CeilingResult {
  concurrency: number;
  opened: number;
  seconds: number;
  perSecond: number;
  cpuPercent: number;
}

/** `adapter`: the envelope adapter that opens the bodies (JOSE by default; the gateway's OpenPGP adapter for OpenPGP messages). */
export async function measureCeiling(
  envelopes: readonly BenchEnvelope[],
  keyring: BrokerKeyring,
  registry: RegistrySnapshot,
  concurrency: number,
  durationMs: number,
  adapter: EnvelopeAdapter = joseEnvelope,
  fanOut?: DeliverySealers,
): Promise<CeilingResult> {
  const validator = createNoticeValidator();
  const resolveSigner = createSignerResolver(() => registry);
  const ctx: EnvelopeContext = { decryptionKey: (kid) => keyring.decryptionKey(kid)?.privateKey, resolveSigner };
  const limits = { maxBytes: 1 << 20, maxDepth: 32 };
  const rules = { clockSkewSeconds: 300, maxNoticeAgeSeconds: 3600 };
  const one = async (env: BenchEnvelope) => {
    const opened = await adapter.open(env.body, ctx);
    const notice = decodeNotice(opened.payload, limits);
    const at = new Date();
    checkFreshness(notice, at, rules);
    const header = validateNotice(notice, validator);
    const { recipients } = evaluatePolicy(header, opened.signer.agencyId, registry, at);
    const sha256 = sha256Hex(opened.signed);
    await signReceipt(keyring.signing, {
      iss: keyring.brokerId,
      notice_id: header.id,
      sha256,
      log_index: 0,
      received_at: at.toISOString(),
      recipients,
    });
    if (!fanOut) return;
    const entry: NoticeLogEntry = {
      v: 1,
      kind: 'notice',
      notice_id: header.id,
      sha256,
      format: envelopeFormat(opened.format).name,
      signer_kid: opened.signer.kid,
      origin: { country: header.origin.country, agency: header.origin.agency },
      operation: header.operation,
      type: header.type,
      tlp: header.tlp,
      received_at: at.toISOString(),
      recipients,
    };
    const plan = planDeliveries(entry, registry, at);
    const sealed = await sealAll(plan.deliveries, opened.signed, entry, { registry, at, sealers: fanOut });
    if (sealed.length !== plan.deliveries.length) throw new Error('fan-out sealed the wrong number of deliveries');
  };
  await one(envelopes[0]!); // warm up: key import, schema caches
  let next = 0;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await one(envelopes[next++ % envelopes.length]!);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    concurrency,
    opened: done,
    seconds: round(seconds, 3),
    perSecond: round(done / seconds),
    cpuPercent: round((100 * (cpu.user + cpu.system)) / 1e6 / seconds),
  };
}
