import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths redacted from every log line, compiled once when the logger is built.
 * Defence in depth: the code logs ids and labels only, never notice content,
 * envelopes, tokens or key material.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'assertion',
  'body',
  'payload',
  'notice',
  'envelope',
  'privateKey',
  'privateJwk',
  'jwk.d',
  '*.jwk.d',
  'd',
  '*.d',
  'keys[*].d',
  // NATS and other service credentials, wherever a config or connection object ends up in a log line.
  'password',
  '*.password',
  'pass',
  '*.pass',
  'natsPassword',
  '*.natsPassword',
  'natsToken',
  '*.natsToken',
  'kek',
  '*.kek',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'liaison' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
