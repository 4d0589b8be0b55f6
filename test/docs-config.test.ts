import t from 'tap';
import { readFileSync } from 'node:fs';
import { repoRoot } from '../broker/core/paths.js';
import {
  END,
  guideFile,
  renderConfigReference,
  schemaFile,
  spliceReference,
  START,
} from '../scripts/gen-config-doc.js';

const schema = JSON.parse(readFileSync(schemaFile(repoRoot), 'utf8')) as {
  properties: Record<string, Record<string, unknown>>;
};
const guide = readFileSync(guideFile(repoRoot), 'utf8');

t.test(
  "the operator guide's configuration reference is the one generated from schemas/config.schema.json",
  async (t) => {
    t.ok(guide.includes(START) && guide.includes(END), 'the generated section is marked');
    const expected = spliceReference(guide, renderConfigReference(schema));
    t.ok(expected === guide, 'docs/operator-guide.md is up to date (run `npm run docs:config`)');
  },
);

t.test('every setting has an environment variable, a description and a row', async (t) => {
  const section = guide.slice(guide.indexOf(START), guide.indexOf(END));
  for (const [key, p] of Object.entries(schema.properties)) {
    t.type(p['x-env'], 'string', `${key}: x-env`);
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a non-string description fails the length check
    t.ok(String(p.description ?? '').length > 5, `${key}: description`);
    t.match(section, new RegExp(`^\\| \`${key}\` \\| \`${String(p['x-env'])}\` \\|`, 'm'), `${key}: a row`);
  }
});

t.test('the generator renders types, defaults and ranges', async (t) => {
  const out = renderConfigReference({
    properties: {
      a: { type: 'integer', minimum: 1, maximum: 5, default: 2, 'x-env': 'A', description: 'x | y' },
      b: { enum: ['p', 'q'], description: 'e' },
    },
  });
  t.match(out, '| `a` | `A` | integer | `2` | 1 to 5 | x \\| y |');
  t.match(out, '| `b` | – | `p`, `q` | – | – | e |');
});
