import { readFileSync } from 'node:fs';

/**
 * Files named on the command line (a notice, a record, an archive): read, and
 * on failure an error that names the file and says why in words, not Node's
 * `ENOENT: no such file or directory, open '...'`.
 */
export function readInputFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (e as Error).message;
    throw new Error(`cannot read ${file}: ${why}`);
  }
}

/** A JSON file named on the command line, parsed (any JSON value; the caller checks its shape). */
export function readInputJson(file: string): unknown {
  const bytes = readInputFile(file);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new Error(`${file} is not JSON (${(e as Error).message})`);
  }
}
