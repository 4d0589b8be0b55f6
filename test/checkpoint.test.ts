import t from 'tap';
import { createHash, generateKeyPairSync, webcrypto } from 'node:crypto';
import type { JWK } from 'jose';
import {
  CheckpointError,
  CheckpointVerifier,
  checkpointText,
  ed25519KeyId,
  parseCheckpoint,
  signCheckpoint,
  MAX_NOTE_BYTES,
  type Checkpoint,
} from '../broker/log/checkpoint.js';
import { throwsWith } from './helpers/assert-error.js';

async function keyPair(kid: string) {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const priv = await webcrypto.subtle.importKey(
    'jwk',
    { ...jwk, kid } as webcrypto.JsonWebKey,
    { name: 'Ed25519' },
    false,
    ['sign'],
  );
  const pub: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid };
  return { priv, pub };
}

const root = createHash('sha256').update('root').digest();
const cp: Checkpoint = {
  origin: 'liaison-hub',
  treeSize: 12345,
  rootHash: new Uint8Array(root),
  timestamp: 1_700_000_000_123,
};
const old = await keyPair('broker-sig-1');
const cur = await keyPair('broker-sig-2');
const note = await signCheckpoint(cp, cur.priv, cur.pub);

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    return e instanceof CheckpointError ? e.code : `other: ${(e as Error).message}`;
  }
};

t.test('format: C2SP tlog-checkpoint text and signed-note signature line', async (t) => {
  const lines = note.split('\n');
  t.equal(lines[0], 'liaison-hub');
  t.equal(lines[1], '12345');
  t.equal(lines[2], root.toString('base64'));
  t.equal(lines[3], 'timestamp 1700000000123');
  t.equal(lines[4], '', 'blank line before the signatures');
  t.match(lines[5], /^\u2014 liaison-hub [A-Za-z0-9+/]+=*$/);
  t.equal(lines[6], '', 'ends with a newline');
  const blob = Buffer.from(lines[5]!.split(' ')[2]!, 'base64');
  t.equal(blob.length, 4 + 64, 'key id (4) || Ed25519 signature (64)');
  t.same(new Uint8Array(blob.subarray(0, 4)), ed25519KeyId('liaison-hub', Buffer.from(cur.pub.x!, 'base64url')));
  // The signature covers the text exactly, final newline included (signed-note).
  const ok = await webcrypto.subtle.verify(
    'Ed25519',
    await webcrypto.subtle.importKey('jwk', cur.pub as webcrypto.JsonWebKey, { name: 'Ed25519' }, false, ['verify']),
    blob.subarray(4),
    new TextEncoder().encode(checkpointText(cp)),
  );
  t.ok(ok, 'an independent WebCrypto verify of the text accepts the signature');
});

t.test('round trip against a key history', async (t) => {
  const v = new CheckpointVerifier('liaison-hub', [
    old.pub,
    cur.pub,
    { kty: 'OKP', crv: 'X25519', x: cur.pub.x!, kid: 'enc' },
  ]);
  const got = v.verify(note);
  t.equal(got.kid, 'broker-sig-2');
  t.same(got.checkpoint, cp);
  const oldNote = await signCheckpoint({ ...cp, treeSize: 3 }, old.priv, old.pub);
  t.equal(v.verify(oldNote).kid, 'broker-sig-1', 'a checkpoint signed before a rotation still verifies');
  t.equal(v.verify(new TextEncoder().encode(note)).kid, 'broker-sig-2', 'bytes are accepted too');
  const cosigned = note + `\u2014 witness-1 ${Buffer.alloc(68, 7).toString('base64')}\n`;
  t.equal(v.verify(cosigned).kid, 'broker-sig-2', 'an unknown (witness) signature is ignored');
  const empty = await signCheckpoint({ ...cp, treeSize: 0 }, cur.priv, cur.pub);
  t.equal(v.verify(empty).checkpoint.treeSize, 0);
});

