/**
 * An app's scheduling in one line, as `flotilla get apps` writes it
 * (cli/commands/get.ts formatScheduling): `devices: a,b`, the selector as
 * `k=v,k2=v2`, `<all>` for an empty selector;
 * with both, a device must be listed *and* match, so both are shown.
 */
import type { Scheduling } from '../../../../shared/schemas/spec.js';

export function formatScheduling(scheduling: Scheduling): string {
  const parts: string[] = [];
  if (scheduling.devices) parts.push(`devices: ${scheduling.devices.join(',')}`);
  if (scheduling.selectors) {
    const entries = Object.entries(scheduling.selectors).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const selector = entries.length === 0 ? '<all>' : entries.map(([key, value]) => `${key}=${value}`).join(',');
    if (!(selector === '<all>' && scheduling.devices)) parts.push(selector);
  }
  return parts.length === 0 ? '<none>' : parts.join('; ');
}
