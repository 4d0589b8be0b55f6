/**
 * liaison notice seal, notice withdraw and assertion, in process against a
 * real gateway: what they print, what the gateway makes of it, and their exit
 * codes (0 done, 1 refused or failed, 2 usage). The guides' own commands run
 * in test/docs-integration.test.ts.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { clientFetch, HttpClientError } from '../broker/agency-client/http.js';
import { fetchOwnNotice, parseNoticeEntry } from '../broker/agency-client/own-notice.js';
import { buildWithdrawal } from '../broker/agency-client/withdrawal.js';
import { atLeastAsStrict } from '../broker/core/tlp.js';
import { throwsWith } from './helpers/assert-error.js';
import { stampNotice } from '../broker/cli/notice.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { runCli } from './helpers/cli.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false, checkpointIntervalMs: 1000 });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const dir = mkdtempSync(join(tmpdir(), 'liaison-cli-notice-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const inbox = inboxClients(g, url);
const validator = createNoticeValidator();
const cli = (...args: string[]) => runCli([...args, '--url', url, '--data-dir', g.dataDir]);
const SAMPLE = 'docs/examples/notices/seizure-report.json';

/** A seizure report of vn-customs, sent; its id. */
async function sent(patch: Record<string, unknown> = {}): Promise<string> {
  const notice = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'LA'],
    ...patch,
  });
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(`not sent: ${JSON.stringify(res.json)}`);
  return notice['id'] as string;
}

t.test('usage errors exit 2 and name the command', async (t) => {
  const id = randomUUID();
  const cases: [string[], RegExp][] = [
    [['notice', 'seal', '--as', 'vn-customs'], /^liaison notice seal: needs a FILE/],
    [['notice', 'seal', SAMPLE, SAMPLE, '--as', 'vn-customs'], /takes one FILE, not 2/],
    [['notice', 'seal', SAMPLE, '--as', 'vn-customs', '--alg', 'RSA-OAEP'], /--alg must be/],
    [['notice', 'seal', SAMPLE, '--as', 'vn-customs', '--curve', 'P-384'], /--curve must be/],
    [['notice', 'seal', SAMPLE], /needs --as AGENCY/],
    [['notice', 'seal', SAMPLE, '--as', 'vn-customs', '--bogus'], /Unknown option '--bogus'/],
    [['notice', 'withdraw', '--as', 'vn-customs', '--reason', 'x'], /needs the NOTICE_ID/],
    [['notice', 'withdraw', id, id, '--as', 'vn-customs', '--reason', 'x'], /takes one NOTICE_ID, not 2/],
    [['notice', 'withdraw', 'seizure-1', '--as', 'vn-customs', '--reason', 'x'], /seizure-1 is not a notice id/],
    [
      ['notice', 'withdraw', id.toUpperCase(), '--as', 'vn-customs', '--reason', 'x'],
      /is not a notice id \(a lower-case UUID\)/,
    ],
    [['notice', 'withdraw', id, '--as', 'vn-customs'], /needs --reason TEXT/],
    [['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', ' \n'], /needs --reason TEXT/],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--correction', ''],
      /--correction must say what changes/,
    ],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--summary', ' '],
      /--summary must not be blank/,
    ],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--priority', 'asap'],
      /--priority must be one of low, normal, high, urgent/,
    ],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--language', 'english!'],
      /--language must be a BCP 47 tag/,
    ],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--tlp', 'amber'],
      /--tlp must be CLEAR, GREEN, AMBER, AMBER\+STRICT or RED/,
    ],
    [
      ['notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--wait', '1.5'],
      /--wait must be a number of seconds/,
    ],
    [['notice', 'withdraw', id, '--reason', 'x'], /needs --as AGENCY/],
    [['assertion', 'th-customs'], /^liaison assertion: takes no argument \(got "th-customs"\)/],
    [['assertion', '--as', 'th-customs', '--lifetime', '301'], /--lifetime must be 1 to 300 seconds/],
    [['assertion', '--as', 'th-customs', '--lifetime', '0'], /--lifetime must be 1 to 300 seconds/],
    [['assertion', '--as', 'th-customs', '--lifetime', '2m'], /--lifetime must be 1 to 300 seconds/],
    [['assertion', '--as', 'th-customs', '--broker', 'Not A Broker'], /--broker must be the broker id/],
    [['assertion'], /needs --as AGENCY/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(...args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, message, args.join(' '));
    t.match(r.stderr, /--help\)\n$/, 'and points to the help');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
});

