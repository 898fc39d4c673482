/**
 * Seeded random and malformed MQTT payloads for the fuzz tests: the same seed
 * gives the same payloads, so a failure is replayed with `FUZZ_SEED=<seed>`.
 *
 * Each payload starts from a well-formed message of its channel (a state
 * report, a log batch, a desired document, an API request…) and is then
 * broken in one of several ways: cut short, bytes of junk, the wrong shape
 * (fields of the wrong type, missing, extra), extreme values, huge strings,
 * deep nesting, prototype-polluting keys, binary, empty.
 */

/** mulberry32: a tiny PRNG with a 32-bit state; good enough to explore, and reproducible. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** In [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

export const FUZZ_CHANNELS = [
  'desired',
  'commands',
  'replies',
  'state',
  'status',
  'events',
  'logs',
  'metrics',
  'request',
  'response',
] as const;
export type FuzzChannel = (typeof FUZZ_CHANNELS)[number];

export interface FuzzPayload {
  /** How it was broken (for the summary and for replaying one). */
  kind: string;
  payload: Buffer;
}

const API_METHODS = [
  'apps.list',
  'apps.get',
  'apps.apply',
  'apps.delete',
  'devices.list',
  'devices.get',
  'devices.label',
  'rollouts.status',
  'logs.query',
  'metrics.query',
  'events.query',
  'secrets.set',
  'tokens.create',
  'no.such.method',
  '',
  '__proto__',
];

const now = () => new Date(Date.UTC(2026, 0, 1)).toISOString();

/** A well-formed message of each channel, as the agent, the dispatcher or a service would send it. */
export function template(r: Rng, channel: FuzzChannel, deviceId: string): unknown {
  const container = { name: 'server', id: r.bytes(8).toString('hex'), image: 'registry.local/web:1.0', state: 'running', restartCount: 0 };
  switch (channel) {
    case 'desired':
      return {
        deviceId,
        revision: r.int(1, 50),
        issuedAt: now(),
        apps: [{ name: `fz${r.int(0, 9)}`, revision: 1, containers: [{ name: 'server', image: 'registry.local/fuzz:1' }] }],
      };
    case 'commands':
      return { id: `c${r.int(0, 1e6)}`, type: 'restart', args: { app: 'web' }, expiresAt: now() };
    case 'replies':
      return { commandId: `c${r.int(0, 1e6)}`, ok: r.chance(0.5), result: { n: 1 } };
    case 'state':
      return {
        deviceId,
        observedRevision: r.int(0, 5),
        reportedAt: now(),
        host: { hostname: 'h', os: 'linux', arch: 'x64', agentVersion: '0.1.0' },
        labels: { zone: 'a' },
        apps: [{ name: 'web', revision: 1, phase: 'running', containers: [container] }],
      };
    case 'status':
      return { online: r.chance(0.5), at: now() };
    case 'events':
      return { seq: r.int(0, 1e9), ts: now(), type: 'container-started', app: 'web', container: 'server', message: 'started' };
    case 'logs':
      return {
        seq: r.int(0, 1e9),
        lines: Array.from({ length: r.int(1, 5) }, () => ({ app: 'web', container: 'server', stream: 'stdout', ts: now(), line: 'hello' })),
      };
    case 'metrics':
      return {
        seq: r.int(0, 1e9),
        ts: now(),
        host: {
          cpuPercent: 1,
          cpuCount: 2,
          load1: 0,
          load5: 0,
          load15: 0,
          memTotalBytes: 1e9,
          memAvailableBytes: 5e8,
          memUsedBytes: 5e8,
          disks: [{ name: 'root', path: '/', usedBytes: 1, freeBytes: 1, totalBytes: 2 }],
          netRxBytes: 0,
          netTxBytes: 0,
          uptimeSeconds: 1,
        },
        containers: [],
      };
    case 'request':
      return {
        correlationId: `q${r.int(0, 1e6)}`,
        method: r.pick(API_METHODS),
        params: r.pick([
          {},
          { name: `fz-${r.int(0, 99)}` },
          { name: `fz-${r.int(0, 99)}`, spec: { containers: [{ name: 'server', image: 'registry.local/fuzz:1' }] } },
          { id: `nope-${r.int(0, 99)}`, labels: { a: 'b' } },
          { device: 'nope', limit: -1, since: 'yesterday' },
        ]),
      };
    case 'response':
      return { correlationId: `q${r.int(0, 1e6)}`, ok: true, result: { items: [] } };
  }
}

/** A random JSON value, up to `depth` levels of containers. */
function randomValue(r: Rng, depth = 3): unknown {
  const k = r.int(0, depth > 0 ? 9 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, Number.MIN_VALUE, 4294967296]);
    case 3:
      return r.pick([
        '',
        ' ',
        'null',
        '0',
        '1e999',
        '\u0000',
        '\u202e',
        '💥'.repeat(r.int(1, 50)),
        '../../etc/passwd',
        '%s%n',
        '$' + '{x}',
      ]);
    case 4:
      return r.bytes(r.int(0, 40)).toString('latin1');
    case 5:
      return r.pick(['2026-13-45T99:99:99Z', '9999-12-31T23:59:59.999999999Z', 'not a date', '1970-01-01T00:00:00Z']);
    case 6:
      return r.int(-1e6, 1e6);
    case 7:
    case 8:
      return Array.from({ length: r.int(0, 4) }, () => randomValue(r, depth - 1));
    default: {
      const obj: Record<string, unknown> = {};
      for (let i = r.int(0, 4); i > 0; i--)
        obj[r.pick(['a', 'name', 'id', 'apps', 'seq', 'lines', 'method', '__proto__', 'constructor'])] = randomValue(r, depth - 1);
      return obj;
    }
  }
}

