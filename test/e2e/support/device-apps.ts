/**
 * One device's apps as an operator drives them in e2e tests: write a spec,
 * `flotilla apply -f` it, read the device's report with `flotilla describe`,
 * and ask the app itself over its published port.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import type { AppState, DeviceView } from '../../../shared/index.js';
import type { HubProcess } from '../../support/processes.js';
import { runCli, scratchDir } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';

export class DeviceApps {
  /** Removed by stopAll() too, for the files that never call removeFiles(). */
  private readonly dir = scratchDir('flotilla-e2e-');
  /** Every app applied, for cleanup. */
  readonly names: string[] = [];

  constructor(
    private readonly hub: () => HubProcess,
    readonly deviceId: string,
    private readonly defaults: { update: object },
  ) {}

  /** Applies a one-container app `web` scheduled on this device; fails the test if the CLI refuses. */
  async apply(app: string, container: { image: string } & Record<string, unknown>, update: object = {}): Promise<void> {
    if (!this.names.includes(app)) this.names.push(app);
    const file = join(this.dir, `${app}-${Date.now()}.yaml`);
    const spec = { name: 'web', ...container };
    writeFileSync(
      file,
      stringify({
        name: app,
        scheduling: { devices: [this.deviceId] },
        spec: { containers: [spec], update: { ...this.defaults.update, ...update } },
      }),
    );
    const result = await runCli(['--hub', this.hub().url, 'apply', '-f', file]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }

  /** Removes the spec files written so far (test cleanup). */
  removeFiles(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async state(app: string): Promise<AppState | undefined> {
    const out = await runCli(['--hub', this.hub().url, 'describe', 'device', this.deviceId, '-o', 'json']);
    return (JSON.parse(out.stdout) as DeviceView).apps.find((a) => a.name === app);
  }

  /** Deploys `image` on `port` and waits until the device runs it past its gate and it answers `text`. */
  async deploy(app: string, image: string, port: number, text: string, extra: Record<string, unknown> = {}): Promise<void> {
    await this.apply(app, { image, ports: [`127.0.0.1:${port}:80`], ...extra });
    await waitFor(`${app} running`, async () => (await this.state(app))?.phase === 'running' && (await answer(port)) === text, {
      timeoutMs: 60_000,
    });
  }
}

/** What the test web images serve on "/": "v1" or "v2". */
export async function answer(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/`)).text().then((t) => t.trim());
}
