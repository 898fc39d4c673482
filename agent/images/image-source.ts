/**
 * What the parts that need an image hold of the image puller (image-puller.ts),
 * and what it holds of the agent's own download: the seams, so the reconcile
 * loop, the job runner and the upgrader need not know how an image comes.
 */
import type { ImageDownloadVia, RegistryAuth } from '../../shared/index.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { PullOwner } from './download-report.js';
import type { FetchEvent, Pacer } from './types.js';

export type { PullOwner } from './download-report.js';

/** What the parts that need an image hold: the puller, or the engine's pull alone (enginePulls). */
export interface ImageSource {
  /** Resolves once the engine holds the image; rejects with the reason it could not be had, or the signal's. */
  pull(request: PullRequest): Promise<void>;
  /** How the image's download goes (`12.3 MiB of 48.0 MiB at 250.0 KiB/s`), for an app's phase message. */
  progress?(image: string): string | undefined;
}

/** Every image by the engine's own pull: for parts built without a puller (tests, the fleet simulator). */
export function enginePulls(runtime: Pick<ContainerRuntime, 'pull'>): ImageSource {
  return { pull: ({ image, auth, signal }) => runtime.pull(image, auth, signal) };
}

export interface PullRequest {
  image: string;
  auth?: RegistryAuth;
  owner: PullOwner;
  /** `engine`: the engine's own pull (`spec.update.pull: engine`). Default `agent`. */
  via?: ImageDownloadVia;
  /** With `via: 'engine'`, why, for the report and the event (default: the app asks for it). */
  why?: string;
  signal: AbortSignal;
}

/** An image the desired state asks the device to fetch ahead of time (a DesiredApp's `prefetch`). */
export interface PrefetchRequest {
  image: string;
  auth?: RegistryAuth;
  owner: PullOwner;
  via?: ImageDownloadVia;
}

export interface FetchOptions {
  signal: AbortSignal;
  pace: Pacer;
  onEvent: (event: FetchEvent) => void;
}

/** The agent's own download of one image into the engine (fetch-image.ts with its store, session and engine bound). */
export type FetchImage = (image: string, auth: RegistryAuth | undefined, options: FetchOptions) => Promise<void>;