t.test('help: each new command, its group, the whole; an inherited property is no command', async (t) => {
  const notice = await runCli(['notice', '--help']);
  t.equal(notice.code, 0);
  for (const c of ['notice send', 'notice seal', 'notice withdraw'])
    t.match(notice.stdout, new RegExp(`liaison ${c} `));
  const seal = await runCli(['notice', 'seal', '--help']);
  t.equal(seal.code, 0);
  t.match(seal.stdout, /^Usage:\n {2}liaison notice seal FILE --as AGENCY/);
  t.notMatch(seal.stdout, /notice withdraw/, 'only its own usage');
  const withdraw = await runCli(['notice', 'withdraw', '-h']);
  t.match(withdraw.stdout, /liaison notice withdraw NOTICE_ID --as AGENCY --reason TEXT/);
  const assertion = await runCli(['assertion', '--help']);
  t.equal(assertion.code, 0);
  t.match(assertion.stdout, /^Usage:\n {2}liaison assertion --as AGENCY/);
  t.match(assertion.stdout, /accepts each assertion once/);
  const all = await runCli(['--help']);
  for (const c of ['notice seal', 'notice withdraw', 'assertion'])
    t.match(all.stdout, new RegExp(`\n {2}liaison ${c} `), `liaison --help lists ${c}`);
  t.match(all.stdout, /expires_at moved by as much/, 'and says what --stamp does to expires_at');
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const r = await runCli([name]);
    t.equal(r.code, 2, `${name}: exit 2`);
    t.match(r.stderr, new RegExp(`unknown command "${name}"`));
  }
});

t.test('assertion: a JWT for the API, accepted once; --broker makes one offline', async (t) => {
  const r = await cli('assertion', '--as', 'th-customs');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'one compact JWS and a newline');
  const jwt = r.stdout.trim();
  const claims = decodeJwt(jwt);
  t.match(claims, { iss: 'th-customs', sub: 'th-customs', aud: g.config.brokerId });
  t.equal((claims.exp as number) - (claims.iat as number), 120, 'two minutes by default');
  t.equal(decodeProtectedHeader(jwt).kid, g.creds('th-customs').signing.kid);
  const read = (token: string) =>
    fetch(`${url}/v1/inbox?after=0&limit=1`, { headers: { authorization: `Bearer ${token}` } });
  t.equal((await read(jwt)).status, 200, 'the gateway accepts it');
  t.equal((await read(jwt)).status, 401, 'once');

  const offline = await runCli([
    'assertion',
    '--as',
    'th-customs',
    '--data-dir',
    g.dataDir,
    '--broker',
    g.config.brokerId,
    '--lifetime',
    '300',
    '--url',
    'http://127.0.0.1:9',
  ]);
  t.equal(offline.code, 0, `--broker: no request to the gateway ${offline.stderr}`);
  const c2 = decodeJwt(offline.stdout.trim());
  t.equal((c2.exp as number) - (c2.iat as number), 300);
  t.not(c2.jti, claims.jti, 'a fresh jti');
  t.equal((await read(offline.stdout.trim())).status, 200);

  const unreachable = await runCli([
    'assertion',
    '--as',
    'th-customs',
    '--data-dir',
    g.dataDir,
    '--url',
    'http://127.0.0.1:9',
  ]);
  t.equal(unreachable.code, 1, 'no gateway to ask the broker id of: exit 1');
  t.match(unreachable.stderr, /^liaison assertion: cannot reach the broker at http:\/\/127\.0\.0\.1:9/);
  const nobody = await runCli(['assertion', '--as', 'nobody', '--data-dir', g.dataDir, '--broker', 'liaison-hub']);
  t.equal(nobody.code, 1);
  t.match(nobody.stderr, /cannot read the credentials of nobody/);
});

