/**
 * End-to-end operations (docs/end-to-end.md) on a real nats-server through the
 * real gateway: the member directory, the jose-e2e envelope's checks, its
 * routing to exactly its recipients unread, and what the hub cannot open.
 */
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { CompactSign, generalDecrypt, importJWK, type GeneralJWE, type JWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import {
  openEndToEnd,
  recipientKeys,
  routingHeaderOf,
  sealEndToEnd,
  type OperationDirectory,
} from '../broker/agency-client/end-to-end.js';
import { signAck } from '../broker/acks/read-receipt.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { DeliveryVerificationError } from '../broker/agency-client/open-delivery.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { openE2eWithJwcrypto } from './helpers/jwcrypto.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  checkpointIntervalMs: 200,
  checkpointEveryEntries: 1,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const E2E_OP = 'mekong-sealed';

async function authed(agency: string, path: string): Promise<{ status: number; json: any }> {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId);
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, json: await res.json() };
}

async function problem(t: Test, got: { status: number; json: any }, status: number, code: string, what: string) {
  t.equal(got.status, status, `${what}: status ${status}`);
  t.equal(got.json.code, code, `${what}: code ${code}`);
}

const E2E = 'application/liaison-e2e+json';
const client = inboxClients(g, url);
const validator = createNoticeValidator();
const directory = async (agency: string, op = E2E_OP) =>
  (await authed(agency, `/v1/operations/${op}/members`)).json as OperationDirectory;
const e2eNotice = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: E2E_OP,
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'la-customs'],
    tlp: 'RED',
    ...patch,
  });
const seal = async (notice: Record<string, any>, signer = 'vn-customs', keys?: { key: JWK }[]) =>
  sealEndToEnd(notice, g.creds(signer).signing, keys ?? recipientKeys(notice, await directory('vn-customs')));
const originKeys = (agency: string) => client('th-customs').agencyKeys(agency);
const deliveryOf = (agency: string, id: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === id),
    `${agency}'s delivery of ${id}`,
  );

const notice = e2eNotice({ summary: 'MARKER-E2E-7f3a shipment of pangolin scales' });
const sealed = await seal(notice);
const accepted = await g.post(sealed.envelope, E2E);

t.test('an end-to-end notice to 2 of 3 other members reaches exactly those two, and each opens it', async (t) => {
  t.equal(accepted.status, 202, JSON.stringify(accepted.json));
  const th = await deliveryOf('th-customs', notice.id);
  const la = await deliveryOf('la-customs', notice.id);
  for (const [agency, d] of [
    ['th-customs', th],
    ['la-customs', la],
  ] as const) {
    t.equal(d.e2e, sealed.envelope, `${agency} is delivered the envelope as posted`);
    t.notOk(d.jwe ?? d.openpgp, 'and nothing re-encrypted');
    const opened = await openEndToEnd(d, g.creds(agency).encryption, originKeys, validator);
    t.same(opened.notice, notice, `${agency} opens and validates the notice`);
    t.equal(opened.signerKid, g.creds('vn-customs').signing.kid, "the origin's signature verifies");
    // The InboxClient does the same by itself.
    t.same((await client(agency).open(d)).notice, notice);
  }
  // The third member and the origin get nothing; the third cannot open a copy either.
  for (const agency of ['cn-customs', 'vn-customs']) {
    const page = await client(agency).pull({ limit: 500 });
    t.notOk(
      page.deliveries.some((d) => d.notice_id === notice.id),
      `${agency} is delivered nothing`,
    );
  }
  await t.rejects(openEndToEnd(th, g.creds('cn-customs').encryption, originKeys, validator), {
    code: 'decrypt-failed',
  });
});

t.test('the SSE stream carries the envelope unchanged', async (t) => {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  let got: string | undefined;
  for await (const d of client('th-customs').follow({ after: 0, operation: E2E_OP }, ac.signal)) {
    if (d.notice_id === notice.id) {
      got = d.e2e;
      break;
    }
  }
  clearTimeout(timer);
  ac.abort();
  t.equal(got, sealed.envelope);
});

