/**
 * broker/core/errors.ts: one base (CodedError) for every error class of broker/
 * and adapters/, and one list of codes (errorCodes), of which the HTTP problems
 * are the entries with a status.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { CodedError, errorCodes, isProblemCode, LiaisonError, problemCodes } from '../broker/core/errors.js';
import { repoRoot } from '../broker/core/paths.js';
import { ArchiveError } from '../broker/audit/archive.js';
import { UsageError } from '../broker/core/usage-error.js';
import { HttpClientError } from '../broker/agency-client/http.js';
import { ConfigError } from '../broker/config/config.js';
import { InboxClientError } from '../broker/agency-client/inbox-client.js';
import { DeliveryVerificationError } from '../broker/agency-client/open-delivery.js';
import { CrlError } from '../broker/http/tls-crl.js';
import { KekMismatchError } from '../broker/keys/keyring-store.js';
import { CheckpointError } from '../broker/log/checkpoint.js';
import { EntrySignatureError } from '../broker/log/entry-signature.js';
import { MerkleError } from '../broker/log/merkle.js';
import { NatsAuthError } from '../broker/nats/connection.js';
import { WebhookVerificationError } from '../adapters/webhook/sign.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every `class X extends Y` of the sources, as [file, X, Y]. */
function classHeritage(): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const file of ['broker', 'adapters'].flatMap(sourceFiles)) {
    const source = ts.createSourceFile(
      file,
      readFileSync(join(repoRoot, file), 'utf8'),
      ts.ScriptTarget.Latest,
      false,
      ts.ScriptKind.TS,
    );
    const visit = (node: ts.Node) => {
      if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
        for (const clause of node.heritageClauses ?? []) {
          if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue;
          for (const type of clause.types)
            out.push([file, node.name?.text ?? '(anonymous)', type.expression.getText(source)]);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

const BUILT_IN_ERRORS = [
  'Error',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'EvalError',
  'ReferenceError',
  'URIError',
  'AggregateError',
];

t.test('CodedError is the only class of broker/ and adapters/ that extends a built-in error', async (t) => {
  const direct = classHeritage().filter(([, , base]) => BUILT_IN_ERRORS.includes(base));
  t.same(
    direct.map(([file, name]) => `${file}: ${name}`),
    ['broker/core/errors.ts: CodedError'],
  );
});

t.test(
  'the one list: every code is an HTTP problem (status, title) or says what it means and what carries it',
  async (t) => {
    for (const [code, entry] of Object.entries(errorCodes) as [string, Record<string, unknown>][]) {
      t.match(code, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, `${code}: a kebab-case code`);
      if ('status' in entry) {
        t.ok(
          Number.isInteger(entry.status) && (entry.status as number) >= 400 && (entry.status as number) < 600,
          `${code}: an error status`,
        );
        t.type(entry.title, 'string', `${code}: a title`);
      } else {
        t.type(entry.means, 'string', `${code}: says what it means`);
        t.ok(Array.isArray(entry.by) && entry.by.length > 0, `${code}: names what carries it`);
      }
    }
  },
);

t.test('problemCodes are the entries of the list with a status, in order', async (t) => {
  const withStatus = Object.entries(errorCodes).filter(([, e]) => 'status' in e);
  t.same(Object.entries(problemCodes), withStatus);
  t.ok(isProblemCode('signature-invalid'));
  t.notOk(isProblemCode('merkle-bad-state'), 'a code that is no HTTP problem');
  t.notOk(isProblemCode('toString'), 'not a property of every object');
  t.notOk(isProblemCode(undefined));
});

t.test('every error class carries its code, its name and the message it always had', async (t) => {
  const cause = new Error('underneath');
  const cases: [CodedError, string, string, string][] = [
    [new LiaisonError('key-unknown'), 'LiaisonError', 'key-unknown', problemCodes['key-unknown'].title],
    [new MerkleError('merkle-bad-argument', 'm'), 'MerkleError', 'merkle-bad-argument', 'm'],
    [new CheckpointError('checkpoint-malformed', 'c'), 'CheckpointError', 'checkpoint-malformed', 'c'],
    [new EntrySignatureError('entry-unsigned', 'e'), 'EntrySignatureError', 'entry-unsigned', 'e'],
    [new ConfigError('bad port'), 'ConfigError', 'config-invalid', 'bad port'],
    [new CrlError('no CRL'), 'CrlError', 'crl-invalid', 'no CRL'],
    [new NatsAuthError('refused', { cause }), 'NatsAuthError', 'nats-auth-failed', 'refused'],
    [
      new KekMismatchError('aaaa', 'bbbb'),
      'KekMismatchError',
      'kek-mismatch',
      'the broker keyring in NATS (KV broker-keys) is sealed under key-encryption key bbbb, this instance holds aaaa: give every gateway of the network the same KEK file (LIAISON_KEK_FILE)',
    ],
    [
      new ArchiveError('entries must be an array'),
      'ArchiveError',
      'archive-invalid',
      'audit archive: entries must be an array',
    ],
    [new UsageError('needs --agency'), 'UsageError', 'command-line-invalid', 'needs --agency'],
    [new HttpClientError('unreachable', { cause }), 'HttpClientError', 'client-request-failed', 'unreachable'],
    [new InboxClientError(403, 'forbidden', '403 forbidden'), 'InboxClientError', 'forbidden', '403 forbidden'],
    [new DeliveryVerificationError('origin-mismatch', 'o'), 'DeliveryVerificationError', 'origin-mismatch', 'o'],
    [new WebhookVerificationError('wrong-recipient', 'w'), 'WebhookVerificationError', 'wrong-recipient', 'w'],
  ];
  for (const [e, name, code, message] of cases) {
    t.ok(e instanceof CodedError && e instanceof Error, `${name} is a CodedError`);
    t.equal(e.name, name, `${name}: name`);
    t.equal(e.code, code, `${name}: code`);
    t.equal(e.message, message, `${name}: message`);
    t.ok(Object.hasOwn(errorCodes, e.code), `${name}: its code is in the list`);
  }
  t.equal(new NatsAuthError('refused', { cause }).cause, cause, 'a cause is kept');
  t.notOk('cause' in new LiaisonError('internal'), 'no cause, no cause property');
  t.equal(new InboxClientError(500, 'http-error', 'x').status, 500);
  t.equal(new EntrySignatureError('entry-signature-invalid', 'x', true).unknownKid, true);
});