t.test('notice seal: the envelope notice send would post, to the broker key asked for; nothing posted', async (t) => {
  const before = (await g.gw.bus.jsm.streams.info('NOTICES')).state.messages;
  const r = await cli(
    'notice',
    'seal',
    SAMPLE,
    '--as',
    'vn-customs',
    '--stamp',
    '--curve',
    'P-256',
    '--alg',
    'ECDH-ES',
  );
  t.equal(r.code, 0, r.stderr);
  const jwe = r.stdout.trim();
  t.equal(jwe.split('.').length, 5, 'a compact JWE');
  const id = /^notice ([0-9a-f-]{36}) signed by vn-customs and encrypted to the broker \(ECDH-ES, P-256\)\n$/.exec(
    r.stderr,
  )?.[1];
  t.ok(id, `stderr names the notice: ${r.stderr}`);
  const header = decodeProtectedHeader(jwe);
  t.match(header, { alg: 'ECDH-ES', enc: 'A256GCM', cty: 'JWT' });
  const brokerKey = g.jwks.keys.find((k) => k.kid === header.kid);
  t.equal(brokerKey?.crv, 'P-256');
  t.equal((await g.gw.bus.jsm.streams.info('NOTICES')).state.messages, before, 'seal posts nothing');
  const res = await g.post(jwe);
  t.equal(res.status, 202, JSON.stringify(res.json));
  t.equal(res.json['notice_id'], id);

  // Without --stamp: the file's bytes, exactly, inside the signature.
  const mine = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
  });
  const text = `${JSON.stringify(mine, null, 1)}\n`;
  writeFileSync(join(dir, 'mine.json'), text);
  const plain = await cli('notice', 'seal', join(dir, 'mine.json'), '--as', 'vn-customs');
  t.equal(plain.code, 0, plain.stderr);
  const p = g.gw.keyring.jwks().keys.find((k) => k.kid === decodeProtectedHeader(plain.stdout.trim()).kid);
  t.ok(p, 'to a published broker key');
  const res2 = await g.post(plain.stdout);
  t.equal(res2.status, 202, 'a trailing newline is no part of the envelope');
  t.equal(res2.json['notice_id'], mine['id']);

  // Sealing does not judge: a file that is not even JSON is sealed, and refused when posted.
  writeFileSync(join(dir, 'text.txt'), 'not a notice');
  const text2 = await cli('notice', 'seal', join(dir, 'text.txt'), '--as', 'vn-customs');
  t.equal(text2.code, 0, text2.stderr);
  t.match(text2.stderr, /^notice \(not JSON\) signed by vn-customs/);
  t.equal((await g.post(text2.stdout)).json['code'], 'json-invalid');

  writeFileSync(join(dir, 'list.json'), '[1, 2]');
  writeFileSync(join(dir, 'broken.json'), '{"id": ');
  for (const [file, message] of [
    ['list.json', /--stamp: .*list\.json does not hold a JSON object/],
    ['broken.json', /--stamp: .*broken\.json is not JSON/],
    ['absent.json', /--stamp: cannot read .*absent\.json: no such file/],
  ] as const) {
    const bad = await cli('notice', 'seal', join(dir, file), '--as', 'vn-customs', '--stamp');
    t.equal(bad.code, 1, `${file}: exit 1`);
    t.match(bad.stderr, message);
  }
  const gone = await cli('notice', 'seal', join(dir, 'absent.json'), '--as', 'vn-customs');
  t.equal(gone.code, 1);
  t.match(gone.stderr, /^liaison notice seal: cannot read .*absent\.json: no such file\n$/);
});

t.test('notice send prints a refusal with its code and the schema errors, and exits 1', async (t) => {
  // person-alert.json as it is: dated 2024 and expired (the samples need --stamp).
  const expired = await cli('notice', 'send', 'docs/examples/notices/person-alert.json', '--as', 'iq-police');
  t.equal(expired.code, 1);
  t.match(expired.stdout, /^refused \(400 replay\): .* created_at is more than \d+ s old\n$/);
  // withdrawal.json as it is supersedes a notice no broker has logged (the samples' README says so).
  const unlogged = await cli(
    'notice',
    'send',
    'docs/examples/notices/withdrawal.json',
    '--as',
    'vn-customs',
    '--stamp',
  );
  t.equal(unlogged.code, 1);
  t.match(unlogged.stdout, /^refused \(403 policy-denied\): /);
  const bad = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    priority: 'whenever',
    tlp: 'BLUE',
  });
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
  const invalid = await cli('notice', 'send', join(dir, 'bad.json'), '--as', 'vn-customs');
  t.equal(invalid.code, 1);
  t.match(invalid.stdout, /^refused \(422 schema-invalid\): .*\n {2}\/tlp: .*\n {2}\/priority: .*\n$/);
});

