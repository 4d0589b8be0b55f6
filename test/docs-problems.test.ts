import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { problemCodes, type ProblemCode } from '../broker/core/errors.js';
import { repoRoot } from '../broker/core/paths.js';

/** docs/problems.md: `## \`code\`` sections, each with its status and title as in broker/core/errors.ts. */
const doc = readFileSync(join(repoRoot, 'docs', 'problems.md'), 'utf8');
const sections = new Map<string, string>();
for (const part of doc.split(/^## /m).slice(1)) {
  const m = /^`([a-z0-9-]+)`\s*\n([\s\S]*)$/.exec(part);
  if (m) sections.set(m[1] as string, m[2] as string);
}

t.test('docs/problems.md has one section per problem code, and no other', async (t) => {
  const codes = Object.keys(problemCodes).sort();
  const documented = [...sections.keys()].sort();
  t.same(
    documented.filter((c) => !codes.includes(c)),
    [],
    'no section for a code that does not exist',
  );
  t.same(
    codes.filter((c) => !sections.has(c)),
    [],
    'every code has a section',
  );
  t.equal(doc.split(/^## /m).length - 1, sections.size, 'every ## heading is a code');
});

t.test("each section states the code's status and title, and when and what to do", async (t) => {
  for (const [code, { status, title }] of Object.entries(problemCodes) as [
    ProblemCode,
    { status: number; title: string },
  ][]) {
    const body = sections.get(code);
    if (!body) continue;
    t.match(body, new RegExp(`^- \\*\\*Status:\\*\\* ${status}$`, 'm'), `${code}: status ${status}`);
    t.ok(body.includes(`- **Title:** ${title}\n`), `${code}: title as in errors.ts`);
    t.match(body, /^- \*\*When:\*\* \S/m, `${code}: when`);
    t.match(body, /^- \*\*Do:\*\* \S/m, `${code}: what to do`);
  }
});
