import { LiaisonError } from '../core/errors.js';
import { parseStrictJson } from '../core/strict-json.js';

/** Between steps 3 and 4: the signed payload as a notice object (strict JSON: no duplicate keys, no __proto__, bounded depth). */
export function decodeNotice(
  payload: Uint8Array,
  limits: { maxBytes: number; maxDepth: number },
): Record<string, unknown> {
  const value = parseStrictJson(payload, limits);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new LiaisonError('json-invalid', { publicDetail: 'the notice must be a JSON object' });
  }
  return value as Record<string, unknown>;
}