t.test('stamping keeps the validity period and makes the sender the origin', async (t) => {
  const now = new Date('2030-01-01T00:00:00Z');
  const stamped = stampNotice(
    sampleNotice('person-alert', { created_at: '2024-09-02T08:15:00+03:00', expires_at: '2025-03-01T00:00:00Z' }),
    { agency: 'iq-police', country: 'IQ' },
    now,
    'f0000000-0000-4000-8000-000000000000',
  );
  t.match(stamped, {
    id: 'f0000000-0000-4000-8000-000000000000',
    created_at: '2030-01-01T00:00:00Z',
    expires_at: '2030-06-29T18:45:00Z',
    origin: { agency: 'iq-police', country: 'IQ' },
  });
  t.equal(
    Date.parse(stamped['expires_at'] as string) - Date.parse(stamped['created_at'] as string),
    Date.parse('2025-03-01T00:00:00Z') - Date.parse('2024-09-02T08:15:00+03:00'),
  );
  const noExpiry = stampNotice(
    { created_at: '2024-01-01T00:00:00Z', origin: { agency: 'x', country: 'XX' } },
    { agency: 'vn-customs', country: 'VN' },
    now,
  );
  t.notOk('expires_at' in noExpiry, 'no expires_at is added');
  const junk = stampNotice(
    { created_at: 'yesterday', expires_at: 'later' },
    { agency: 'vn-customs', country: 'VN' },
    now,
  );
  t.equal(junk['expires_at'], 'later', 'an unreadable date is left for the gateway to refuse');
  t.notOk('origin' in junk);
});

t.test('buildWithdrawal: schema-valid withdrawals and corrections, bounded text and addressees', async (t) => {
  const base = {
    id: randomUUID(),
    supersedes: randomUUID(),
    origin: { agency: 'vn-customs', country: 'VN' },
    operation: 'mekong-dragon-6',
    tlp: 'AMBER',
    recipients: ['th-customs', 'la-customs'],
    reason: 'Lỗi đánh máy',
    language: 'vi',
    priority: 'high',
    now: new Date(),
  };
  const w = buildWithdrawal(base);
  t.same(validator.validate(w), { ok: true });
  t.match(w, {
    type: 'withdrawal',
    addressees: ['th-customs', 'la-customs'],
    references: [base.supersedes],
    body: { action: 'withdraw', supersedes: base.supersedes, reason: 'Lỗi đánh máy' },
  });
  t.notOk('correction' in (w['body'] as object));
  t.equal(w['summary'], `Withdrawal of notice ${base.supersedes}: Lỗi đánh máy`);
  const c = buildWithdrawal({ ...base, correction: '465 kg', summary: 'Đính chính' });
  t.same(validator.validate(c), { ok: true });
  t.match(c, { summary: 'Đính chính', body: { action: 'correct', correction: '465 kg' } });
  const long = buildWithdrawal({
    ...base,
    reason: '𝄞'.repeat(2000),
    recipients: Array.from({ length: 201 }, (_, i) => `agency-${i}`),
  });
  t.same(validator.validate(long), { ok: true }, 'a 2000-character reason: the summary is clipped to 2000 code points');
  t.same(
    long['addressees'],
    ['*'],
    'more recipients than addressees may list: everyone (the broker routes to the recipients anyway)',
  );
  t.same(buildWithdrawal({ ...base, recipients: [] })['addressees'], ['*']);
  t.ok(atLeastAsStrict('RED', 'AMBER'));
  t.ok(atLeastAsStrict('AMBER', 'AMBER'));
  t.notOk(atLeastAsStrict('GREEN', 'AMBER+STRICT'));
});

t.test('parseNoticeEntry takes only the entry of the notice asked for', async (t) => {
  const id = randomUUID();
  const entry = (e: unknown) => Buffer.from(JSON.stringify(e)).toString('base64url');
  const good = {
    kind: 'notice',
    notice_id: id,
    operation: 'aircop',
    tlp: 'RED',
    type: 'person-alert',
    recipients: ['fr-douane'],
  };
  t.same(parseNoticeEntry(entry(good), id), {
    operation: 'aircop',
    tlp: 'RED',
    type: 'person-alert',
    recipients: ['fr-douane'],
  });
  throwsWith(t, () => parseNoticeEntry('%%%', id), HttpClientError, 'client-request-failed', {
    message: /is not JSON/,
  });
  throwsWith(t, () => parseNoticeEntry(undefined, id), HttpClientError, 'client-request-failed', {
    message: /is not JSON/,
  });
  for (const bad of [
    { ...good, notice_id: randomUUID() },
    { ...good, kind: 'ack' },
    { ...good, recipients: 'fr-douane' },
    { ...good, recipients: [1] },
    { ...good, tlp: '' },
    null,
  ]) {
    throwsWith(t, () => parseNoticeEntry(entry(bad), id), HttpClientError, 'client-request-failed', {
      message: /is not that notice's entry/,
      what: JSON.stringify(bad),
    });
  }
});

