import { readMessage } from 'openpgp';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { routingHeaderStoredSignatures } from '../e2e-jose/stored-signatures.js';
import { openPgpStoredSignatures } from '../openpgp/stored-signatures.js';
import { parseE2ePgpEnvelope } from './wire.js';

/** openpgp-e2e: the routing header is a signed OpenPGP message, checked like a stored OpenPGP notice. */
export function e2ePgpStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  return routingHeaderStoredSignatures(
    openPgpStoredSignatures(history),
    (signed) => parseE2ePgpEnvelope(signed, signed.length),
    async (header) => (await readMessage({ armoredMessage: header })).getLiteralData() as Uint8Array,
  );
}
