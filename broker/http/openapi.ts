/**
 * The OpenAPI 3.1 document of the REST API, generated (dynamic mode of
 * @fastify/swagger) from the very route schemas Fastify validates and
 * serialises with, so the document cannot drift from what the gateway does.
 * Served as JSON at /docs/json and as an interactive page (Swagger UI) at /docs.
 *
 * Register it before the routes: @fastify/swagger collects routes through an
 * onRoute hook. What the route schemas cannot say is added here once for all
 * operations: the problem responses (RFC 9457), the bearer client-assertion
 * security scheme, and the description of request bodies that have one per
 * media type.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { problemCodes } from '../core/errors.js';
import { repoRoot } from '../core/paths.js';

export const DOCS_PREFIX = '/docs';
export const CLIENT_ASSERTION_SCHEME = 'clientAssertion';

/** `security` of a route read with a client assertion (RFC 7523 style JWT, aud = the broker id). */
export const bearerClientAssertion = [{ [CLIENT_ASSERTION_SCHEME]: [] as string[] }];
/** `security` of a public route (no authentication; notices carry their own signature). */
export const noAuth: { [k: string]: string[] }[] = [];

/** RFC 9457 problem details as the gateway writes them (broker/http/problem.ts). */
export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'instance'],
  properties: {
    type: { type: 'string', description: 'urn:liaison:problem:<code>' },
    title: { type: 'string', description: 'A fixed sentence per code.' },
    status: { type: 'integer' },
    code: {
      type: 'string',
      enum: Object.keys(problemCodes),
      description: 'Stable problem code; see docs/problems.md.',
    },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'urn:liaison:request:<request id> (also sent as x-request-id).' },
    errors: {
      type: 'array',
      description: 'schema-invalid only: the failing JSON paths (never values).',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

interface OperationObject {
  requestBody?: { description?: string };
  responses?: Record<string, unknown>;
}

function packageVersion(): string {
  try {
    return (
      (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0'
    );
  } catch {
    return '0.0.0';
  }
}

export const openapiPlugin = fp<{ brokerId: string }>(async (app: FastifyInstance, opts) => {
  // Route body descriptions given next to per-media-type `content` (swagger keeps only the content).
  const bodyDescriptions = new Map<string, string>();
  app.addHook('onRoute', (route) => {
    const body = (route.schema as { body?: { description?: unknown; content?: unknown } } | undefined)?.body;
    if (body && typeof body.description === 'string' && body.content) {
      for (const m of [route.method].flat()) bodyDescriptions.set(`${m.toLowerCase()} ${route.url}`, body.description);
    }
  });

  await app.register(swagger, {
    mode: 'dynamic',
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Liaison broker API',
        version: packageVersion(),
        summary: 'Secure intelligence exchange between law-enforcement and customs agencies.',
        description:
          'Member agencies post signed, encrypted notices (a compact JWE to the broker key around a compact JWS by the agency key) ' +
          'and get a broker-signed receipt; they read the deliveries addressed to them; auditors replay and verify the signed log. ' +
          `Reads authenticate with a short-lived client assertion (a JWT signed by the agency key, aud = "${opts.brokerId}", unique jti) ` +
          'sent as `Authorization: Bearer`. Every refusal is an RFC 9457 application/problem+json with a stable `code`.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      tags: [
        { name: 'notices', description: 'Posting notices and proving their inclusion in the log.' },
        { name: 'inbox', description: 'The deliveries addressed to the authenticated agency.' },
        { name: 'log', description: 'The signed, append-only log (auditors).' },
        { name: 'keys', description: "The broker's public keys and the member key directory." },
        { name: 'operations', description: 'Health and readiness for operators and load balancers.' },
        {
          name: 'admin',
          description:
            'Key lifecycle for operators (role operator): rotations and revocations, each a signed registry event in the log.',
        },
      ],
      components: {
        securitySchemes: {
          [CLIENT_ASSERTION_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: `A client assertion: JWT signed by an active signing key of the agency (kid in the header), iss = sub = the agency id, aud = "${opts.brokerId}", exp at most a few minutes ahead, unique jti.`,
          },
        },
      },
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
      const doc = documentObject.openapiObject as {
        components?: { schemas?: Record<string, unknown> };
        paths?: unknown;
      };
      doc.components ??= {};
      doc.components.schemas = { ...(doc.components.schemas ?? {}), Problem: problemSchema };
      const problem = (description: string) => ({
        description,
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      });
      for (const [url, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, OperationObject>>)) {
        for (const [method, op] of Object.entries(item)) {
          op.responses ??= {};
          op.responses['4XX'] ??= problem('Refused: a client error, as an RFC 9457 problem with a stable code.');
          op.responses['5XX'] ??= problem(
            'The broker cannot answer now (unavailable: retry after Retry-After) or failed (internal).',
          );
          const fastifyUrl = url.replace(/\{([^}]+)\}/g, ':$1');
          const d = bodyDescriptions.get(`${method} ${fastifyUrl}`);
          if (d && op.requestBody) op.requestBody.description = d;
        }
      }
      return doc as typeof documentObject.openapiObject;
    },
  });

  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: false },
    staticCSP: true,
    logLevel: 'warn',
  });
});
