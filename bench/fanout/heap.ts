/**
 * What a V8 heap snapshot (`bench/fanout.ts --heap-snapshot DIR`) holds, by
 * kind: the self size and count of objects grouped by constructor (closures
 * by function name, strings, arrays and V8's internal kinds by type), largest
 * first, with the size per device when told how many devices were connected.
 * Self sizes only (no dominator tree): what a Map holds is the Map's backing
 * array under "(array) …", not the Map.
 *
 *   npx tsx bench/fanout/heap.ts FILE.heapsnapshot [--top 40] [--devices 10000] [--owners GROUP]
 *
 * `--owners GROUP` (a group as printed, e.g. "(strings)") lists instead who
 * holds that group's objects: each object's retainers by their own group and
 * the edge's name, weighted by the object's size (an object with two
 * retainers counts for both).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const { values: args, positionals } = parseArgs({
  options: { top: { type: 'string', default: '40' }, devices: { type: 'string' }, owners: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx bench/fanout/heap.ts FILE.heapsnapshot [--top N] [--devices N]');
  process.exit(2);
}

const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const stride = fields.length;
const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];

function groupOf(i: number): string {
  const type = types[snap.nodes[i + typeAt]!]!;
  const name = snap.strings[snap.nodes[i + nameAt]!]!;
  if (type === 'object' || type === 'closure' || type === 'native') return `${name} (${type})`;
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(strings)';
  return `(${type}) ${name.slice(0, 60)}`;
}

if (args.owners !== undefined) {
  const edgeFields = snap.snapshot.meta.edge_fields;
  const edgeTypes = snap.snapshot.meta.edge_types[0];
  const edgeStride = edgeFields.length;
  const [edgeTypeAt, edgeNameAt, toAt] = [edgeFields.indexOf('type'), edgeFields.indexOf('name_or_index'), edgeFields.indexOf('to_node')];
  const countAt = fields.indexOf('edge_count');
  const owners = new Map<string, number>();
  let edge = 0;
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const ownerGroup = groupOf(i);
    for (let k = 0; k < snap.nodes[i + countAt]!; k++, edge += edgeStride) {
      const edgeType = edgeTypes[snap.edges[edge + edgeTypeAt]!]!;
      if (edgeType === 'weak') continue;
      const to = snap.edges[edge + toAt]!;
      if (groupOf(to) !== args.owners) continue;
      const named = edgeType !== 'element' && edgeType !== 'hidden';
      const key = `${ownerGroup} .${named ? snap.strings[snap.edges[edge + edgeNameAt]!]! : `[${edgeType}]`}`;
      owners.set(key, (owners.get(key) ?? 0) + snap.nodes[to + sizeAt]!);
    }
  }
  for (const [key, size] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
    console.log(`${(size / 1024 / 1024).toFixed(2).padStart(8)} MiB  ${key}`);
  }
  process.exit(0);
}

const groups = new Map<string, { size: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += stride) {
  const size = snap.nodes[i + sizeAt]!;
  const key = groupOf(i);
  const group = groups.get(key) ?? { size: 0, count: 0 };
  group.size += size;
  group.count++;
  groups.set(key, group);
  total += size;
}

const devices = args.devices === undefined ? undefined : Number(args.devices);
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
console.log(
  `${mib(total)} MiB in ${(snap.nodes.length / stride).toLocaleString()} objects${devices ? `, ${(total / 1024 / devices).toFixed(1)} KiB per device` : ''}`,
);
for (const [key, { size, count }] of [...groups].sort((a, b) => b[1].size - a[1].size).slice(0, Number(args.top))) {
  const perDevice = devices ? `  ${(size / devices).toFixed(0).padStart(6)} B/dev  ${(count / devices).toFixed(1).padStart(6)}/dev` : '';
  console.log(`${mib(size).padStart(8)} MiB ${String(count).padStart(9)}${perDevice}  ${key}`);
}
