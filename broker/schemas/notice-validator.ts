/**
 * Notice and registry validation against the JSON Schemas in schemas/.
 *
 * Layout read at construction (once; validation itself does no I/O):
 *   schemas/notice/header/<version>.schema.json   the common header ($id urn:liaison:schema:notice:header:<version>)
 *   schemas/notice/<type>/<version>.schema.json   one body schema per type and version
 *                                                 ($id urn:liaison:schema:notice:<type>:<version>)
 *   schemas/registry.schema.json                  the member registry seed ($id urn:liaison:schema:registry:1)
 *
 * A notice is checked in two steps: the header (header 1.0, which also fixes the
 * list of known types), then, if the header is valid, the body against the schema
 * for `${type}@${schema_version}`; body paths are reported under /body.
 *
 * The ajv instance is strict and never changes the data: no type coercion, no
 * defaults, no removal of unknown properties. Reported errors are JSON Pointers
 * and fixed messages from the schema side; they never carry a value from the
 * notice (callers may show them to the sender, see `schema-invalid`).
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export interface SchemaViolation {
  /** JSON Pointer (RFC 6901) to the failing value, e.g. "/body/items/0/quantity/unit"; "" is the whole document. */
  path: string;
  /** What is wrong, from the schema side; never contains the data value. */
  message: string;
}

export type ValidationResult = { ok: true } | { ok: false; errors: SchemaViolation[] };

export interface NoticeValidator {
  /** Header first; if the header is valid, the body for `${type}@${schema_version}`. Sync, no I/O, never mutates. */
  validate(notice: unknown): ValidationResult;
  /** Every body schema found, sorted by type then version. */
  readonly types: ReadonlyArray<{ type: string; version: string }>;
}

/** At most this many violations are reported per document. */
export const MAX_REPORTED_ERRORS = 20;

/** The header version every notice is checked against. */
export const HEADER_VERSION = '1.0';