t.test('the log commits to the envelope as received, format jose-e2e', async (t) => {
  const auditor = async () =>
    `Bearer ${await makeClientAssertion('hub-auditor', g.creds('hub-auditor').signing, g.config.brokerId)}`;
  const page = async (q: string) =>
    (await (await fetch(`${url}/v1/log/entries?${q}`, { headers: { authorization: await auditor() } })).json()) as {
      log_size: number;
      entries?: { entry: string }[];
    };
  const entry = await waitFor(async () => {
    const size = (await page('start=0&end=1')).log_size;
    return (await page(`start=0&end=${size}`)).entries
      ?.map((e) => JSON.parse(Buffer.from(e.entry, 'base64url').toString('utf8')) as Record<string, any>)
      .find((e) => e.notice_id === notice.id);
  }, 'the log entry');
  t.equal(entry.format, 'jose-e2e');
  t.equal(entry.sha256, sha256Hex(Buffer.from(sealed.envelope, 'utf8')));
  t.same(entry.recipients, ['la-customs', 'th-customs']);
  t.equal(entry.tlp, 'RED');
});

/** Every private JWK in a directory tree (JSON files, any depth). */
function privateJwksIn(dir: string): JWK[] {
  const out: JWK[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') {
      if (typeof (v as JWK).d === 'string' && typeof (v as JWK).kty === 'string') out.push(v);
      Object.values(v).forEach(visit);
    }
  };
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...privateJwksIn(path));
    else if (name.endsWith('.json')) {
      try {
        visit(JSON.parse(readFileSync(path, 'utf8')));
      } catch {
        // not JSON: not a key file
      }
    }
  }
  return out;
}

t.test('python3-jwcrypto opens an end-to-end delivery as its recipient and verifies the origin', async (t) => {
  const py = (agency: string, envelope: string) =>
    openE2eWithJwcrypto(envelope, g.creds(agency).encryption, g.creds('vn-customs').signing);
  const d = await deliveryOf('la-customs', notice.id);
  const r = py('la-customs', d.e2e!);
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { header: Record<string, unknown>; notice: Record<string, unknown> };
  t.same(out.notice, notice, 'the notice, its signature verified by jwcrypto');
  t.equal(out.header.body_sha256, sha256Hex(Buffer.from(sealed.body, 'utf8')));
  const third = py('cn-customs', d.e2e!);
  t.not(third.status, 0, 'the third member cannot open it');
});

t.test("the audit verifies an end-to-end entry's routing header and body hash, and nothing more", async (t) => {
  const { exportArchive } = await import('../broker/audit/export.js');
  const { run } = await import('../broker/cli/liaison.js');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  await waitFor(async () => {
    const r = await authed('vn-customs', `/v1/notices/${notice.id}/proof`);
    return r.status === 200 ? true : undefined;
  }, 'a checkpoint over the notice');
  const archive = await exportArchive(
    g.gw.bus,
    g.config.brokerId,
    g.jwks.keys.filter((k) => k.use === 'sig'),
    g.gw.keyring,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'liaison-e2e-audit-')), 'archive.json');
  const verify = async (a: unknown) => {
    writeFileSync(file, JSON.stringify(a));
    let out = '';
    const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
    return { code: await run(['audit', 'verify', '--archive', file], io), out };
  };
  const ok = await verify(archive);
  t.equal(ok.code, 0, ok.out);
  t.match(ok.out, /origin signatures checked/);
  // The stored envelope with another body under the same signed header: the audit names it.
  const forged = JSON.parse(JSON.stringify(archive)) as { notices: { notice_id: string; signed: string }[] };
  const held = forged.notices.find((n) => n.notice_id === notice.id)!;
  t.equal(
    Buffer.from(held.signed, 'base64url').toString('utf8'),
    sealed.envelope,
    'the archive holds the envelope as received',
  );
  const other = JSON.parse((await seal(e2eNotice())).envelope) as { body: string };
  held.signed = Buffer.from(JSON.stringify({ header: JSON.parse(sealed.envelope).header, body: other.body })).toString(
    'base64url',
  );
  const bad = await verify(forged);
  t.equal(bad.code, 1, 'another body under the same header does not verify');
});

