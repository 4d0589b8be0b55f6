/** test/helpers/assert-error.ts: it passes the right class and code only, and says what it found otherwise. */
import t from 'tap';
import { LiaisonError } from '../broker/core/errors.js';
import { CheckpointError } from '../broker/log/checkpoint.js';
import { MerkleError } from '../broker/log/merkle.js';
import { rejectsWith, throwsWith, type Asserts } from './helpers/assert-error.js';

/** Records what the helper asserts instead of failing this test. */
function recorder() {
  const failures: string[] = [];
  let passed = 0;
  const t: Asserts = {
    fail: (message) => failures.push(message),
    equal: (found, wanted, message) =>
      found === wanted ? passed++ : failures.push(`${message}: ${String(found)} is not ${String(wanted)}`),
    match: (found, pattern, message) =>
      pattern.test(String(found))
        ? passed++
        : failures.push(`${message}: ${String(found)} does not match ${String(pattern)}`),
  };
  return { t, failures, passed: () => passed };
}

const merkle = () => {
  throw new MerkleError('merkle-bad-argument', 'index 9 is past the tree size 3');
};

t.test('throwsWith passes the right class and code, and returns the error', async (t) => {
  const r = recorder();
  const e = throwsWith(r.t, merkle, MerkleError, 'merkle-bad-argument', { message: /past the tree size/ });
  t.same(r.failures, []);
  t.equal(r.passed(), 2, 'code and message asserted');
  t.equal(e?.message, 'index 9 is past the tree size 3');
  throwsWith(t, merkle, MerkleError, 'merkle-bad-argument');
});

t.test('throwsWith fails a wrong class, a wrong code, a wrong message, and no throw', async (t) => {
  const r = recorder();
  t.equal(throwsWith(r.t, merkle, CheckpointError, 'checkpoint-malformed'), undefined);
  throwsWith(r.t, merkle, MerkleError, 'merkle-bad-state');
  throwsWith(r.t, merkle, MerkleError, 'merkle-bad-argument', { message: /tree size 4/, what: 'named' });
  throwsWith(r.t, () => 1, MerkleError, 'merkle-bad-argument');
  throwsWith(
    r.t,
    () => {
      throw new RangeError('plain');
    },
    MerkleError,
    'merkle-bad-argument',
  );
  t.same(r.failures, [
    'throws CheckpointError checkpoint-malformed: not a CheckpointError but MerkleError (merkle-bad-argument): index 9 is past the tree size 3',
    'throws MerkleError merkle-bad-state: code: merkle-bad-argument is not merkle-bad-state',
    'named: message: index 9 is past the tree size 3 does not match /tree size 4/',
    'throws MerkleError merkle-bad-argument: nothing was thrown',
    'throws MerkleError merkle-bad-argument: not a MerkleError but RangeError (no code): plain',
  ]);
});

t.test('rejectsWith: a promise or a function returning one; the same checks', async (t) => {
  const refused = () => Promise.reject(new LiaisonError('key-unknown', { detail: 'kid k9' }));
  const r = recorder();
  const e = await rejectsWith(r.t, refused(), LiaisonError, 'key-unknown', { message: /kid k9/ });
  t.equal(e?.status, 400, 'the error is returned, typed');
  await rejectsWith(r.t, refused, LiaisonError, 'key-unknown');
  t.same(r.failures, []);
  await rejectsWith(r.t, refused, LiaisonError, 'key-revoked');
  await rejectsWith(r.t, refused, MerkleError, 'merkle-bad-state');
  await rejectsWith(r.t, Promise.resolve(1), LiaisonError, 'key-unknown', { what: 'resolves' });
  t.same(r.failures, [
    'rejects with LiaisonError key-revoked: code: key-unknown is not key-revoked',
    'rejects with MerkleError merkle-bad-state: not a MerkleError but LiaisonError (key-unknown): kid k9',
    'resolves: it resolved',
  ]);
  await rejectsWith(t, refused, LiaisonError, 'key-unknown');
});
