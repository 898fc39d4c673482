/**
 * The editor's YAML: the text parsed into what `apps.apply` sends, its syntax
 * errors at their lines, and each of the hub's validation issues placed on
 * the line of the field its path names. The `yaml` package keeps every
 * node's source range, which is what makes the second possible.
 *
 * The editor loads this module with `import()`, so the YAML parser is a chunk
 * of its own that only the editor's pages download. Free of DOM: unit-tested
 * in node.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, stringify } from 'yaml';
import { type PathSegment, parseIssuePath, toPointer } from './issue-path.js';

/** An issue placed in the text. */
export interface LineIssue {
  /** 1-based. */
  line: number;
  /** A JSON pointer to the field (`/spec/containers/0/image`); `''` for the document or a syntax error. */
  pointer: string;
  /** The path as the hub wrote it (empty for a syntax error). */
  path: string;
  message: string;
}

/** A spec as the editor shows it: block YAML, long strings never folded (a folded command reads as a different one). */
export function specToText(spec: unknown): string {
  return stringify(spec, { lineWidth: 0 });
}

export type ParsedSpec = { ok: true; value: unknown } | { ok: false; errors: LineIssue[] };

/** The text as the object `apps.apply` sends, or its syntax errors, each at its line. */
export function parseSpecText(text: string): ParsedSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((error) => ({
        line: lineCounter.linePos(error.pos[0]).line,
        pointer: '',
        path: '',
        message: error.message.split('\n')[0] ?? error.message,
      })),
    };
  }
  return { ok: true, value: doc.toJS() };
}

/**
 * Each issue at the line of the field its path names: the key's line when the
 * field is there, else the line of its nearest parent that is (a required
 * field that is missing lands on the map that lacks it), else the document's
 * first line of content, else line 1.
 */
export function placeIssues(text: string, issues: readonly { path: string; message: string }[]): LineIssue[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return issues.map((issue) => {
    const segments = parseIssuePath(issue.path);
    const offset = offsetOf(doc.contents, segments);
    return {
      line: offset === undefined ? 1 : lineCounter.linePos(offset).line,
      pointer: toPointer(segments),
      path: issue.path,
      message: issue.message,
    };
  });
}

/** The source offset that stands for `segments` (a key, or an item), or of the deepest parent found. */
function offsetOf(root: unknown, segments: readonly PathSegment[]): number | undefined {
  let node: unknown = root;
  let found = rangeStart(root);
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(segment));
      if (!pair) break;
      found = rangeStart(pair.key) ?? rangeStart(pair.value) ?? found;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) break;
      found = rangeStart(item) ?? found;
      node = item;
    } else {
      break;
    }
  }
  return found;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}

function rangeStart(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[0];
}
