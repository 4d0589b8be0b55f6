import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { JWK } from 'jose';
import { brokerEncryptionKey, sealNotice, type SealOptions } from '../../broker/agency-client/seal.js';
import { loadConfig, type Config } from '../../broker/config/config.js';
import { createLogger } from '../../broker/core/logger.js';
import type { AgencyCredentials } from '../../broker/agency-client/credentials.js';
import { credentialsPath, ensureDemoNetwork, readCredentials } from '../../broker/demo/demo-network.js';
import { createGateway, type Gateway } from '../../broker/gateway.js';
import { repoRoot } from '../../broker/core/paths.js';

export interface TestGateway {
  gw: Gateway;
  config: Config;
  dataDir: string;
  /** Every log line the gateway wrote, raw. */
  logLines: string[];
  jwks: { keys: JWK[]; broker: string };
  creds(agency: string): AgencyCredentials;
  /** Sign with the agency's key and encrypt to the broker. */
  seal(
    notice: unknown,
    agency: string,
    opts?: Partial<SealOptions> & { raw?: Uint8Array },
  ): Promise<{ jwe: string; jws: string }>;
  post(
    body: string,
    contentType?: string,
  ): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, any> }>;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

export async function startTestGateway(
  t: Tap,
  natsUrl: string,
  overrides: Record<string, unknown> = {},
  opts: { now?: () => Date; dataDir?: string } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'liaison-data-'));
  await ensureDemoNetwork(dataDir);
  // Webhook receivers in tests listen on loopback, which a gateway refuses by default (webhook-address-policy.test.ts).
  const config = loadConfig(
    {},
    {
      dataDir,
      natsUrl,
      logLevel: 'info',
      publishTimeoutMs: 2000,
      retryAfterSeconds: 2,
      webhookAllowPrivateNetworks: true,
      ...overrides,
    },
  );
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger('info', sink);
  const gw = await createGateway({ config, logger, natsUrl, ...(opts.now ? { now: opts.now } : {}) });
  t.teardown(async () => {
    await gw.close();
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  const jwks = gw.keyring.jwks();
  const creds = (agency: string) => readCredentials(credentialsPath(dataDir, agency));
  return {
    gw,
    config,
    dataDir,
    logLines,
    jwks,
    creds,
    async seal(notice, agency, o = {}) {
      const bytes = o.raw ?? new TextEncoder().encode(JSON.stringify(notice));
      return sealNotice(bytes, { signingKey: creds(agency).signing, brokerKey: brokerEncryptionKey(jwks), ...o });
    },
    async post(body, contentType = 'application/jose') {
      const res = await gw.app.inject({
        method: 'POST',
        url: '/v1/notices',
        headers: { 'content-type': contentType },
        payload: body,
      });
      let json: Record<string, any>;
      try {
        json = res.json();
      } catch {
        json = { raw: res.body };
      }
      return { status: res.statusCode, headers: res.headers, json };
    },
  };
}

/** A sample notice from docs/examples/notices, made fresh (new id, created_at now) and sent as `from`. */
export function sampleNotice(type: string, patch: Record<string, unknown> = {}): Record<string, any> {
  const base = JSON.parse(
    readFileSync(join(repoRoot, 'docs', 'examples', 'notices', `${type}.json`), 'utf8'),
  ) as Record<string, any>;
  return { ...base, id: randomUUID(), created_at: new Date().toISOString(), ...patch };
}
