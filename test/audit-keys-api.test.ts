/**
 * `liaison audit verify` in API mode: over HTTP against a real listening
 * gateway, with the auditor's credentials (client assertions), remembering the
 * checkpoints it saw (--state) so that a later run also proves the hub stayed
 * consistent with what it showed before.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../broker/cli/liaison.js';
import { parseCheckpoint, signCheckpoint } from '../broker/log/checkpoint.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  checkpointEveryEntries: 3,
  checkpointIntervalMs: 200,
  leaseTtlSeconds: 2,
});
const url = await g.gw.app.listen({ port: 0, host: '127.0.0.1' });
const dir = mkdtempSync(join(tmpdir(), 'liaison-audit-api-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const state = join(dir, 'audit-state.json');

const post = async (n: number) => {
  for (let i = 0; i < n; i++) {
    const notice = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
    if (res.status !== 202) throw new Error(`post refused: ${res.status}`);
  }
};
const cli = async (args: string[]) => {
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  let code: number;
  try {
    code = await run(args, io);
  } catch (e) {
    out += String(e);
    code = -1;
  }
  return { code, out };
};
const verify = (...extra: string[]) => cli(['audit', 'verify', '--url', url, '--data-dir', g.dataDir, ...extra]);

t.test('the auditor verifies the live log over the API, twice, consistent with what it saw before', async (t) => {
  await post(5);
  await waitFor(() => (g.gw.checkpointer!.status.checkpointSize === 5 ? true : undefined), 'checkpoint 5');
  const first = await verify('--as', 'hub-auditor', '--state', state);
  t.equal(first.code, 0, first.out);
  t.match(first.out, /5 replayed/);
  t.match(first.out, /tree verified up to size 5/);
  // The API serves commitments, not contents: said so, never counted as erased.
  t.match(first.out, /notices: +5 notice entries; contents not fetched \(the API serves commitments only\)/);
  t.notMatch(first.out, /erased/);
  t.match(first.out, /the log verifies/);
  const saved = (JSON.parse(readFileSync(state, 'utf8')) as { checkpoints: string[] }).checkpoints;
  t.same(
    saved.map((n) => parseCheckpoint(n).checkpoint.treeSize),
    [5],
    'the checkpoint seen is remembered',
  );

  await post(4);
  await waitFor(() => (g.gw.checkpointer!.status.checkpointSize === 9 ? true : undefined), 'checkpoint 9');
  const second = await verify('--as', 'hub-auditor', '--state', state, '--json');
  t.equal(second.code, 0, second.out);
  const report = JSON.parse(second.out) as {
    ok: boolean;
    entries: number;
    checkpoints: number;
    checkpointsValid: number;
    verifiedTreeSize: number;
    noticesNotFetched: number;
    noticesErased: number;
  };
  t.same(
    [report.ok, report.entries, report.checkpoints, report.checkpointsValid, report.verifiedTreeSize],
    [true, 9, 2, 2, 9],
    'the earlier checkpoint and the new one, proven consistent',
  );
  t.same([report.noticesNotFetched, report.noticesErased], [9, 0], 'no contents fetched, none counted as erased');
  t.same(
    (JSON.parse(readFileSync(state, 'utf8')) as { checkpoints: string[] }).checkpoints.map(
      (n) => parseCheckpoint(n).checkpoint.treeSize,
    ),
    [5, 9],
  );
});

t.test('a checkpoint the hub showed earlier that the log contradicts is reported (a fork)', async (t) => {
  // The auditor's state holds a checkpoint of size 5 with another root, signed by the broker key: a hub that forked its log.
  const k = g.gw.keyring.signing;
  const forked = await signCheckpoint(
    { origin: g.config.brokerId, treeSize: 5, rootHash: new Uint8Array(32).fill(7), timestamp: Date.now() },
    k.privateKey,
    k.publicJwk,
  );
  const forkState = join(dir, 'fork-state.json');
  writeFileSync(forkState, JSON.stringify({ checkpoints: [forked] }));
  const r = await verify('--as', 'hub-auditor', '--state', forkState);
  t.equal(r.code, 1, r.out);
  t.match(r.out, /PROBLEM checkpoint-(inconsistent|root-mismatch)/);
  t.match(r.out, /does NOT verify/);
  t.same(
    (JSON.parse(readFileSync(forkState, 'utf8')) as { checkpoints: string[] }).checkpoints,
    [forked],
    'a failed run does not extend the state',
  );
});

t.test('API mode needs auditor credentials', async (t) => {
  const r = await verify('--as', 'vn-customs');
  t.not(r.code, 0, 'a publishing agency is refused');
  t.match(r.out, /403/);
  const none = await cli(['audit', 'verify', '--url', url]);
  t.not(none.code, 0, 'no credentials: a usage error');
});
