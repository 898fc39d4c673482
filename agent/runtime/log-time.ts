/**
 * Log timestamps as engines write them: RFC 3339 with up to nanosecond
 * precision (Docker: "2024-05-01T12:00:00.123456789Z"). Resuming a follow
 * without repeating or losing a line needs all nine digits, which a JS Date
 * would round away, hence bigint nanoseconds.
 */
const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the Unix epoch; undefined for anything that is not an RFC 3339 timestamp. */
export function timestampNanos(ts: string): bigint | undefined {
  const m = RFC3339.exec(ts);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Docker's `since` query value for a timestamp: "seconds.nanoseconds", which the engine reads at full precision. */
export function dockerSince(nanos: bigint): string {
  const seconds = nanos / 1_000_000_000n;
  const rest = nanos % 1_000_000_000n;
  return `${seconds}.${rest.toString().padStart(9, '0')}`;
}

/** An RFC 3339 UTC timestamp with nine fractional digits for `nanos`. */
export function formatNanos(nanos: bigint): string {
  const ms = nanos / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // …T12:00:00.123Z
  return `${iso.slice(0, 19)}.${(nanos % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}
