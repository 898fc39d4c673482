/** The label edits an operator types: `k=v, k2=v2` to set, `k, k2` to remove. */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseLabelSet(text: string): Parsed<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const item of splitList(text)) {
    const at = item.indexOf('=');
    if (at <= 0) return { ok: false, error: `"${item}" is not key=value` };
    labels[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return { ok: true, value: labels };
}

export function parseLabelKeys(text: string): string[] {
  return splitList(text);
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
