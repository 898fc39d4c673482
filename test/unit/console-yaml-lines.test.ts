import { describe, expect, it } from 'vitest';
import { parseIssuePath, toPointer } from '../../broker/console/web/editor/issue-path.js';
import { parseSpecText, placeIssues, specToText } from '../../broker/console/web/editor/yaml-lines.js';
import { validateAppSpec } from '../../shared/index.js';

const SPEC = `# the gateway
name: gateway
scheduling:
  selectors: { site: roof }
spec:
  containers:
    - name: main
      image: registry.local/gw:1.0
      ports:
        - "8080:80"
        - "not a port"
    - name: sidecar
      command: [/bin/true]
`;

describe('parseIssuePath', () => {
  it("reads the hub's paths and JSON pointers alike", () => {
    expect(parseIssuePath('spec.containers[0].ports[1]')).toEqual(['spec', 'containers', 0, 'ports', 1]);
    expect(parseIssuePath('scheduling.selectors["a.b/c"]')).toEqual(['scheduling', 'selectors', 'a.b/c']);
    expect(parseIssuePath('/spec/containers/0/image')).toEqual(['spec', 'containers', 0, 'image']);
    expect(parseIssuePath('/labels/a~1b~0c')).toEqual(['labels', 'a/b~c']);
    expect(parseIssuePath('')).toEqual([]);
  });

  it('writes segments as a JSON pointer', () => {
    expect(toPointer(['spec', 'containers', 0, 'ports', 1])).toBe('/spec/containers/0/ports/1');
    expect(toPointer(['selectors', 'a/b~c'])).toBe('/selectors/a~1b~0c');
    expect(toPointer([])).toBe('');
  });
});

describe('placeIssues', () => {
  it("puts each of the hub's issues on the line of the field it names", () => {
    const parsed = parseSpecText(SPEC);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    // The issues the hub's validator gives for this document, not hand-written ones.
    const result = validateAppSpec(parsed.value);
    if (result.ok) throw new Error('the spec should be invalid');
    const placed = placeIssues(SPEC, result.issues);
    expect(placed.map((p) => [p.pointer, p.line])).toEqual([
      ['/spec/containers/0/ports/1', 11],
      ['/spec/containers/1/image', 12],
    ]);
    expect(placed[1]).toMatchObject({ path: 'spec.containers[1].image', message: 'is required' });
  });

  it('puts a field that is not there on its nearest parent that is, and the whole document on the first line of its content (after the comment)', () => {
    const placed = placeIssues(SPEC, [
      { path: 'spec.update.strategy', message: 'x' },
      { path: 'spec.containers[5].image', message: 'x' },
      { path: 'scheduling.selectors.site', message: 'x' },
      { path: '', message: 'must be object' },
    ]);
    expect(placed.map((p) => p.line)).toEqual([5, 6, 4, 2]);
  });

  it('finds keys in JSON text too', () => {
    const json = '{\n  "name": "Bad Name",\n  "spec": {\n    "containers": []\n  }\n}';
    expect(
      placeIssues(json, [
        { path: 'name', message: 'x' },
        { path: 'spec.containers', message: 'x' },
      ]).map((p) => p.line),
    ).toEqual([2, 4]);
  });
});

describe('parseSpecText', () => {
  it('answers the object that apps.apply sends', () => {
    const parsed = parseSpecText('name: web\nscheduling: { devices: [d1] }\n');
    expect(parsed).toEqual({ ok: true, value: { name: 'web', scheduling: { devices: ['d1'] } } });
  });

  it('answers a syntax error at its line, with nothing to send', () => {
    const parsed = parseSpecText('name: web\nspec:\n  containers: [a, b\n  other: 1\n');
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors.length).toBeGreaterThan(0);
    expect(parsed.errors[0]?.line).toBeGreaterThanOrEqual(3);
    expect(parsed.errors[0]?.message).not.toBe('');
  });

  it('answers a tab-indented line as an error on that line', () => {
    const parsed = parseSpecText('name: web\nspec:\n\tcontainers: []\n');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.errors[0]?.line).toBe(3);
  });
});

describe('specToText', () => {
  it('writes a spec as YAML that reads back as the same spec, long lines unfolded', () => {
    const command = `echo ${'x'.repeat(200)}`;
    const spec = {
      name: 'web',
      scheduling: { selectors: { site: 'roof' } },
      spec: { containers: [{ name: 'a', image: 'i', command: ['sh', '-c', command] }] },
    };
    const text = specToText(spec);
    expect(text.split('\n').some((line) => line.includes(command))).toBe(true);
    expect(parseSpecText(text)).toEqual({ ok: true, value: spec });
  });
});
