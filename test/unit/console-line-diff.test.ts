import { describe, expect, it } from 'vitest';
import { type DiffLine, diffCounts, lineDiff, MAX_CELLS, splitLines } from '../../broker/console/web/apps/line-diff.js';

/** The diff as `  kept`, `- removed`, `+ added` lines, the way a reader checks one. */
const render = (lines: DiffLine[]) => lines.map((l) => `${l.kind === 'same' ? ' ' : l.kind === 'added' ? '+' : '-'} ${l.text}`);

describe('lineDiff', () => {
  it('marks a changed line as removed then added, keeping the lines around it with both line numbers', () => {
    const before = 'name: web\nspec:\n  image: web:1.0\n  ports: ["80"]\n';
    const after = 'name: web\nspec:\n  image: web:2.0\n  ports: ["80"]\n';
    const diff = lineDiff(before, after);
    expect(render(diff)).toEqual(['  name: web', '  spec:', '-   image: web:1.0', '+   image: web:2.0', '    ports: ["80"]']);
    expect(diff[2]).toEqual({ kind: 'removed', text: '  image: web:1.0', from: 3 });
    expect(diff[3]).toEqual({ kind: 'added', text: '  image: web:2.0', to: 3 });
    expect(diff[4]).toEqual({ kind: 'same', text: '  ports: ["80"]', from: 4, to: 4 });
  });

  it('finds kept lines between insertions and deletions, numbering each side on its own', () => {
    const diff = lineDiff('a\nb\nc\nd\ne', 'a\nx\nc\ne\nf\ng');
    expect(render(diff)).toEqual(['  a', '- b', '+ x', '  c', '- d', '  e', '+ f', '+ g']);
    expect(diff.find((l) => l.text === 'e')).toEqual({ kind: 'same', text: 'e', from: 5, to: 4 });
    expect(diffCounts(diff)).toEqual({ added: 3, removed: 2 });
  });

  it('is all kept for equal texts, all added from nothing and all removed to nothing', () => {
    expect(diffCounts(lineDiff('a\nb\n', 'a\nb'))).toEqual({ added: 0, removed: 0 });
    expect(render(lineDiff('', 'a\nb'))).toEqual(['+ a', '+ b']);
    expect(render(lineDiff('a\nb', ''))).toEqual(['- a', '- b']);
    expect(lineDiff('', '')).toEqual([]);
  });

  it('keeps every line of both sides past the table bound, the changed middle removed then added', () => {
    const side = Math.ceil(Math.sqrt(MAX_CELLS)) + 1;
    const before = Array.from({ length: side }, (_, i) => `old ${i}`);
    const after = Array.from({ length: side }, (_, i) => `new ${i}`);
    const diff = lineDiff(['head', ...before, 'tail'].join('\n'), ['head', ...after, 'tail'].join('\n'));
    expect(diff).toHaveLength(2 * side + 2);
    expect(diff[0]).toEqual({ kind: 'same', text: 'head', from: 1, to: 1 });
    expect(diff[1]).toEqual({ kind: 'removed', text: 'old 0', from: 2 });
    expect(diff[side + 1]).toEqual({ kind: 'added', text: 'new 0', to: 2 });
    expect(diff.at(-1)).toEqual({ kind: 'same', text: 'tail', from: side + 2, to: side + 2 });
  });
});

describe('splitLines', () => {
  it('drops the final newline only, and reads CRLF as LF', () => {
    expect(splitLines('a\r\nb\n')).toEqual(['a', 'b']);
    expect(splitLines('a\n\n')).toEqual(['a', '']);
    expect(splitLines('')).toEqual([]);
  });
});
