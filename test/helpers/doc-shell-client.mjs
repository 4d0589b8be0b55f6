// `npx liaison ARGS` inside a documented shell block under test (test/helpers/doc-shell.ts):
// hands the arguments, the working directory and the LIAISON_* variables to the
// liaison CLI running in the test process, and replays its output and exit code.
import { request } from 'node:http';

const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k.startsWith('LIAISON_') && k !== 'LIAISON_TEST_CLI_SOCKET'),
);
const body = JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd(), env });
const req = request(
  {
    socketPath: process.env.LIAISON_TEST_CLI_SOCKET,
    path: '/',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  },
  (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (text += d));
    res.on('end', () => {
      const r = JSON.parse(text);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      process.exitCode = r.code;
    });
  },
);
req.on('error', (e) => {
  process.stderr.write(`npx liaison (test bridge): ${e.message}\n`);
  process.exitCode = 1;
});
req.end(body);
