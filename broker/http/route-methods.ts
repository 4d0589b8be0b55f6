/**
 * Which methods a path has, for 405 answers (RFC 9110 15.5.6: a 405 carries
 * Allow). Fastify's router answers an unmatched method as an unknown path, so
 * the routes are collected as they are added and matched here by shape:
 * `:param` matches one non-empty segment, a trailing `*` the rest.
 */
export class RouteMethods {
  readonly #routes: { pattern: RegExp; methods: Set<string> }[] = [];
  readonly #byUrl = new Map<string, Set<string>>();

  add(url: string, methods: string | string[]): void {
    let set = this.#byUrl.get(url);
    if (!set) {
      set = new Set();
      this.#byUrl.set(url, set);
      this.#routes.push({ pattern: toPattern(url), methods: set });
    }
    for (const m of Array.isArray(methods) ? methods : [methods]) set.add(m.toUpperCase());
  }

  /** The methods some route serves on `path` (no query), sorted; empty when no route has that path. */
  allowed(path: string): string[] {
    const out = new Set<string>();
    for (const r of this.#routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
    return [...out].sort();
  }
}

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

function toPattern(url: string): RegExp {
  const parts = url.split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return escape(seg);
  });
  return new RegExp(`^${parts.join('/')}$`);
}