t.test('the hub holds no key that opens the body', async (t) => {
  const body = JSON.parse(sealed.body) as GeneralJWE;
  // Every broker private key: the gateway's keyring in memory, and every key file in its data dir but the demo
  // agencies' own credentials (dataDir/demo, kept there for the demo's CLI, never read by the gateway).
  const candidates = [
    ...g.gw.keyring.file.encryption,
    ...g.gw.keyring.file.signing,
    ...readdirSync(g.dataDir)
      .filter((n) => n !== 'demo' && statSync(join(g.dataDir, n)).isDirectory())
      .flatMap((n) => privateJwksIn(join(g.dataDir, n))),
  ];
  const ecdh = candidates.filter((k) => k.crv === 'X25519' || k.crv === 'P-256');
  t.ok(ecdh.length >= 2, `${ecdh.length} broker key-agreement keys tried`);
  for (const k of ecdh) {
    const opened = await generalDecrypt(body, await importJWK(k, 'ECDH-ES+A256KW')).then(
      () => true,
      () => false,
    );
    t.notOk(opened, `broker key ${String(k.kid)} does not open it`);
  }
  const registry = g.gw.registry.snapshot;
  const brokerKids = new Set(candidates.map((k) => k.kid));
  for (const r of body.recipients) {
    const kid = String(r.header?.kid);
    t.notOk(brokerKids.has(kid), `${kid} is not a broker key`);
    t.ok(['th-customs', 'la-customs'].includes(registry.key(kid)?.agency.id ?? ''), `${kid} is a recipient's key`);
  }
  t.notOk(
    g.logLines.some((l) => l.includes('MARKER-E2E-7f3a')),
    'no log line carries the content (the gateway never had it)',
  );
});

t.test('read receipts and the inclusion proof work for an end-to-end notice', async (t) => {
  const d = await deliveryOf('th-customs', notice.id);
  const ack = await signAck(
    {
      notice_id: notice.id,
      cursor: d.cursor,
      sha256: sha256Hex(Buffer.from(d.e2e!, 'utf8')),
      acked_at: new Date().toISOString(),
    },
    g.creds('th-customs').signing,
  );
  const token = await makeClientAssertion('th-customs', g.creds('th-customs').signing, g.config.brokerId);
  const res = await fetch(`${url}/v1/inbox/ack`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/jose' },
    body: ack,
  });
  t.equal(res.status, 201, 'the read receipt is logged');
  const proof = await waitFor(async () => {
    const r = await authed('vn-customs', `/v1/notices/${notice.id}/proof`);
    return r.status === 200 ? r.json : undefined;
  }, 'the inclusion proof');
  t.equal(proof.notice_id, notice.id);
  t.ok(proof.tree_size > proof.index, 'under a checkpoint');
});

