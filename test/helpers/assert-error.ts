/**
 * Assert that a call throws, or a promise rejects, with an error of one class
 * AND one code: a refusal for the wrong reason (another class, another code)
 * fails the test, where `t.throws(fn)` or a message pattern would pass it.
 */
import type { CodedError } from '../../broker/core/errors.js';

/** The few tap assertions used (a recorder in the helper's own test). */
export interface Asserts {
  fail(message: string): unknown;
  equal(found: unknown, wanted: unknown, message: string): unknown;
  match(found: unknown, pattern: RegExp, message: string): unknown;
}

type ErrorClass<E extends CodedError> = abstract new (...args: never[]) => E;

export interface Expected {
  /** The message must match too. */
  message?: RegExp;
  /** Names the assertion in the output. */
  what?: string;
}

const describeCode = (code: unknown) =>
  typeof code === 'string' ? code : code === undefined ? 'no code' : JSON.stringify(code);
const describe = (e: unknown) =>
  e instanceof Error ? `${e.name} (${describeCode((e as { code?: unknown }).code)}): ${e.message}` : String(e);

function check<E extends CodedError>(
  t: Asserts,
  err: unknown,
  Class: ErrorClass<E>,
  code: E['code'],
  expected: Expected,
  what: string,
): E | undefined {
  if (!(err instanceof Class)) {
    t.fail(`${what}: not a ${Class.name} but ${describe(err)}`);
    return undefined;
  }
  t.equal(err.code, code, `${what}: code`);
  if (expected.message) t.match(err.message, expected.message, `${what}: message`);
  return err;
}

/** `fn()` throws a `Class` with `code`; returns the error for further assertions. */
export function throwsWith<E extends CodedError>(
  t: Asserts,
  fn: () => unknown,
  Class: ErrorClass<E>,
  code: E['code'],
  expected: Expected = {},
): E | undefined {
  const what = expected.what ?? `throws ${Class.name} ${code}`;
  try {
    fn();
  } catch (e) {
    return check(t, e, Class, code, expected, what);
  }
  t.fail(`${what}: nothing was thrown`);
  return undefined;
}

/** `promise` (or what `fn` returns) rejects with a `Class` with `code`; resolves to the error for further assertions. */
export async function rejectsWith<E extends CodedError>(
  t: Asserts,
  promise: PromiseLike<unknown> | (() => PromiseLike<unknown>),
  Class: ErrorClass<E>,
  code: E['code'],
  expected: Expected = {},
): Promise<E | undefined> {
  const what = expected.what ?? `rejects with ${Class.name} ${code}`;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    return check(t, e, Class, code, expected, what);
  }
  t.fail(`${what}: it resolved`);
  return undefined;
}