/** Every (parent, key) pair in a JSON value, to mutate one. */
function slots(value: unknown, out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      slots(v, out);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key: k });
      slots(v, out);
    }
  }
  return out;
}

function setSlot(slot: { parent: Record<string, unknown> | unknown[]; key: string | number }, value: unknown) {
  (slot.parent as Record<string | number, unknown>)[slot.key] = value;
}

function deep(r: Rng): string {
  const depth = r.pick([100, 1_000, 10_000, 100_000]);
  return r.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** The kinds of breakage, with how often each is chosen (they sum to 100). */
const KINDS: [string, number][] = [
  ['bad-json', 18],
  ['wrong-shape', 33],
  ['extreme-values', 8],
  ['well-formed', 8],
  ['huge-string', 1],
  ['deep-nesting', 3],
  ['proto', 5],
  ['binary', 17],
  ['empty', 3],
  ['json-but-not-object', 4],
];

/** One payload for `channel`: mostly broken, sometimes well-formed. `maxHugeBytes` bounds the huge strings. */
export function fuzzPayload(r: Rng, channel: FuzzChannel, deviceId: string, maxHugeBytes = 900 * 1024): FuzzPayload {
  let roll = r.int(0, 99);
  let kind = KINDS[0]![0];
  for (const [name, weight] of KINDS) {
    if (roll < weight) {
      kind = name;
      break;
    }
    roll -= weight;
  }
  const base = template(r, channel, deviceId);
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  switch (kind) {
    case 'bad-json': {
      const text = JSON.stringify(base);
      return {
        kind,
        payload: Buffer.from(
          r.pick([
            () => text.slice(0, r.int(0, text.length - 1)),
            () => `${text}${r.pick(['}', ']', ',', 'x', '\u0000'])}`,
            () => text.replace(/"/g, "'"),
            () => text.replace(/:/, ''),
            () => Array.from({ length: r.int(1, 200) }, () => r.pick([...'{}[]":,0123456789.-+eEtruefalsn \\'])).join(''),
            () => `\uFEFF${text}`,
            () => 'NaN',
          ])(),
        ),
      };
    }
    case 'wrong-shape': {
      const all = slots(base);
      for (let i = r.int(1, 3); i > 0 && all.length > 0; i--) {
        const slot = r.pick(all);
        if (r.chance(0.3) && !Array.isArray(slot.parent)) delete (slot.parent as Record<string, unknown>)[slot.key as string];
        else setSlot(slot, randomValue(r));
      }
      if (r.chance(0.3) && base && typeof base === 'object') (base as Record<string, unknown>)[`extra${r.int(0, 9)}`] = randomValue(r);
      return { kind, payload: json(base) };
    }
    case 'extreme-values': {
      for (const slot of slots(base)) {
        const current = (slot.parent as Record<string | number, unknown>)[slot.key];
        if (typeof current === 'number') setSlot(slot, r.pick([-1, 1e308, 2 ** 64, -0, 0.5, 2 ** 31]));
        else if (typeof current === 'string' && r.chance(0.5))
          setSlot(slot, r.pick(['', '💥', 'a'.repeat(r.int(100, 5000)), '\u0000\u0001']));
      }
      return { kind, payload: json(base) };
    }
    case 'well-formed':
      return { kind, payload: json(base) };
    case 'huge-string': {
      const size = r.pick([64 * 1024, 300 * 1024, maxHugeBytes]);
      const all = slots(base).filter((s) => typeof (s.parent as Record<string | number, unknown>)[s.key] === 'string');
      if (all.length > 0) setSlot(r.pick(all), 'x'.repeat(size));
      else return { kind, payload: Buffer.alloc(size, 0x61) };
      return { kind, payload: json(base) };
    }
    case 'deep-nesting': {
      const all = slots(base);
      const text = JSON.stringify(base);
      if (all.length === 0 || r.chance(0.3)) return { kind, payload: Buffer.from(deep(r)) };
      // Deep inside an otherwise well-formed message: `"apps":[[[[…]]]]`.
      const marker = '"__deep__"';
      setSlot(r.pick(all), '__deep__');
      return { kind, payload: Buffer.from(JSON.stringify(base).replace(marker, deep(r)) || text) };
    }
    case 'proto': {
      const text = JSON.stringify(base);
      const poison = r.pick([
        '"__proto__":{"polluted":true,"isAdmin":true}',
        '"constructor":{"prototype":{"polluted":true}}',
        '"__proto__":null',
        '"toString":1,"hasOwnProperty":"x","valueOf":[]',
      ]);
      return { kind, payload: Buffer.from(text.startsWith('{') && text.length > 2 ? `{${poison},${text.slice(1)}` : `{${poison}}`) };
    }
    case 'binary':
      return {
        kind,
        payload: r.pick([
          () => r.bytes(r.int(1, 2048)),
          () => Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]),
          () => Buffer.concat([Buffer.from('{"a":"'), r.bytes(64), Buffer.from('"}')]),
          () => Buffer.from(JSON.stringify(base), 'utf16le'),
          () => Buffer.alloc(r.int(1, 512)),
        ])(),
      };
    case 'empty':
      return { kind, payload: Buffer.alloc(0) };
    default:
      return { kind, payload: json(r.pick([null, true, 0, -1, 'str', [], [base], [[[]]], 1e308])) };
  }
}
