/**
 * `liaison assertion --as AGENCY`: print a client assertion for one read of
 * the API (curl -H "authorization: Bearer $(liaison assertion --as AGENCY)"),
 * made as the CLI's own requests make theirs (broker/agency-client/assertion.ts).
 */
import { parseArgs } from 'node:util';
import { makeClientAssertion } from '../agency-client/assertion.js';
import { clientTlsOptions } from '../agency-client/http.js';
import { MAX_ASSERTION_LIFETIME } from '../auth/client-assertion.js';
import { isSlug } from '../core/ids.js';
import { credentialsFor } from '../demo/demo-network.js';
import { gatewayOf } from './notice.js';
import { UsageError } from '../core/usage-error.js';
import type { Io } from './liaison.js';

export async function assertion(args: string[], io: Io): Promise<number | void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      as: { type: 'string' },
      credentials: { type: 'string' },
      'data-dir': { type: 'string' },
      url: { type: 'string' },
      broker: { type: 'string' },
      lifetime: { type: 'string', default: '120' },
      ...clientTlsOptions,
    },
  });
  if (positionals.length > 0) throw new UsageError(`takes no argument (got "${positionals[0]}")`);
  const lifetime = /^\d{1,4}$/.test(values.lifetime) ? Number(values.lifetime) : NaN;
  if (!(lifetime >= 1 && lifetime <= MAX_ASSERTION_LIFETIME))
    throw new UsageError(`--lifetime must be 1 to ${MAX_ASSERTION_LIFETIME} seconds`);
  if (values.broker !== undefined && !isSlug(values.broker))
    throw new UsageError('--broker must be the broker id, as GET /v1/keys names it');
  const creds = credentialsFor(values);
  // The audience is the broker id: given, or asked of the gateway (GET /v1/keys).
  const broker = values.broker ?? (await gatewayOf(values)).jwks.broker;
  io.out(`${await makeClientAssertion(creds.agency, creds.signing, broker, lifetime)}\n`);
}