t.test('hostile end-to-end envelopes each get their problem code', async (t) => {
  const dir = await directory('vn-customs');
  const key = (agency: string) => dir.members.find((m) => m.agency === agency)!.encryption_keys[0]!;
  const expect = async (what: string, envelope: string, status: number, code: string, type = E2E) => {
    const r = await g.post(envelope, type);
    t.equal(r.status, status, `${what}: ${status}`);
    t.equal(r.json.code, code, `${what}: ${code}`);
  };
  {
    const s = await seal(e2eNotice());
    const body = JSON.parse(s.body) as Record<string, string>;
    body.ciphertext = (body.ciphertext!.startsWith('A') ? 'B' : 'A') + body.ciphertext!.slice(1);
    await expect(
      'tampered body',
      JSON.stringify({ header: JSON.parse(s.envelope).header, body: JSON.stringify(body) }),
      400,
      'body-hash-mismatch',
    );
  }
  const n1 = e2eNotice();
  await expect(
    'an extra recipient',
    (await seal(n1, 'vn-customs', [{ key: key('th-customs') }, { key: key('la-customs') }, { key: key('cn-customs') }]))
      .envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'an addressee without an entry',
    (await seal(e2eNotice(), 'vn-customs', [{ key: key('th-customs') }])).envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'an entry for the hub',
    (
      await seal(e2eNotice(), 'vn-customs', [
        { key: key('th-customs') },
        { key: key('la-customs') },
        { key: g.jwks.keys.find((k) => k.use === 'enc' && k.crv === 'X25519')! },
      ])
    ).envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'a wrong kid (la-customs key material under a kid that is not an encryption key)',
    (
      await seal(e2eNotice(), 'vn-customs', [
        { key: key('th-customs') },
        { key: { ...key('la-customs'), kid: g.creds('la-customs').signing.kid! } },
      ])
    ).envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'a header signed by another agency',
    (await seal(e2eNotice(), 'th-customs', [{ key: key('th-customs') }, { key: key('la-customs') }])).envelope,
    403,
    'policy-denied',
  );
  {
    const ordinary = e2eNotice({ operation: 'mekong-dragon-6', addressees: ['TH'], tlp: 'AMBER' });
    const thKey = (await directory('vn-customs', 'mekong-dragon-6')).members.find((m) => m.agency === 'th-customs')!;
    await expect(
      'end to end to an ordinary operation',
      (await seal(ordinary, 'vn-customs', [{ key: thKey.encryption_keys[0]! }])).envelope,
      403,
      'operation-not-end-to-end',
    );
  }
  await expect(
    'hub-readable to an end-to-end operation',
    (await g.seal(e2eNotice(), 'vn-customs')).jwe,
    403,
    'operation-end-to-end',
    'application/jose',
  );
  // Bodies the origin did sign (a fresh routing header binds each), that break the JWE rules.
  const signedFor = async (n: Record<string, unknown>, body: unknown) => {
    const text = JSON.stringify(body);
    const header = routingHeaderOf(n, sha256Hex(Buffer.from(text, 'utf8')));
    const hjws = await new CompactSign(new TextEncoder().encode(JSON.stringify(header)))
      .setProtectedHeader({ alg: 'EdDSA', kid: g.creds('vn-customs').signing.kid!, typ: 'liaison-e2e-header+jws' })
      .sign(await importJWK(g.creds('vn-customs').signing, 'EdDSA'));
    return JSON.stringify({ header: hjws, body: text });
  };
  {
    const n = e2eNotice();
    const body = JSON.parse((await seal(n)).body) as Record<string, any>;
    const { recipients, ...rest } = body;
    await expect('a flattened JWE', await signedFor(n, { ...rest, ...recipients[0] }), 400, 'envelope-malformed');
    await expect(
      'an unprotected header',
      await signedFor(n, { ...body, unprotected: { kid: 'x' } }),
      400,
      'header-forbidden',
    );
    const dir0 = {
      ...body,
      recipients: body.recipients.map((r: any) => ({ ...r, header: { ...r.header, alg: 'dir' } })),
    };
    await expect('alg dir', await signedFor(n, dir0), 400, 'alg-not-allowed');
    const jku = {
      ...body,
      recipients: body.recipients.map((r: any) => ({ ...r, header: { ...r.header, jku: 'https://x' } })),
    };
    await expect('a key-bearing recipient header', await signedFor(n, jku), 400, 'header-forbidden');
  }
  await expect('not an envelope', '{"header": 1}', 400, 'envelope-malformed');
  {
    const bad = e2eNotice();
    const s = await sealEndToEnd(bad, g.creds('vn-customs').signing, recipientKeys(bad, dir));
    const h = JSON.parse(s.envelope).header as string;
    const [p0, , p2] = h.split('.');
    const forged = `${p0}.${Buffer.from(JSON.stringify({ ...s.header, tlp: 'CLEAR' })).toString('base64url')}.${p2}`;
    await expect(
      'a header changed after signing',
      JSON.stringify({ header: forged, body: s.body }),
      400,
      'signature-invalid',
    );
  }
});

