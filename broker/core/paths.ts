import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor of this module holding schemas/ (works from broker/ and from dist/broker/). */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'schemas', 'config.schema.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the schemas/ directory above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
})();

export const schemaPath = (...parts: string[]): string => join(repoRoot, 'schemas', ...parts);
