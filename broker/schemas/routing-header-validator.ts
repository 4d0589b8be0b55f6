/**
 * The end-to-end routing header (schemas/e2e/routing-header.schema.json,
 * docs/end-to-end.md), checked with the same strict ajv as notices: the header
 * schema it refers to is loaded beside it, and the type and version must be
 * ones schemas/notice has a body schema for (recipients validate the body
 * against it).
 */
import { join } from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import {
  createNoticeValidator,
  defaultSchemaDir,
  HEADER_VERSION,
  newAjv,
  readSchema,
  toViolations,
  type SchemaViolation,
  type ValidationResult,
} from './notice-validator.js';

export const ROUTING_HEADER_ID = 'urn:liaison:schema:e2e:routing-header:1.0';

/** The routing header fields, after validation. */
export interface RoutingHeader {
  id: string;
  operation: string;
  origin: { country: string; agency: string };
  addressees: string[];
  tlp: 'CLEAR' | 'GREEN' | 'AMBER' | 'AMBER+STRICT' | 'RED';
  type: string;
  schema_version: string;
  created_at: string;
  expires_at?: string;
  handling_code?: string;
  /** Withdrawals only (and required there): the id of the notice superseded; the rest of the withdrawal stays sealed. */
  supersedes?: string;
  body_sha256: string;
}

/** The fields a routing header shares with its notice: each must be equal in both (recipients check). */
export const ROUTING_HEADER_NOTICE_FIELDS = [
  'id',
  'operation',
  'origin',
  'addressees',
  'tlp',
  'type',
  'schema_version',
  'created_at',
  'expires_at',
  'handling_code',
] as const;

export type RoutingHeaderValidator = (header: unknown) => ValidationResult;

export function createRoutingHeaderValidator(schemaDir: string = defaultSchemaDir()): RoutingHeaderValidator {
  const ajv = newAjv();
  ajv.addSchema(readSchema(join(schemaDir, 'notice', 'header', `${HEADER_VERSION}.schema.json`)));
  const file = join(schemaDir, 'e2e', 'routing-header.schema.json');
  const schema = readSchema(file);
  if (schema['$id'] !== ROUTING_HEADER_ID) throw new Error(`${file}: $id must be ${ROUTING_HEADER_ID}`);
  ajv.addSchema(schema);
  const check = ajv.getSchema(ROUTING_HEADER_ID)!;
  const versions = new Set(createNoticeValidator(schemaDir).types.map((t) => `${t.type}@${t.version}`));
  return (header) => {
    const errors: SchemaViolation[] = [];
    if (!check(header)) {
      toViolations(check.errors as ErrorObject[], '', errors);
      return { ok: false, errors };
    }
    const h = header as RoutingHeader;
    if (!versions.has(`${h.type}@${h.schema_version}`))
      errors.push({ path: '/schema_version', message: 'is not a supported version of this notice type' });
    if (h.expires_at !== undefined && Date.parse(h.expires_at) <= Date.parse(h.created_at))
      errors.push({ path: '/expires_at', message: 'must be later than created_at' });
    return errors.length === 0 ? { ok: true } : { ok: false, errors };
  };
}
