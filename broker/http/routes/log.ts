/**
 * The auditor API over the signed log (role `audit`), and a sender's proof
 * for its own notice (role `publish`).
 *
 *   GET /v1/log/checkpoint                          the newest signed checkpoint
 *   GET /v1/log/entries?start=&end=                 entries [start, end) as the exact hashed bytes
 *   GET /v1/log/proof/inclusion?index=&tree_size=   RFC 9162 2.1.3 (tree_size defaults to the checkpoint's)
 *   GET /v1/log/proof/consistency?first=&second=    RFC 9162 2.1.4
 *   GET /v1/notices/:id/proof                       inclusion of the sender's own notice, once checkpointed
 *
 * Proofs are served for trees up to the newest checkpoint only: every node
 * they need is in the tiles by then. Hashes are lowercase hex, entries
 * base64url. Query numbers are checked strictly (canonical decimals, safe
 * integers, ranges) and refused with a 400 problem.
 */

import { Buffer } from 'node:buffer';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

import { LiaisonError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import type { CheckpointStore, LatestCheckpoint } from '../../log/checkpoint-store.js';
import { decodeEntry } from '../../log/entry.js';
import { ENTRY_SIGNATURE_HEADER } from '../../log/entry-signature.js';
import { consistencyProofAsync, inclusionProofAsync, leafHash } from '../../log/merkle.js';
import type { TileStore } from '../../log/tiles.js';
import type { StorePort } from '../../core/store-port.js';
import { STREAMS } from '../../core/stream-names.js';

export interface LogRoutesOptions {
  bus: StorePort;
  checkpoints: CheckpointStore;
  tiles: TileStore;
  /** Most entries in one GET /v1/log/entries answer. */
  maxPage?: number;
}

export const DEFAULT_MAX_PAGE = 1000;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** A query number: canonical decimal (no sign, no leading zeros, at most 16 digits), a safe integer. */
function queryInt(q: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const v = q[name];
  if (v === undefined) {
    if (required) throw badQuery(`${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v.length === 0 || v.length > 16)
    throw badQuery(`${name} must be a non-negative integer`);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw badQuery(`${name} must be a non-negative integer`);
  }
  if (v.length > 1 && v.charCodeAt(0) === 0x30) throw badQuery(`${name} must be written without leading zeros`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw badQuery(`${name} is too large`);
  return n;
}

const badQuery = (publicDetail: string) => new LiaisonError('bad-request', { publicDetail });

const hexHash = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const proofSchema = { type: 'array', items: hexHash, maxItems: 128 } as const;
const intSchema = { type: 'integer', minimum: 0 } as const;
const numberQuery = { type: 'string', maxLength: 32 } as const;

const checkpointBody = {
  type: 'object',
  additionalProperties: false,
  required: ['origin', 'tree_size', 'root_hash', 'timestamp', 'note'],
  properties: {
    origin: { type: 'string' },
    tree_size: intSchema,
    root_hash: hexHash,
    timestamp: { type: 'string' },
    note: { type: 'string' },
  },
} as const;

function checkpointJson(cp: LatestCheckpoint) {
  const c = cp.verified.checkpoint;
  return {
    origin: c.origin,
    tree_size: c.treeSize,
    root_hash: hex(c.rootHash),
    timestamp: new Date(c.timestamp).toISOString(),
    note: cp.note,
  };
}

/** GET /v1/log/checkpoint */
export const getCheckpointSchema = {
  summary: 'The newest signed checkpoint',
  description: 'A C2SP signed note (origin, tree size, root hash, timestamp) by the broker signing key. Role audit.',
  tags: ['log'],
  security: [{ clientAssertion: [] }],
  response: { 200: checkpointBody },
} as const;

/** GET /v1/log/entries */
export const getLogEntriesSchema = {
  summary: 'Log entries',
  description:
    'Entries [start, end) as the exact bytes that were hashed (base64url), each with its gateway signature (`signature`: a JWS with detached payload, typ liaison-log-entry+jws, over those bytes; absent on entries written before entry signatures), at most one page; continue from `end`. `log_size`: the number of entries in LOG, which may be beyond the newest checkpoint (entries not yet folded, or refused). Role audit.',
  tags: ['log'],
  security: [{ clientAssertion: [] }],
  querystring: { type: 'object', additionalProperties: false, properties: { start: numberQuery, end: numberQuery } },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['start', 'end', 'entries'],
      properties: {
        start: intSchema,
        end: intSchema,
        log_size: intSchema,
        entries: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['index', 'entry'],
            properties: { index: intSchema, entry: { type: 'string' }, signature: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

/** GET /v1/log/proof/inclusion */
export const getInclusionProofSchema = {
  summary: 'Inclusion proof',
  description:
    'RFC 9162 section 2.1.3 proof for the entry at `index` in the tree of `tree_size` (default: the newest checkpoint). Role audit.',
  tags: ['log'],
  security: [{ clientAssertion: [] }],
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { index: numberQuery, tree_size: numberQuery },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['index', 'tree_size', 'proof'],
      properties: { index: intSchema, tree_size: intSchema, proof: proofSchema },
    },
  },
} as const;

/** GET /v1/log/proof/consistency */
export const getConsistencyProofSchema = {
  summary: 'Consistency proof',
  description:
    'RFC 9162 section 2.1.4 proof that the tree of size `first` is a prefix of the tree of size `second`. Role audit.',
  tags: ['log'],
  security: [{ clientAssertion: [] }],
  querystring: { type: 'object', additionalProperties: false, properties: { first: numberQuery, second: numberQuery } },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['first', 'second', 'proof'],
      properties: { first: intSchema, second: intSchema, proof: proofSchema },
    },
  },
} as const;

/** GET /v1/notices/:id/proof */
export const getNoticeProofSchema = {
  summary: 'Proof for one of my notices',
  description:
    "The log entry, leaf hash, inclusion proof and checkpoint of the sender's own notice, once a checkpoint covers it (404 before). Role publish.",
  tags: ['notices'],
  security: [{ clientAssertion: [] }],
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: { id: { type: 'string', maxLength: 64 } },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['notice_id', 'index', 'tree_size', 'entry', 'leaf_hash', 'proof', 'checkpoint'],
      properties: {
        notice_id: { type: 'string' },
        index: intSchema,
        tree_size: intSchema,
        entry: { type: 'string' },
        leaf_hash: hexHash,
        proof: proofSchema,
        checkpoint: checkpointBody,
      },
    },
  },
} as const;

export const logRoutes: FastifyPluginAsync<LogRoutesOptions> = async (app: FastifyInstance, opts) => {
  const maxPage = opts.maxPage ?? DEFAULT_MAX_PAGE;
  const reader = opts.tiles.reader();

  const latest = async (): Promise<LatestCheckpoint> => {
    const cp = await opts.checkpoints.latest();
    if (!cp) throw new LiaisonError('not-found', { publicDetail: 'no checkpoint has been published yet' });
    return cp;
  };

  const logSize = async (): Promise<number> => {
    const info = await opts.bus.streamInfo(STREAMS.log);
    if (!info) throw new LiaisonError('unavailable', { detail: `${STREAMS.log} info: no such stream` });
    return info.lastSeq;
  };

  const messageAt = async (index: number): Promise<{ data: Uint8Array; signature: string | undefined }> => {
    const m = await opts.bus.getMessage(STREAMS.log, index + 1);
    if (!m) throw new LiaisonError('log-state-invalid', { detail: `LOG#${index + 1} is missing` });
    return { data: m.data, signature: m.header?.get(ENTRY_SIGNATURE_HEADER) || undefined };
  };
  const entryAt = async (index: number): Promise<Uint8Array> => (await messageAt(index)).data;

  const audit = { preHandler: app.requireRole('audit') };

  app.get('/v1/log/checkpoint', { ...audit, schema: getCheckpointSchema }, async () => checkpointJson(await latest()));

  app.get('/v1/log/entries', { ...audit, schema: getLogEntriesSchema }, async (request) => {
    const q = request.query as Record<string, unknown>;
    const start = queryInt(q, 'start', true)!;
    const end = queryInt(q, 'end', true)!;
    if (end <= start) throw badQuery('end must be larger than start');
    const size = await logSize();
    if (end > size) throw badQuery(`end must not be beyond the log size (${size})`);
    // A shorter page than asked is normal: the client continues from the end it got.
    const stop = Math.min(end, start + maxPage);
    const entries: { index: number; entry: string; signature?: string }[] = [];
    for (let i = start; i < stop; i += 64) {
      const chunk = await Promise.all(Array.from({ length: Math.min(64, stop - i) }, (_, k) => messageAt(i + k)));
      chunk.forEach((m, k) =>
        entries.push({ index: i + k, entry: b64u(m.data), ...(m.signature ? { signature: m.signature } : {}) }),
      );
    }
    return { start, end: stop, log_size: size, entries };
  });

  app.get('/v1/log/proof/inclusion', { ...audit, schema: getInclusionProofSchema }, async (request) => {
    const q = request.query as Record<string, unknown>;
    const index = queryInt(q, 'index', true)!;
    const asked = queryInt(q, 'tree_size', false);
    const cpSize = (await latest()).verified.checkpoint.treeSize;
    const treeSize = asked ?? cpSize;
    if (treeSize > cpSize) throw badQuery(`tree_size must not be beyond the newest checkpoint (${cpSize})`);
    if (index >= treeSize) throw badQuery('index must be smaller than tree_size');
    const proof = await inclusionProofAsync(index, treeSize, reader);
    return { index, tree_size: treeSize, proof: proof.map(hex) };
  });

  app.get('/v1/log/proof/consistency', { ...audit, schema: getConsistencyProofSchema }, async (request) => {
    const q = request.query as Record<string, unknown>;
    const first = queryInt(q, 'first', true)!;
    const second = queryInt(q, 'second', true)!;
    if (first > second) throw badQuery('first must not be larger than second');
    const cpSize = (await latest()).verified.checkpoint.treeSize;
    if (second > cpSize) throw badQuery(`second must not be beyond the newest checkpoint (${cpSize})`);
    const proof = await consistencyProofAsync(first, second, reader);
    return { first, second, proof: proof.map(hex) };
  });

  app.get(
    '/v1/notices/:id/proof',
    { preHandler: app.requireRole('publish'), schema: getNoticeProofSchema },
    async (request) => {
      const id = (request.params as { id: string }).id;
      if (!isUuid(id)) throw badQuery('the notice id must be a lower-case UUID');
      request.trace.notice_id = id;
      // Not yet indexed, not yet under a checkpoint, or another agency's notice: all the same 404.
      const notFound = () =>
        new LiaisonError('not-found', { publicDetail: 'no notice of yours with this id is under a checkpoint yet' });
      const index = await opts.checkpoints.indexOf(id);
      if (index === undefined) throw notFound();
      const cp = await latest();
      const treeSize = cp.verified.checkpoint.treeSize;
      if (index >= treeSize) throw notFound();
      const bytes = await entryAt(index);
      let entry: { notice_id?: unknown; origin?: { agency?: unknown } };
      try {
        entry = decodeEntry(bytes) as typeof entry;
      } catch {
        throw notFound();
      }
      if (entry.notice_id !== id || entry.origin?.agency !== request.agency?.agencyId) throw notFound();
      const proof = await inclusionProofAsync(index, treeSize, reader);
      return {
        notice_id: id,
        index,
        tree_size: treeSize,
        entry: b64u(bytes),
        leaf_hash: hex(leafHash(bytes)),
        proof: proof.map(hex),
        checkpoint: checkpointJson(cp),
      };
    },
  );
};
