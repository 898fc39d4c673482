/** A benchmark's integer flag, or exit 2 with the flag's name (as a CLI would). */
export function positiveInt(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${value})`);
    process.exit(2);
  }
  return n;
}