t.test("notice withdraw: from the notice's log entry, to its recipients; waits for the checkpoint", async (t) => {
  const id = await sent({ tlp: 'AMBER' });
  // Right after sending: no checkpoint covers it yet, so the command waits for one.
  const r = await cli(
    'notice',
    'withdraw',
    id,
    '--as',
    'vn-customs',
    '--reason',
    'Duplicate of an earlier report',
    '--tlp',
    'RED',
    '--json',
  );
  t.equal(r.code, 0, r.stderr + r.stdout);
  const receipt = JSON.parse(r.stdout) as { status: number; notice_id: string; recipients: string[] };
  t.equal(receipt.status, 202);
  t.same(receipt.recipients, ['la-customs', 'th-customs'], "the original's recipients");
  const delivery = await waitFor(
    async () =>
      (await inbox('la-customs').pull({ type: 'withdrawal', limit: 500 })).deliveries.find(
        (d) => d.notice_id === receipt.notice_id,
      ),
    'the withdrawal delivered',
    15_000,
  );
  const { notice } = await inbox('la-customs').open(delivery);
  t.match(notice, {
    type: 'withdrawal',
    operation: 'mekong-dragon-6',
    tlp: 'RED',
    language: 'en',
    priority: 'high',
    addressees: ['la-customs', 'th-customs'],
    origin: { agency: 'vn-customs', country: 'VN' },
    references: [id],
    body: { action: 'withdraw', supersedes: id, reason: 'Duplicate of an earlier report' },
  });

  // A correction, over P-256 (a delivery opened by an ES256/P-256 agency is covered elsewhere); plain output.
  const c = await cli(
    'notice',
    'withdraw',
    id,
    '--as',
    'vn-customs',
    '--reason',
    'Lỗi đánh máy',
    '--correction',
    '465 kg',
    '--language',
    'vi',
    '--priority',
    'urgent',
    '--curve',
    'P-256',
  );
  t.equal(c.code, 0, c.stderr + c.stdout);
  t.match(
    c.stdout,
    /^accepted: notice [0-9a-f-]{36} at log index \d+, received .*\nrecipients: la-customs, th-customs\nreceipt: \S+\n$/,
  );

  // A withdrawal is not withdrawn: the original is.
  const again = await cli('notice', 'withdraw', receipt.notice_id, '--as', 'vn-customs', '--reason', 'x');
  t.equal(again.code, 1, again.stdout);
  t.match(again.stderr, /is itself a withdrawal: withdraw or correct the original notice instead/);

  // A withdrawal is at least as restricted: said before anything is sent.
  const looser = await cli('notice', 'withdraw', id, '--as', 'vn-customs', '--reason', 'x', '--tlp', 'GREEN');
  t.equal(looser.code, 2);
  t.match(looser.stderr, /--tlp GREEN is less strict than the notice's TLP:AMBER/);
});

t.test("notice withdraw: another agency's notice, an unknown one, a caller without publish: exit 1", async (t) => {
  const id = await sent();
  // Let a checkpoint cover it, so that only the "not yours" rule answers.
  const entry = await waitFor(
    () => fetchOwnNotice(url, clientFetch(url), g.creds('vn-customs'), g.config.brokerId, id),
    'a checkpoint over the notice',
    15_000,
  );
  t.match(entry, { operation: 'mekong-dragon-6', type: 'seizure-report', recipients: ['la-customs', 'th-customs'] });
  const other = await cli('notice', 'withdraw', id, '--as', 'th-customs', '--reason', 'not mine', '--wait', '0');
  t.equal(other.code, 1);
  t.match(other.stderr, new RegExp(`no notice of yours with id ${id} is in the signed log: check the id and --as`));
  const unknown = await cli('notice', 'withdraw', randomUUID(), '--as', 'vn-customs', '--reason', 'x', '--wait', '1');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /waiting for a checkpoint to cover notice .* \(up to 1 s\)\n/);
  t.match(unknown.stderr, /is in the signed log \(waited 1 s for a checkpoint\)/);
  const auditor = await cli('notice', 'withdraw', id, '--as', 'hub-auditor', '--reason', 'x', '--wait', '0');
  t.equal(auditor.code, 1);
  t.match(auditor.stderr, /GET .*\/proof answered 403/);
});
