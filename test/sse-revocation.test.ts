/**
 * An open inbox stream is authorised when it opens and again every second:
 * a signing key revoked, or the subscribe role removed, since it opened ends
 * it (it used to keep delivering). One agency holds at most 8 streams.
 */
import t from 'tap';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false, sseHeartbeatSeconds: 1 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as { port: number }).port}`;

/** Open a stream as `agency`; `ended` resolves when the gateway closes it. */
async function openStream(gw: TestGateway, agency: string) {
  const token = await makeClientAssertion(agency, gw.creds(agency).signing, gw.config.brokerId);
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/inbox/stream`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  let text = '';
  const ended =
    res.status === 200
      ? (async () => {
          const reader = res.body!.getReader();
          for (;;) {
            const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
            if (done) return text;
            text += new TextDecoder().decode(value);
          }
        })()
      : Promise.resolve('');
  t.teardown(() => abort.abort());
  return { status: res.status, res, ended, text: () => text };
}

const closedWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

t.test("a stream opened before the agency's signing key is revoked is ended", async (t) => {
  const s = await openStream(g, 'la-customs');
  t.equal(s.status, 200);
  await waitFor(() => (s.text().includes(': stream of la-customs') ? true : undefined), 'the stream to open');
  const la = g.gw.registry.snapshot.agency('la-customs')!;
  await g.gw.registry.putAgency({
    ...la,
    keys: la.keys.map((k) =>
      k.use === 'sig' ? { ...k, status: 'revoked' as const, revoked_at: new Date().toISOString() } : k,
    ),
  });
  t.ok(await closedWithin(s.ended, 5000), 'the gateway ended the stream');
  t.match(s.text(), /: access revoked\n/, 'saying why');
});

t.test('a stream opened before the subscribe role is removed is ended', async (t) => {
  const s = await openStream(g, 'kh-police-adp');
  t.equal(s.status, 200);
  await waitFor(() => (s.text().includes(': stream of kh-police-adp') ? true : undefined), 'the stream to open');
  const kh = g.gw.registry.snapshot.agency('kh-police-adp')!;
  await g.gw.registry.putAgency({ ...kh, roles: kh.roles.filter((r) => r !== 'subscribe') });
  t.ok(await closedWithin(s.ended, 5000), 'the gateway ended the stream');
});

t.test('a stream of an agency still allowed goes on', async (t) => {
  const s = await openStream(g, 'cn-customs');
  await new Promise((r) => setTimeout(r, 2500));
  t.notOk(await closedWithin(s.ended, 10), 'still open after two re-authorisations');
});

t.test('at most 8 open streams per agency: the ninth is 429, another agency is served', async (t) => {
  const open = [];
  for (let i = 0; i < 8; i++) open.push(await openStream(g, 'th-customs'));
  t.same(
    open.map((s) => s.status),
    new Array(8).fill(200),
  );
  const ninth = await openStream(g, 'th-customs');
  t.equal(ninth.status, 429);
  const body = (await ninth.res.json()) as { code: string; detail: string };
  t.equal(body.code, 'rate-limited');
  t.match(body.detail, /at most 8 open inbox streams/);
  t.equal((await openStream(g, 'vn-c04')).status, 200, 'another agency is not counted against it');
});
