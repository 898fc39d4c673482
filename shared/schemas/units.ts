/**
 * Duration and size strings as users write them in Docker and Kubernetes
 * files ("5s", "1m30s" is not supported: one number, one unit; "128m", "1g", "64Mi").
 * The patterns live beside their parsers so a string the schema accepts always parses.
 */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?([bkmgKMG]|[kmgKMG][bB]|[KMG]i)?$';

const durationRe = new RegExp(DURATION_PATTERN);
const sizeRe = new RegExp(SIZE_PATTERN);

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "5s" → 5000. Throws on a string the schema would reject. */
export function parseDuration(text: string): number {
  const match = durationRe.exec(text);
  if (!match) throw new Error(`invalid duration "${text}": expected a number and one of ms, s, m, h, d`);
  const unit = text.endsWith('ms') ? 'ms' : text.slice(-1);
  return Math.round(Number.parseFloat(text) * (DURATION_MS[unit] ?? 1));
}

/**
 * "128m" → 134217728. Units are binary, as Docker's `--memory 128m` and
 * Kubernetes' `128Mi` both mean 128 × 2^20 bytes; a bare number is bytes.
 */
export function parseSize(text: string): number {
  if (!sizeRe.test(text)) throw new Error(`invalid size "${text}": expected e.g. 512k, 64m, 1g or 64Mi`);
  const unit = (/[a-zA-Z]+$/.exec(text)?.[0] ?? '').toLowerCase().replace(/i?b?$/, '');
  const power = { '': 0, k: 1, m: 2, g: 3 }[unit] ?? 0;
  return Math.round(Number.parseFloat(text) * 1024 ** power);
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** Binary units with one decimal: 512 → "512 B", 1536 → "1.5 KiB", 268435456 → "256.0 MiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} B`;
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (Math.round(value) < 1024) return `${sign}${Math.round(value)} B`;
  let unit = 0;
  value /= 1024;
  // Promote when rounding to one decimal would print "1024.0 KiB".
  while (unit < UNITS.length - 1 && Math.round(value * 10) / 10 >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${sign}${value.toFixed(1)} ${UNITS[unit]}`;
}

/** The largest whole unit that `parseDuration` reads back exactly: 604800000 → "7d", 250 → "250ms". */
export function durationText(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** The largest whole binary unit that `parseSize` reads back exactly: 268435456 → "256m", 1000 → "1000". */
export function sizeText(bytes: number): string {
  for (const [unit, power] of [
    ['g', 3],
    ['m', 2],
    ['k', 1],
  ] as const) {
    const size = 1024 ** power;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}`;
}