t.test('forgeries and other logs are refused', async (t) => {
  const v = new CheckpointVerifier('liaison-hub', [old.pub, cur.pub]);
  const mallory = await keyPair('broker-sig-2'); // same kid, other key
  t.equal(
    codeOf(() => v.verify(note.replace('\n12345\n', '\n12346\n'))),
    'checkpoint-signature-invalid',
    'changed tree size',
  );
  const otherRoot = createHash('sha256').update('other').digest('base64');
  t.equal(
    codeOf(() => v.verify(note.replace(root.toString('base64'), otherRoot))),
    'checkpoint-signature-invalid',
    'changed root',
  );
  t.equal(
    codeOf(() => v.verify(note.replace('timestamp 1700000000123', 'timestamp 1700000000124'))),
    'checkpoint-signature-invalid',
    'changed timestamp',
  );
  const forged = await signCheckpoint(cp, mallory.priv, mallory.pub);
  t.equal(
    codeOf(() => v.verify(forged)),
    'checkpoint-signature-invalid',
    'signed by an unknown key with a known kid',
  );
  // A good signature copied onto another key id.
  const line = note.split('\n')[5]!;
  const blob = Buffer.from(line.split(' ')[2]!, 'base64');
  blob[0] = blob[0]! ^ 1;
  t.equal(
    codeOf(() => v.verify(note.replace(line, `\u2014 liaison-hub ${blob.toString('base64')}`))),
    'checkpoint-signature-invalid',
    'wrong key id',
  );
  const other = await signCheckpoint({ ...cp, origin: 'other-hub' }, cur.priv, cur.pub);
  t.equal(
    codeOf(() => v.verify(other)),
    'checkpoint-origin-mismatch',
    'another log',
  );
  t.equal(
    codeOf(() => new CheckpointVerifier('liaison-hub', [old.pub]).verify(note)),
    'checkpoint-signature-invalid',
    'a key not in the history',
  );
  t.equal(v.tryVerify(note.replace('\n12345\n', '\n12346\n')), undefined, 'tryVerify never throws');
});

t.test('malformed notes are refused without throwing anything but CheckpointError', async (t) => {
  const v = new CheckpointVerifier('liaison-hub', [cur.pub]);
  const [text, sigs] = [note.slice(0, note.indexOf('\n\n') + 1), note.slice(note.indexOf('\n\n') + 2)];
  const cases: Record<string, unknown> = {
    'not text': 42,
    empty: '',
    'no blank line': text + sigs,
    'no signature': text + '\n',
    'no final newline': note.slice(0, -1),
    CRLF: note.replace(/\n/g, '\r\n'),
    'leading zero size': note.replace('\n12345\n', '\n012345\n'),
    'signed size': note.replace('\n12345\n', '\n+12345\n'),
    'huge size': note.replace('\n12345\n', '\n99999999999999999999\n'),
    'unsafe size': note.replace('\n12345\n', '\n9007199254740993\n'),
    'hex root': note.replace(root.toString('base64'), root.toString('hex')),
    'short root': note.replace(root.toString('base64'), root.subarray(0, 31).toString('base64')),
    'base64url root': note.replace(root.toString('base64'), root.toString('base64url')),
    'no timestamp': note.replace('timestamp 1700000000123\n', ''),
    'two timestamps': note.replace('timestamp 1700000000123\n', 'timestamp 1\ntimestamp 2\n'),
    'space in origin': note.replace('liaison-hub\n', 'liaison hub\n'),
    'hyphen not em dash': note.replace('\u2014 ', '- '),
    NUL: note.replace('liaison-hub\n', 'liaison-hub\u0000\n'),
    'lone surrogate': note.replace('liaison-hub\n', 'liaison-hub\ud800\n'),
    'too large': note + 'x'.repeat(MAX_NOTE_BYTES),
    'too many signatures': note + sigs.repeat(20),
    'invalid UTF-8 bytes': Uint8Array.from([...Buffer.from(note.slice(0, 5)), 0xff, ...Buffer.from(note.slice(5))]),
  };
  for (const [name, input] of Object.entries(cases)) {
    try {
      v.verify(input);
      t.fail(`${name}: accepted`);
    } catch (e) {
      t.ok(
        e instanceof CheckpointError &&
          (e.code === 'checkpoint-malformed' || e.code === 'checkpoint-signature-invalid'),
        `${name}: refused (${(e as Error).message})`,
      );
    }
  }
  throwsWith(t, () => parseCheckpoint(note.replace('\n12345\n', '\n1e5\n')), CheckpointError, 'checkpoint-malformed');
  // Pathological input stays fast (no backtracking).
  const start = process.hrtime.bigint();
  for (let i = 0; i < 50; i++) v.tryVerify('\u2014 '.repeat(5000) + '\n'.repeat(3000));
  t.ok(Number(process.hrtime.bigint() - start) / 1e6 < 2000, 'fifty adversarial notes parse in well under 2 s');
});
