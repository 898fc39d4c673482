/**
 * MetricsHistory.reseed (broker/fleet/history.ts): a replica's sparklines reloaded from the shared
 * database when its fleet page is watched again take the stored lines of the devices read, keep
 * the others, and still count up, so the fleet view sends the changed rows.
 */
import { describe, expect, it } from 'vitest';
import { MetricsHistory } from '../../broker/fleet/history.js';

const host = (cpuPercent: number) => ({ cpuPercent, memUsedBytes: 1, memTotalBytes: 4, disks: [] });

describe('MetricsHistory.reseed', () => {
  it('replaces the lines of the devices read, keeps the rest, and still counts up', () => {
    const history = new MetricsHistory(3);
    history.record('a', host(1));
    history.record('a', host(2));
    history.record('b', host(7));
    history.reseed([
      { device: 'a', host: host(3) },
      { device: 'a', host: host(4) },
      { device: 'a', host: host(5) },
      { device: 'a', host: host(6) },
      { device: 'c', host: host(9) },
    ]);
    expect(history.get('a')).toEqual({ cpu: [4, 5, 6], mem: [25, 25, 25], disk: [], samples: 6 });
    expect(history.get('b')).toEqual({ cpu: [7], mem: [25], disk: [], samples: 1 });
    expect(history.get('c')).toEqual({ cpu: [9], mem: [25], disk: [], samples: 1 });
  });
});
