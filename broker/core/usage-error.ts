import { CodedError } from './errors.js';

/**
 * A command line that cannot be run as given: a missing or malformed argument
 * or option. `liaison` exits 2 for it (and for an unknown command), 1 for a
 * command that ran and was refused or failed, 0 for success.
 */
export class UsageError extends CodedError<'command-line-invalid'> {
  constructor(message: string) {
    super('command-line-invalid', message);
  }
}

/** A usage error, ours or node:util parseArgs's (unknown option, missing value, unexpected argument). */
export function isUsageError(e: unknown): boolean {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- any code, as text
  return e instanceof UsageError || /^ERR_PARSE_ARGS_/.test(String((e as { code?: unknown } | null)?.code ?? ''));
}
