/**
 * One app across a labelled fleet, as an operator drives it in e2e tests: `flotilla apply -f` of a
 * one-container spec (optionally with a rollout), the app's revision and phase on every device as
 * the hub shows them, and the image each real agent's container runs as Docker shows it. The hub
 * is asked through a `cli` function, so a test of replicas can ask any of them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import type { DeviceView } from '../../../shared/index.js';
import type { RunResult } from '../../support/processes.js';
import { containerIds, inspect } from './docker-cli.js';

export type HubCli = (...args: string[]) => Promise<RunResult>;

export class FleetApp {
  constructor(
    readonly name: string,
    private readonly selectors: Record<string, string>,
    /** Where the spec files go. */
    private readonly dir: string,
    private readonly update: object,
  ) {}

  /** Applies `image` (and a rollout, if given); fails the test if the CLI says anything on stderr. */
  async apply(cli: HubCli, image: string, rollout?: object): Promise<void> {
    const file = join(this.dir, `${this.name}-${Date.now()}.yaml`);
    const spec = { containers: [{ name: 'web', image }], update: this.update, ...(rollout ? { rollout } : {}) };
    writeFileSync(file, stringify({ name: this.name, scheduling: { selectors: this.selectors }, spec }));
    const result = await cli('apply', '-f', file);
    expect(result.stderr).toBe('');
  }

  /** `revision phase` (or `none`) of this app on each of `devices`, as `flotilla get devices` shows them. */
  async onDevices(cli: HubCli, devices: readonly string[]): Promise<Record<string, string>> {
    const { items } = JSON.parse((await cli('get', 'devices', '-o', 'json')).stdout) as { items: DeviceView[] };
    return Object.fromEntries(
      items
        .filter((d) => devices.includes(d.id))
        .map((d) => {
          const state = d.apps.find((a) => a.name === this.name);
          return [d.id, state ? `${state.revision} ${state.phase}` : 'none'];
        }),
    );
  }

  /** The image each real agent's running container of this app runs, per Docker, by device. */
  async realImages(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const id of await containerIds(`flotilla.app=${this.name}`)) {
      const c = await inspect(id);
      if (c.State.Running) out[c.Config.Labels['flotilla.device']!] = c.Config.Image;
    }
    return out;
  }
}

/** The same value for every device: what `onDevices` answers once the fleet agrees. */
export function sameEverywhere(devices: readonly string[], value: string): Record<string, string> {
  return Object.fromEntries(devices.map((id) => [id, value]));
}