t.test('a recipient refuses a notice that differs from its routing header or breaks its schema', async (t) => {
  const dir = await directory('vn-customs');
  // The origin signs a routing header that says AMBER over a notice that says RED: the hub cannot see it, the recipient does.
  const inner = e2eNotice();
  const redBody = (await sealEndToEnd(inner, g.creds('vn-customs').signing, recipientKeys(inner, dir))).body;
  const header = { ...routingHeaderOf(inner, sha256Hex(Buffer.from(redBody, 'utf8'))), tlp: 'AMBER' };
  const hjws = await new CompactSign(new TextEncoder().encode(JSON.stringify(header)))
    .setProtectedHeader({ alg: 'EdDSA', kid: g.creds('vn-customs').signing.kid!, typ: 'liaison-e2e-header+jws' })
    .sign(await importJWK(g.creds('vn-customs').signing, 'EdDSA'));
  const posted = await g.post(JSON.stringify({ header: hjws, body: redBody }), E2E);
  t.equal(posted.status, 202, 'the hub cannot tell');
  const d = await deliveryOf('th-customs', inner.id);
  await t.rejects(openEndToEnd(d, g.creds('th-customs').encryption, originKeys, validator), {
    code: 'routing-header-mismatch',
  });
  // A notice whose body breaks its type's schema, under a truthful header.
  const broken = e2eNotice({ body: { nonsense: true } });
  const b = await seal(broken);
  t.equal((await g.post(b.envelope, E2E)).status, 202, 'the hub cannot tell');
  const bd = await deliveryOf('la-customs', broken.id);
  const err = await openEndToEnd(bd, g.creds('la-customs').encryption, originKeys, validator).catch((e) => e);
  t.ok(err instanceof DeliveryVerificationError);
  t.equal(err.code, 'notice-schema-invalid');
});

t.test('the member directory: members only, current encryption keys', async (t) => {
  const r = await authed('vn-customs', `/v1/operations/${E2E_OP}/members`);
  t.equal(r.status, 200);
  t.equal(r.json.end_to_end, true);
  t.same(
    r.json.members.map((m: any) => m.agency),
    ['vn-customs', 'th-customs', 'la-customs', 'cn-customs'],
  );
  for (const m of r.json.members) {
    t.ok(m.encryption_keys.length >= 1, `${m.agency} has a current encryption key`);
    for (const k of m.encryption_keys) {
      t.notOk('d' in k, 'public members only');
      t.equal(k.kid, g.creds(m.agency).encryption.kid, 'the agency key the demo network registered');
    }
  }
  t.equal((await authed('vn-customs', '/v1/operations/aircop/members')).json.end_to_end, false);
  // A non-member and an unknown operation read the same.
  const notMember = await authed('gb-border-force', `/v1/operations/${E2E_OP}/members`);
  const unknown = await authed('gb-border-force', '/v1/operations/no-such-op/members');
  await problem(t, notMember, 404, 'operation-not-found', 'non-member');
  await problem(t, unknown, 404, 'operation-not-found', 'unknown operation');
  t.equal(notMember.json.detail, unknown.json.detail, 'the same answer');
  const anonymous = await fetch(`${url}/v1/operations/${E2E_OP}/members`);
  t.equal(anonymous.status, 401);
});

t.test('the CLI seals end to end by itself, and its inbox opens, checks and refuses', async (t) => {
  const { runCli } = await import('./helpers/cli.js');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const cli = (...args: string[]) => runCli([...args, '--url', url, '--data-dir', g.dataDir]);
  const file = join(mkdtempSync(join(tmpdir(), 'liaison-e2e-')), 'notice.json');
  const n = e2eNotice({ addressees: ['TH'], tlp: 'AMBER' });
  writeFileSync(file, JSON.stringify(n, null, 2));
  const sent = await cli('notice', 'send', file, '--as', 'vn-customs', '--json');
  t.equal(sent.code, 0, sent.stdout + sent.stderr);
  t.match(sent.stderr, /mekong-sealed is end to end: sealed for th-customs/);
  t.same(JSON.parse(sent.stdout).recipients, ['th-customs']);
  await deliveryOf('th-customs', n.id);
  // th-customs's inbox holds this notice and the one whose notice differs from its routing header (test above).
  const pulled = await cli('inbox', 'pull', '--as', 'th-customs', '--operation', E2E_OP, '--limit', '500');
  t.match(
    pulled.stdout,
    new RegExp(`${n.id} ${E2E_OP} from vn-customs[^\\n]*\\n  end to end: opened with this agency's key`),
  );
  t.match(pulled.stdout, /DOES NOT VERIFY \(the notice's tlp is not the routing header's\)/);
  t.equal(pulled.code, 1, 'a delivery that fails a check: non-zero exit');
});
