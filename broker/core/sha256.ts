import { createHash } from 'node:crypto';

/** Lower-case hex SHA-256: the commitment a log entry makes to the bytes it stands for. */
export const sha256Hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
