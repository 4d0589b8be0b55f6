// Interop: proofs made by the TypeScript module are checked by an independent
// verifier written in Python from RFC 9162 (test/interop/merkle_verify.py).
// Valid proofs must pass there; mutated ones must fail there, and the two
// verifiers must agree on every case.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import {
  EMPTY_ROOT,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
  type NodeReader,
} from '../broker/log/merkle.js';

const PYTHON = '/usr/bin/python3';
const VERIFIER = fileURLToPath(new URL('./interop/merkle_verify.py', import.meta.url));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function python(input: string, args: string[] = []): { status: number | null; stdout: string } {
  const r = spawnSync(PYTHON, [VERIFIER, ...args], { input, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, stdout: r.stdout };
}

/** Runs many cases through one python process (--jsonl); returns one verdict line per case. */
function pythonBatch(cases: readonly object[]): string[] {
  const r = python(cases.map((c) => JSON.stringify(c)).join('\n') + '\n', ['--jsonl']);
  if (r.status !== 0) throw new Error(`python exited ${r.status}`);
  const lines = r.stdout.trimEnd().split('\n');
  if (lines.length !== cases.length) throw new Error(`${lines.length} verdicts for ${cases.length} cases`);
  return lines;
}

// A dense tree of N leaves with all perfect-subtree hashes.
const N = 1100;
const entries = Array.from({ length: N }, (_, i) => new TextEncoder().encode(`{"kind":"notice","seq":${i}}`));
const levels: Uint8Array[][] = [entries.map(leafHash)];
for (let l = 0; levels[l]!.length > 1; l++) {
  const below = levels[l]!;
  const above: Uint8Array[] = [];
  for (let i = 0; i + 1 < below.length; i += 2) above.push(nodeHash(below[i]!, below[i + 1]!));
  levels.push(above);
}
const read: NodeReader = (level, index) => levels[level]![index]!;
const leaves = levels[0]!;
const rootCache = new Map<number, Uint8Array>();
const rootOf = (n: number): Uint8Array => {
  let r = rootCache.get(n);
  if (r === undefined) rootCache.set(n, (r = rootFromLeafHashes(leaves.slice(0, n))));
  return r;
};

interface Inclusion {
  kind: 'inclusion';
  leaf_hash_hex?: string;
  leaf_b64?: string;
  index: number;
  tree_size: number;
  proof: string[];
  root_hex: string;
}

interface Consistency {
  kind: 'consistency';
  first: number;
  second: number;
  proof: string[];
  first_root_hex: string;
  second_root_hex: string;
}

type Case = Inclusion | Consistency;

function inclusionCase(index: number, size: number, asEntry = false): Inclusion {
  const base = {
    index,
    tree_size: size,
    proof: inclusionProof(index, size, read).map(hex),
    root_hex: hex(rootOf(size)),
  };
  return asEntry
    ? { kind: 'inclusion', leaf_b64: Buffer.from(entries[index]!).toString('base64url'), ...base }
    : { kind: 'inclusion', leaf_hash_hex: hex(leaves[index]!), ...base };
}

function consistencyCase(first: number, second: number): Consistency {
  return {
    kind: 'consistency',
    first,
    second,
    proof: consistencyProof(first, second, read).map(hex),
    first_root_hex: hex(rootOf(first)),
    second_root_hex: hex(rootOf(second)),
  };
}

/** The same question asked of the TypeScript verifier. */
function tsVerdict(c: Case): boolean {
  const proof = c.proof.map((p) => new Uint8Array(Buffer.from(p, 'hex')));
  if (c.kind === 'consistency') {
    return verifyConsistency(
      c.first,
      c.second,
      proof,
      Buffer.from(c.first_root_hex, 'hex'),
      Buffer.from(c.second_root_hex, 'hex'),
    );
  }
  const leaf =
    c.leaf_hash_hex !== undefined
      ? Buffer.from(c.leaf_hash_hex, 'hex')
      : leafHash(Buffer.from(c.leaf_b64!, 'base64url'));
  return verifyInclusion(leaf, c.index, c.tree_size, proof, Buffer.from(c.root_hex, 'hex'));
}

const flipHex = (h: string, bit: number): string => {
  const b = Buffer.from(h, 'hex');
  b[bit >> 3]! ^= 1 << (bit & 7);
  return b.toString('hex');
};

/** Named mutations, each of which must make both verifiers say no. */
function mutations(c: Case): [string, Case][] {
  const out: [string, Case][] = [];
  c.proof.forEach((p, i) => {
    const bit = (i * 37 + 5) % 256;
    out.push([
      `modified-proof[${i}]-bit-@${bit}`,
      { ...c, proof: c.proof.map((q, j) => (j === i ? flipHex(q, bit) : q)) },
    ]);
  });
  if (c.proof.length > 0) out.push(['truncated-proof', { ...c, proof: c.proof.slice(0, -1) }]);
  out.push(['extended-proof', { ...c, proof: [...c.proof, hex(EMPTY_ROOT)] }]);
  if (c.proof.length > 1)
    out.push(['swapped-proof-elements[0,1]', { ...c, proof: [c.proof[1]!, c.proof[0]!, ...c.proof.slice(2)] }]);
  if (c.kind === 'inclusion') {
    out.push(['wrong-root', { ...c, root_hex: flipHex(c.root_hex, 200) }]);
    if (c.leaf_hash_hex !== undefined) out.push(['wrong-leaf', { ...c, leaf_hash_hex: flipHex(c.leaf_hash_hex, 1) }]);
    else out.push(['wrong-leaf-entry', { ...c, leaf_b64: Buffer.from('not the entry').toString('base64url') }]);
    out.push([`wrong-index-${c.index + 1}`, { ...c, index: c.index + 1 }]);
    if (c.index > 0) out.push([`wrong-index-${c.index - 1}`, { ...c, index: c.index - 1 }]);
    out.push(['wrong-size-x2', { ...c, tree_size: c.tree_size * 2 }]);
  } else if (c.first > 0) {
    out.push(['wrong-first-root', { ...c, first_root_hex: flipHex(c.first_root_hex, 9) }]);
    out.push(['wrong-second-root', { ...c, second_root_hex: flipHex(c.second_root_hex, 77) }]);
    out.push([`wrong-first-${c.first + 1}`, { ...c, first: c.first + 1 }]);
    out.push([`wrong-first-${c.first - 1}`, { ...c, first: c.first - 1 }]);
    out.push(['wrong-second-x2', { ...c, second: c.second * 2 }]);
  } else {
    out.push(['wrong-first-root', { ...c, first_root_hex: flipHex(c.first_root_hex, 9) }]);
  }
  return out;
}

// Every index of every tree up to 64 leaves, every consistency pair up to 64,
// and a spread of larger trees up to N; a tenth of inclusion cases carry the
// entry itself (base64url, as GET /v1/log/entries serves it) instead of its hash.
const valid: Case[] = [];
for (let n = 1; n <= 64; n++) for (let i = 0; i < n; i++) valid.push(inclusionCase(i, n, (i + n) % 10 === 0));
for (let n = 0; n <= 64; n++) for (let f = 0; f <= n; f++) valid.push(consistencyCase(f, n));
for (let n = 65; n <= N; n += 37) {
  for (const i of [0, 1, n >> 1, n - 2, n - 1, (n * 7919) % n]) valid.push(inclusionCase(i, n, i === 1));
  for (const f of [1, 2, 63, 64, 65, n >> 1, n - 1, n]) if (f <= n) valid.push(consistencyCase(f, n));
}

t.test('python accepts every proof the module makes', async (t) => {
  const verdicts = pythonBatch(valid);
  const rejected = valid
    .filter((_, i) => verdicts[i] !== 'OK')
    .map((c, i) => `${JSON.stringify(c).slice(0, 80)} -> ${verdicts[i]}`);
  t.same(rejected, [], `${valid.length} proofs`);
  t.equal(valid.filter((c) => !tsVerdict(c)).length, 0, 'and so does the module');
});

t.test('python rejects every named mutation, and agrees with the module', async (t) => {
  const cases: [string, Case][] = [];
  valid.forEach((c, i) => {
    if (i % 3 === 0) for (const m of mutations(c)) cases.push(m);
  });
  const verdicts = pythonBatch(cases.map(([, c]) => c));
  const accepted = cases
    .filter((_, i) => !verdicts[i]!.startsWith('FAIL: '))
    .map(([name, c]) => `${name} ${JSON.stringify(c).slice(0, 80)}`);
  t.same(accepted, [], `${cases.length} mutations rejected by python`);
  t.same(
    cases.filter(([, c]) => tsVerdict(c)).map(([name]) => name),
    [],
    'and by the module',
  );
});

t.test('the two verifiers agree on random proofs of random shapes', async (t) => {
  // Deterministic pseudo-random: proofs of hashes taken from the tree, at wrong places.
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pick = (): string => hex(levels[0]![rnd(N)]!);
  const cases: Case[] = [];
  for (let k = 0; k < 2000; k++) {
    const size = 1 + rnd(300);
    const proof = Array.from({ length: rnd(11) }, pick);
    if (k % 2 === 0) {
      cases.push({
        kind: 'inclusion',
        leaf_hash_hex: pick(),
        index: rnd(size + 2),
        tree_size: size,
        proof,
        root_hex: hex(rootOf(size)),
      });
    } else {
      const first = rnd(size + 1);
      cases.push({
        kind: 'consistency',
        first,
        second: size,
        proof,
        first_root_hex: hex(rootOf(first)),
        second_root_hex: hex(rootOf(size)),
      });
    }
  }
  const verdicts = pythonBatch(cases);
  const disagree = cases.filter((c, i) => (verdicts[i] === 'OK') !== tsVerdict(c));
  t.same(disagree, [], `${cases.length} random cases`);
});

t.test('single-request mode: OK and exit 0, or the reason and exit 1', async (t) => {
  const good = inclusionCase(5, 11);
  t.same(python(JSON.stringify(good)), { status: 0, stdout: 'OK\n' });
  t.same(python(JSON.stringify(inclusionCase(5, 11, true))), { status: 0, stdout: 'OK\n' }, 'leaf given as the entry');
  t.same(python(JSON.stringify(consistencyCase(5, 11))), { status: 0, stdout: 'OK\n' });
  t.same(python(JSON.stringify(consistencyCase(0, 11))), { status: 0, stdout: 'OK\n' }, 'from the empty tree');
  t.same(python(JSON.stringify(consistencyCase(11, 11))), { status: 0, stdout: 'OK\n' }, 'equal sizes');

  const bad: [string, unknown][] = [
    ['changed proof', { ...good, proof: [flipHex(good.proof[0]!, 0), ...good.proof.slice(1)] }],
    ['changed consistency proof', { ...consistencyCase(5, 11), proof: consistencyCase(5, 11).proof.slice(1) }],
    ['index = size', { ...good, index: 11 }],
    ['boolean index', { ...good, index: true }],
    ['fractional size', { ...good, tree_size: 11.5 }],
    ['negative size', { ...good, tree_size: -1 }],
    ['short hash', { ...good, root_hex: good.root_hex.slice(2) }],
    ['non-hex hash', { ...good, root_hex: 'zz' + good.root_hex.slice(2) }],
    ['proof not a list', { ...good, proof: good.proof[0] }],
    ['both leaf forms', { ...good, leaf_b64: 'AA' }],
    ['no leaf', { ...good, leaf_hash_hex: undefined }],
    ['leaf_b64 not base64', { ...inclusionCase(5, 11, true), leaf_b64: '***' }],
    ['leaf_b64 not a string', { ...inclusionCase(5, 11, true), leaf_b64: 7 }],
    ['unknown kind', { ...good, kind: 'audit' }],
    ['first > second', { ...consistencyCase(5, 11), first: 12 }],
    ['not an object', [good]],
  ];
  for (const [name, req] of bad) {
    const r = python(JSON.stringify(req));
    t.equal(r.status, 1, `${name}: exit 1`);
    t.not(r.stdout.trim(), 'OK', `${name}: ${r.stdout.trim()}`);
  }
  t.equal(python('{"kind": "inclusion",').status, 1, 'not JSON');
  t.equal(python('', ['--bogus']).status, 1, 'bad usage');
});
