import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { verifyClientAssertion, type AuthenticatedAgency, type ReplayGuard } from '../auth/client-assertion.js';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import type { Role, RegistrySnapshot } from '../registry/model.js';
import { assertClientCertAgency } from './tls.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** A preHandler that authenticates the request's client assertion and requires the role (or one of the roles). */
    requireRole(role: Role | readonly Role[]): preHandlerAsyncHookHandler;
  }
  interface FastifyRequest {
    agency: AuthenticatedAgency | null;
  }
}

export interface AuthOptions {
  brokerId: string;
  registry: () => RegistrySnapshot;
  resolveSigner: (kid: string) => Promise<ResolvedSigner>;
  replay: ReplayGuard;
}

/** Authentication of reads: `Authorization: Bearer <client assertion>`. */
export const authPlugin = fp<AuthOptions>(async (app: FastifyInstance, opts) => {
  app.decorateRequest('agency', null);
  app.decorate('requireRole', (role: Role | readonly Role[]): preHandlerAsyncHookHandler => {
    const roles: readonly Role[] = typeof role === 'string' ? [role] : role;
    return async function (request: FastifyRequest) {
      const header = request.headers.authorization;
      const m = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_.-]{1,8192})$/.exec(header) : null;
      if (!m)
        throw new LiaisonError('unauthorized', { publicDetail: 'send Authorization: Bearer <client assertion JWT>' });
      const agency = await verifyClientAssertion(m[1] as string, {
        brokerId: opts.brokerId,
        registry: opts.registry(),
        resolveSigner: opts.resolveSigner,
        replay: opts.replay,
      });
      assertClientCertAgency(request, agency.agencyId);
      request.agency = agency;
      request.trace.agency = agency.agencyId;
      if (!roles.some((r) => agency.roles.includes(r)))
        throw new LiaisonError('forbidden', { publicDetail: `this needs the ${roles.join(' or ')} role` });
    };
  });
});
