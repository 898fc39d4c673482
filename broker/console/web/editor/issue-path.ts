/**
 * The path a validation issue names, as segments. The hub writes paths the
 * way a user reads them (`spec.containers[0].ports[1]`, `labels["a.b"]`:
 * shared/validate.ts toUserPath); the console also accepts a JSON pointer
 * (`/spec/containers/0`), and names every issue by its pointer in the page
 * (`data-path`), one form whatever the hub chose.
 */

export type PathSegment = string | number;

/** Segments of a user path or a JSON pointer; `''` is the whole document (no segments). */
export function parseIssuePath(path: string): PathSegment[] {
  if (path.startsWith('/')) return parsePointer(path);
  const segments: PathSegment[] = [];
  let rest = path;
  while (rest !== '') {
    const index = /^\[(\d+)\]/.exec(rest);
    if (index) {
      segments.push(Number(index[1]));
      rest = rest.slice(index[0].length);
      continue;
    }
    const quoted = /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest);
    if (quoted) {
      segments.push(JSON.parse(quoted[1] as string) as string);
      rest = rest.slice(quoted[0].length);
      continue;
    }
    const key = /^\.?([^.[]+)/.exec(rest);
    if (!key) {
      // Not a path this parser knows: keep what was understood, so the issue lands on the nearest field.
      break;
    }
    segments.push(key[1] as string);
    rest = rest.slice(key[0].length);
  }
  return segments;
}

/** `['spec', 'containers', 0]` → `/spec/containers/0` (RFC 6901); no segments → `''`. */
export function toPointer(segments: readonly PathSegment[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function parsePointer(pointer: string): PathSegment[] {
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => {
      const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^(0|[1-9]\d*)$/.test(part) ? Number(part) : part;
    });
}
