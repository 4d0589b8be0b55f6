import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../broker/core/logger.js';

/** Every line the logger writes, as text. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger('info', stream), text: () => lines.join('') };
}

const SECRET = 'S3cr3t-value-that-must-never-appear';

t.test('secrets and content are redacted wherever the code might pass them', async (t) => {
  const { logger, text } = capture();
  logger.info({ req: { headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET } } }, 'request');
  logger.info(
    { token: SECRET, assertion: SECRET, body: SECRET, payload: SECRET, notice: SECRET, envelope: SECRET },
    'content',
  );
  logger.info(
    {
      privateKey: SECRET,
      privateJwk: { d: SECRET },
      jwk: { kty: 'OKP', d: SECRET },
      key: { jwk: { d: SECRET } },
      keys: [{ d: SECRET }],
    },
    'keys',
  );
  logger.info(
    {
      natsPassword: SECRET,
      natsToken: SECRET,
      config: { natsPassword: SECRET, natsToken: SECRET, kek: SECRET },
      auth: { user: 'liaison', pass: SECRET, password: SECRET },
    },
    'nats settings',
  );
  await new Promise((r) => setImmediate(r));
  const out = text();
  t.equal(out.trim().split('\n').length, 4, 'every line was written');
  t.notMatch(out, SECRET, 'no secret in any line');
  t.match(out, /\[redacted\]/, 'redacted fields are marked');
  t.match(out, /"user":"liaison"/, 'what is not secret stays');
});
