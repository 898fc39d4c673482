/**
 * The hottest thermal zone under /sys/class/thermal, where the kernel exposes
 * any (Raspberry Pis and most ARM boards do; VMs and many x86 servers do not,
 * and then the sample simply has no temperature).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readKernelFile } from './kernel-file.js';

/**
 * `thermal_zoneN/temp` holds millidegrees Celsius. Readings outside a
 * physical range are sensors reporting an error or "not connected" (e.g.
 * -273000 or 255000 on some boards) and are ignored.
 */
export function parseZoneTemperature(text: string): number | undefined {
  const milli = Number(text.trim());
  if (!Number.isFinite(milli) || text.trim() === '') return undefined;
  const celsius = milli / 1000;
  return celsius > -60 && celsius < 200 ? celsius : undefined;
}

/** The highest of the readings, or undefined when none is valid. */
export function hottest(readings: readonly (number | undefined)[]): number | undefined {
  let max: number | undefined;
  for (const celsius of readings) if (celsius !== undefined && (max === undefined || celsius > max)) max = celsius;
  return max === undefined ? undefined : Math.round(max * 10) / 10;
}

/** Reads every zone under `thermalDir` (normally /sys/class/thermal); undefined when there is none. */
export function readHottestZone(thermalDir: string): number | undefined {
  let zones: string[];
  try {
    zones = readdirSync(thermalDir).filter((name) => name.startsWith('thermal_zone'));
  } catch {
    return undefined;
  }
  const readings = zones.map((zone) => {
    try {
      return parseZoneTemperature(readKernelFile(join(thermalDir, zone, 'temp')));
    } catch {
      // A zone whose sensor is asleep fails its read with EAGAIN/ENODATA: skip it.
      return undefined;
    }
  });
  return hottest(readings);
}
