/**
 * A line diff of two texts (two revisions' specs as YAML), for the Revisions
 * tab: every line of both, in order, marked kept, removed or added. Pure and
 * free of DOM, so it is unit-tested in node.
 *
 * The common prefix and suffix are taken off first (two revisions of a spec
 * usually differ in a few lines), then the longest common subsequence of
 * what is left decides which lines are kept. That table is |a|·|b| cells, so
 * past MAX_CELLS the middle is shown as all removed then all added: still a
 * true diff, only not the shortest.
 */

export type DiffLine =
  | { kind: 'same'; text: string; from: number; to: number }
  | { kind: 'removed'; text: string; from: number }
  | { kind: 'added'; text: string; to: number };

/** 4 million cells of 4 bytes: 16 MB at most, well under a second. */
export const MAX_CELLS = 4_000_000;

/** `from` and `to` are the 1-based line numbers in `before` and `after`. */
export function lineDiff(before: string, after: string): DiffLine[] {
  const a = splitLines(before);
  const b = splitLines(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const out: DiffLine[] = [];
  for (let i = 0; i < start; i++) out.push({ kind: 'same', text: a[i] as string, from: i + 1, to: i + 1 });
  out.push(...middle(a, start, endA, b, start, endB));
  for (let i = endA, j = endB; i < a.length; i++, j++) out.push({ kind: 'same', text: a[i] as string, from: i + 1, to: j + 1 });
  return out;
}

/** Lines of a text; a final newline does not make an empty last line, and an empty text has none. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** How many lines each side changed: for a summary above the diff. */
export function diffCounts(lines: readonly DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    if (line.kind === 'added') added++;
    else if (line.kind === 'removed') removed++;
  }
  return { added, removed };
}

function middle(a: readonly string[], a0: number, a1: number, b: readonly string[], b0: number, b1: number): DiffLine[] {
  const n = a1 - a0;
  const m = b1 - b0;
  const out: DiffLine[] = [];
  if (n * m > MAX_CELLS) {
    for (let i = a0; i < a1; i++) out.push({ kind: 'removed', text: a[i] as string, from: i + 1 });
    for (let j = b0; j < b1; j++) out.push({ kind: 'added', text: b[j] as string, to: j + 1 });
    return out;
  }
  // lcs[i][j]: the longest common subsequence of a[a0+i..a1) and b[b0+j..b1), so the walk below goes forwards.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[a0 + i] === b[b0 + j]
          ? (lcs[(i + 1) * width + j + 1] as number) + 1
          : Math.max(lcs[(i + 1) * width + j] as number, lcs[i * width + j + 1] as number);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[a0 + i] === b[b0 + j]) {
      out.push({ kind: 'same', text: a[a0 + i] as string, from: a0 + i + 1, to: b0 + j + 1 });
      i++;
      j++;
    } else if ((lcs[(i + 1) * width + j] as number) >= (lcs[i * width + j + 1] as number)) {
      out.push({ kind: 'removed', text: a[a0 + i] as string, from: a0 + i + 1 });
      i++;
    } else {
      out.push({ kind: 'added', text: b[b0 + j] as string, to: b0 + j + 1 });
      j++;
    }
  }
  for (; i < n; i++) out.push({ kind: 'removed', text: a[a0 + i] as string, from: a0 + i + 1 });
  for (; j < m; j++) out.push({ kind: 'added', text: b[b0 + j] as string, to: b0 + j + 1 });
  return out;
}
