/**
 * Why the hub refuses a job's scheduling, in words an operator reads (jobs.ts
 * select): the ids it names that the hub does not know, and a selection that
 * matches no device. Pure: the spec's scheduling and what the hub knows in.
 *
 * A job's devices are fixed when it is made, so an id the hub does not know
 * could never run it: the job is refused rather than made for the rest.
 */
import type { Scheduling } from '../../shared/index.js';

/** The ids `scheduling.devices` names that are not among `known`, in the spec's order. */
export function unknownDevices(scheduling: Scheduling, known: ReadonlySet<string>): string[] {
  return (scheduling.devices ?? []).filter((id) => !known.has(id));
}

export function describeUnknown(unknown: readonly string[]): string {
  return unknown.length === 1
    ? `unknown device ${unknown[0]}: register it first (flotilla token create) or leave it out`
    : `unknown devices ${unknown.join(', ')}: register them first (flotilla token create) or leave them out`;
}

/** Why a scheduling selected none of the `known` devices the hub has (the verb agrees with what the spec names). */
export function describeNoMatch(scheduling: Scheduling, known: number): string {
  if (known === 0) return 'the hub knows no device yet (flotilla token create registers one)';
  const parts: { text: string; plural: boolean }[] = [];
  if (scheduling.devices) {
    const { devices } = scheduling;
    parts.push(
      devices.length === 0
        ? { text: 'an empty devices list', plural: false }
        : { text: `${devices.length === 1 ? 'device' : 'devices'} ${devices.join(', ')}`, plural: devices.length > 1 },
    );
  }
  if (scheduling.selectors) {
    const selectors = Object.entries(scheduling.selectors).map(([key, value]) => `${key}=${value}`);
    parts.push(
      selectors.length === 0
        ? { text: 'selectors {} (every device)', plural: true }
        : { text: `${selectors.length === 1 ? 'selector' : 'selectors'} ${selectors.join(', ')}`, plural: selectors.length > 1 },
    );
  }
  if (parts.length === 0) return 'a scheduling with neither selectors nor devices matches no device';
  const subject = parts.map((part) => part.text).join(' and ');
  const verb = parts.length > 1 || parts[0]!.plural ? 'do not match' : 'does not match';
  const among = known === 1 ? 'the one device the hub knows' : `any of the ${known} devices the hub knows`;
  return `${subject} ${verb} ${among} (flotilla get devices shows their labels)`;
}