const NOTICE_ID_PREFIX = 'urn:liaison:schema:notice:';
const REGISTRY_ID = 'urn:liaison:schema:registry:1';
const SCHEMA_FILE = /^([0-9]+\.[0-9]+)\.schema\.json$/;
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
/** Unknown member names are echoed in paths only when they look like names (no control characters, at most 64). */
const PRINTABLE_NAME = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]{1,64}$/u;
const OK: ValidationResult = Object.freeze({ ok: true });

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** <repo>/schemas: walk up from this module (broker/schemas/ or dist/broker/schemas/) to the first dir holding schemas/notice. */
export function defaultSchemaDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, 'schemas');
    if (isDirectory(join(candidate, 'notice'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no schemas/notice directory found above ${from}`);
    dir = parent;
  }
}

/** The one ajv setup for every Liaison schema: strict, never changes the data. */
export function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({
    strict: true,
    allErrors: true,
    coerceTypes: false,
    useDefaults: false,
    removeAdditional: false,
    // Messages are kept (they are schema-side text); verbose would attach the data to errors.
    verbose: false,
  });
  addFormats.default(ajv);
  return ajv;
}

export function readSchema(file: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${file}: a schema must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** ajv errors → violations: paths point at the offending property, `if` wrappers are dropped, duplicates merged, capped. */
export function toViolations(errors: readonly ErrorObject[], prefix: string, out: SchemaViolation[]): void {
  const seen = new Set<string>();
  for (const e of errors) {
    if (out.length >= MAX_REPORTED_ERRORS) return;
    let path = prefix + e.instancePath;
    // ajv always sets a message (messages: true is the default); it names the rule, never the value.
    let message = e.message as string;
    switch (e.keyword) {
      case 'if':
        // 'must match "then" schema' only repeats the errors of the branch.
        continue;
      case 'required':
        path += `/${escapePointer(String(e.params['missingProperty']))}`;
        message = 'is required';
        break;
      case 'additionalProperties': {
        // The name comes from the sender: name it only if it is short and printable.
        const name = String(e.params['additionalProperty']);
        if (PRINTABLE_NAME.test(name)) {
          path += `/${escapePointer(name)}`;
          message = 'is not allowed here';
        } else {
          message = 'has a member that is not allowed here';
        }
        break;
      }
      case 'false schema':
        message = 'is not allowed here';
        break;
    }
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
}

function fail(errors: SchemaViolation[]): ValidationResult {
  return { ok: false, errors: errors.slice(0, MAX_REPORTED_ERRORS) };
}

function compiled(ajv: Ajv2020, id: string): ValidateFunction {
  const fn = ajv.getSchema(id);
  /* c8 ignore next -- every id passed here was added just before */
  if (fn === undefined) throw new Error(`schema ${id} is not loaded`);
  return fn;
}

export function createNoticeValidator(schemaDir: string = defaultSchemaDir()): NoticeValidator {
  const noticeDir = join(schemaDir, 'notice');
  const ajv = newAjv();
  const found: { type: string; version: string }[] = [];
  let headerSchema: Record<string, unknown> | undefined;

  for (const name of readdirSync(noticeDir).sort()) {
    const dir = join(noticeDir, name);
    if (!isDirectory(dir)) continue;
    if (!SLUG.test(name)) throw new Error(`${dir}: a notice type directory must be a lower-case slug`);
    for (const file of readdirSync(dir).sort()) {
      if (!file.endsWith('.json')) continue;
      const match = SCHEMA_FILE.exec(file);
      if (!match) throw new Error(`${join(dir, file)}: expected <major>.<minor>.schema.json`);
      const version = match[1] as string;
      const schema = readSchema(join(dir, file));
      const expectedId = `${NOTICE_ID_PREFIX}${name}:${version}`;
      if (schema['$id'] !== expectedId) {
        throw new Error(`${join(dir, file)}: $id must be ${expectedId}`);
      }
      ajv.addSchema(schema);
      if (name === 'header') {
        if (version === HEADER_VERSION) headerSchema = schema;
      } else {
        found.push({ type: name, version });
      }
    }
  }
  if (headerSchema === undefined) {
    throw new Error(`${noticeDir}: header/${HEADER_VERSION}.schema.json is missing`);
  }

  // The header's `type` enum and the directory layout must agree, or some notices could never be valid.
  const typeEnum = dig(headerSchema, ['properties', 'type', 'enum']);
  if (!Array.isArray(typeEnum)) throw new Error('header schema: properties.type.enum is missing');
  const foundTypes = new Set<unknown>(found.map((f) => f.type));
  for (const type of typeEnum as unknown[]) {
    if (!foundTypes.has(type)) {
      throw new Error(`header schema lists type ${String(type)} but schemas/notice has no body schema for it`);
    }
  }
  for (const type of foundTypes) {
    if (!typeEnum.includes(type)) throw new Error(`schemas/notice/${String(type)} is not listed in the header's type enum`);
  }

  // Compile everything now: strict-mode mistakes in a schema fail at start-up, not on the first notice.
  const header = compiled(ajv, `${NOTICE_ID_PREFIX}header:${HEADER_VERSION}`);
  const bodies = new Map<string, ValidateFunction>();
  for (const { type, version } of found) {
    bodies.set(`${type}@${version}`, compiled(ajv, `${NOTICE_ID_PREFIX}${type}:${version}`));
  }
  const types = Object.freeze(
    found
      .sort((a, b) => Number(a.type > b.type) - Number(a.type < b.type) || compareVersions(a.version, b.version))
      .map((f) => Object.freeze({ ...f })),
  );

  function validate(notice: unknown): ValidationResult {
    const errors: SchemaViolation[] = [];
    if (!header(notice)) {
      toViolations(header.errors as ErrorObject[], '', errors);
      return fail(errors);
    }
    // The header schema guarantees these shapes from here on.
    const n = notice as {
      id: string;
      type: string;
      schema_version: string;
      created_at: string;
      expires_at?: string;
      references?: string[];
      body: unknown;
    };
    const body = bodies.get(`${n.type}@${n.schema_version}`);
    if (body === undefined) {
      return fail([{ path: '/schema_version', message: 'is not a supported version of this notice type' }]);
    }
    if (!body(n.body)) toViolations(body.errors as ErrorObject[], '/body', errors);

    // Cross-field rules that JSON Schema cannot say.
    if (n.expires_at !== undefined && Date.parse(n.expires_at) <= Date.parse(n.created_at)) {
      errors.push({ path: '/expires_at', message: 'must be later than created_at' });
    }
    const self = n.references?.indexOf(n.id) ?? -1;
    if (self >= 0) errors.push({ path: `/references/${self}`, message: 'must not be the id of the notice itself' });

    return errors.length === 0 ? OK : fail(errors);
  }

  return { validate, types };
}

/** Versions are <major>.<minor> (checked by the file name pattern). */
function compareVersions(a: string, b: string): number {
  const [aMajor, aMinor] = a.split('.').map(Number) as [number, number];
  const [bMajor, bMinor] = b.split('.').map(Number) as [number, number];
  return aMajor - bMajor || aMinor - bMinor;
}

function dig(value: unknown, keys: readonly string[]): unknown {
  for (const key of keys) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

interface RegistryKeyShape {
  kid: string;
  use: string;
  jwk: { kid?: string; use?: string };
  not_before?: string;
  not_after?: string;
}
interface RegistryShape {
  agencies: { id: string; keys: RegistryKeyShape[]; openpgp_keys?: { kid: string; not_before?: string; not_after?: string }[] }[];
  operations: { id: string; members: string[]; start?: string; end?: string }[];
}

/**
 * Validates a registry seed, or a single record wrapped as one
 * ({ agencies: [record], operations: [] }): the schema, then the rules JSON
 * Schema cannot say (unique agency, operation and key ids; a JWK's own kid/use
 * agree with the key record; validity windows in order). It does not require
 * operation members to be listed agencies, so that single records can be
 * checked alone; for a whole seed file, also run checkRegistryReferences.
 */
export function createRegistryValidator(schemaDir: string = defaultSchemaDir()): (seed: unknown) => ValidationResult {
  const file = join(schemaDir, 'registry.schema.json');
  const schema = readSchema(file);
  if (schema['$id'] !== REGISTRY_ID) throw new Error(`${file}: $id must be ${REGISTRY_ID}`);
  const ajv = newAjv();
  ajv.addSchema(schema);
  const check = compiled(ajv, REGISTRY_ID);

  return (seed: unknown): ValidationResult => {
    const errors: SchemaViolation[] = [];
    if (!check(seed)) {
      toViolations(check.errors as ErrorObject[], '', errors);
      return fail(errors);
    }
    const reg = seed as RegistryShape;
    const agencyIds = new Set<string>();
    const kids = new Set<string>();
    reg.agencies.forEach((agency, i) => {
      if (agencyIds.has(agency.id)) errors.push({ path: `/agencies/${i}/id`, message: 'duplicate agency id' });
      agencyIds.add(agency.id);
      agency.keys.forEach((key, j) => {
        const at = `/agencies/${i}/keys/${j}`;
        if (kids.has(key.kid)) errors.push({ path: `${at}/kid`, message: 'duplicate key id (kid must be unique in the registry)' });
        kids.add(key.kid);
        if (key.jwk.kid !== undefined && key.jwk.kid !== key.kid) {
          errors.push({ path: `${at}/jwk/kid`, message: 'must equal the kid of the key record' });
        }
        if (key.jwk.use !== undefined && key.jwk.use !== key.use) {
          errors.push({ path: `${at}/jwk/use`, message: 'must equal the use of the key record' });
        }
        if (key.not_before !== undefined && key.not_after !== undefined && Date.parse(key.not_after) <= Date.parse(key.not_before)) {
          errors.push({ path: `${at}/not_after`, message: 'must be later than not_before' });
        }
      });
      // OpenPGP certificates: the fingerprint is the kid, unique across JWKs and certificates alike.
      (agency.openpgp_keys ?? []).forEach((key, j) => {
        const at = `/agencies/${i}/openpgp_keys/${j}`;
        if (kids.has(key.kid)) errors.push({ path: `${at}/kid`, message: 'duplicate key id (kid must be unique in the registry)' });
        kids.add(key.kid);
        if (key.not_before !== undefined && key.not_after !== undefined && Date.parse(key.not_after) <= Date.parse(key.not_before)) {
          errors.push({ path: `${at}/not_after`, message: 'must be later than not_before' });
        }
      });
    });
    const operationIds = new Set<string>();
    reg.operations.forEach((op, i) => {
      if (operationIds.has(op.id)) errors.push({ path: `/operations/${i}/id`, message: 'duplicate operation id' });
      operationIds.add(op.id);
      // ISO dates compare correctly as strings.
      if (op.start !== undefined && op.end !== undefined && op.end < op.start) {
        errors.push({ path: `/operations/${i}/end`, message: 'must not be before start' });
      }
    });
    return errors.length === 0 ? OK : fail(errors);
  };
}

/**
 * For a whole seed that createRegistryValidator accepted: every operation
 * member is one of the seed's agencies.
 */
export function checkRegistryReferences(seed: {
  agencies: ReadonlyArray<{ id: string }>;
  operations: ReadonlyArray<{ members: ReadonlyArray<string> }>;
}): ValidationResult {
  const agencyIds = new Set(seed.agencies.map((a) => a.id));
  const errors: SchemaViolation[] = [];
  seed.operations.forEach((op, i) => {
    op.members.forEach((member, k) => {
      if (!agencyIds.has(member)) errors.push({ path: `/operations/${i}/members/${k}`, message: 'is not a registered agency' });
    });
  });
  return errors.length === 0 ? OK : fail(errors);
}
