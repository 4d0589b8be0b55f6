import { request, Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Pki } from '../../certs/pki.js';

export interface TlsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, any>;
}

export interface ClientIdentity {
  cert: Buffer;
  key: Buffer;
}

/** An agency's client certificate and key from a PKI directory. */
export const identity = (pki: Pki, agency: string): ClientIdentity => ({
  cert: readFileSync(pki.paths.agencyCert(agency)),
  key: readFileSync(pki.paths.agencyKey(agency)),
});

/**
 * One HTTPS request over a fresh connection (no session reuse between cases),
 * to a loopback gateway, trusting `ca`. Resolves with the answer, or rejects
 * with the socket/TLS error when the gateway refuses the connection. Bounded by `timeoutMs`.
 */
export function httpsCall(
  baseUrl: string,
  opts: {
    ca: Buffer;
    id?: ClientIdentity;
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: Agent;
    timeoutMs?: number;
  },
): Promise<TlsAnswer> {
  const url = new URL(opts.path, baseUrl);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error('loopback only');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        ca: opts.ca,
        ...(opts.id ? { cert: opts.id.cert, key: opts.id.key } : {}),
        headers: {
          ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}),
          ...opts.headers,
        },
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, any>;
          try {
            json = JSON.parse(text);
          } catch {
            json = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}
