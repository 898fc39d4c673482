/**
 * One device of the image-download tests as an operator drives it: a real
 * agent process (its own data dir and container name prefix), an app of one
 * container from a test image (test/e2e/support/big-image.ts) applied with
 * `flotilla apply`, and what the operator then reads: `flotilla describe
 * device` (the app's phase, the `images` and `downloads` of the state report),
 * `flotilla events`, the app's answer on its published port, and the engine's
 * image ID.
 */
import type { ImageDownload } from '../../../shared/index.js';
import type { EventRecord } from '../../../shared/telemetry-api.js';
import { freePort } from '../../support/ports.js';
import { type AgentProcess, type HubProcess, startAgentProcess } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import type { BigImage } from './big-image.js';
import { DeviceApps } from './device-apps.js';
import { docker, removeContainersAndVolumes } from './docker-cli.js';
import { describeDevice, storedEvents } from './observe.js';

/** Generous: 50 MB through a proxy that cuts it 25 times, then `docker load`, on a loaded CI machine. */
export const DOWNLOAD_TIMEOUT_MS = 150_000;

export class DownloadDevice {
  readonly agent: AgentProcess;
  readonly apps: DeviceApps;
  readonly app: string;
  private port: number | undefined;

  constructor(
    private readonly hub: HubProcess,
    readonly deviceId: string,
    agentArgs: string[] = [],
    hubUrl?: string,
  ) {
    const at = hubUrl ? { ...hub, mqttUrl: hubUrl } : hub;
    this.agent = startAgentProcess(at, deviceId, {}, { namePrefix: `${deviceId}.`, extraArgs: agentArgs });
    this.apps = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 0 } });
    this.app = deviceId;
  }

  async registered(): Promise<void> {
    await waitFor('the agent to register', async () => (await describeDevice(this.hub, this.deviceId)).online, { timeoutMs: 30_000 });
  }

  /** Applies the app with `image` (a reference to a test image, maybe through a proxy) on a fresh published port. */
  async deploy(image: string, extra: Record<string, unknown> = {}): Promise<void> {
    this.port ??= await freePort();
    await this.apps.apply(this.app, { image, ports: [`127.0.0.1:${this.port}:80`], ...extra });
  }

  /** What the app's container serves on "/", or undefined while nothing answers. */
  async answer(): Promise<string | undefined> {
    if (this.port === undefined) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/`, { signal: AbortSignal.timeout(5_000) });
      return res.ok ? (await res.text()).trim() : undefined;
    } catch {
      return undefined;
    }
  }

  /** Waits until the device reports the app running and its container serves the sums of the image's data. */
  async running(image: BigImage, timeoutMs = DOWNLOAD_TIMEOUT_MS): Promise<void> {
    try {
      await waitFor(
        `${this.app} running and serving its data's sums`,
        async () => (await this.apps.state(this.app))?.phase === 'running' && (await this.answer()) === image.expectedIndex,
        { timeoutMs, intervalMs: 500 },
      );
    } catch (err) {
      // What the device said and did is the first thing to read when it never got there.
      const view = await describeDevice(this.hub, this.deviceId).catch(() => undefined);
      const app = view?.apps.find((a) => a.name === this.app);
      const said = JSON.stringify({ phase: app?.phase, message: app?.message, images: view?.images, downloads: view?.downloads });
      throw new Error(`${(err as Error).message}\ndevice: ${said}\nagent: ${this.agent.proc.output.slice(-3000)}`, { cause: err });
    }
  }

  /** The device's report of one image (the entry for `reference`), as `describe device -o json` shows it. */
  async download(reference: string): Promise<ImageDownload | undefined> {
    return (await describeDevice(this.hub, this.deviceId)).images?.find((entry) => entry.image === reference);
  }

  async events(type?: string): Promise<EventRecord[]> {
    const all = await storedEvents(this.hub, this.deviceId);
    return type === undefined ? all : all.filter((event) => event.type === type);
  }

  /** The image ID the engine holds under `reference`, or undefined when it holds none. */
  async imageId(reference: string): Promise<string | undefined> {
    return docker('image', 'inspect', '--format', '{{.Id}}', reference).catch(() => undefined);
  }

  /** Removes the device's containers and the files written; the hub's stopAll() stops the agent. */
  async remove(): Promise<void> {
    // Every app the test gave this device, not only the one it downloads for.
    await removeContainersAndVolumes(`flotilla.device=${this.deviceId}`);
    this.apps.removeFiles();
  }
}

/** `blob sha256:… resumed at byte N`: each resumed event's digest and offset. */
export function resumedOffsets(events: readonly EventRecord[]): { digest: string; offset: number }[] {
  return events.flatMap((event) => {
    const m = /blob (sha256:[0-9a-f]{64}) resumed at byte (\d+)/.exec(event.message);
    return event.type === 'image-download-resumed' && m ? [{ digest: m[1]!, offset: Number(m[2]) }] : [];
  });
}
