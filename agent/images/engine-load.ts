/**
 * The engine's side of an agent-fetched image (`EngineImages`, types.ts) over
 * dockerode: which layer stacks the engine holds, and `docker load` of an
 * archive streamed from the content store.
 *
 * Invariants:
 * - `layerChains` asks the engine afresh on every call: images come and go
 *   (the agent's own GC, a user's `docker rmi`) between two fetches, and a
 *   layer wrongly believed present would make a load fail.
 * - `load` resolves only when the engine's answer stream has ended without
 *   an error line: the engine answers a refused archive with HTTP 200 and the
 *   reason in the stream, so the status alone says nothing.
 * - An abort rejects with `signal.reason` and tears down both the request and
 *   the archive, so no file of the content store stays open.
 */
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { engineMessage, statusCodeOf, toRuntimeError } from '../runtime/errors.js';
import { chainIds } from './chain-id.js';
import type { EngineImages } from './types.js';

/** The engine refused an image archive (or could not be asked); `engineMessage` is its own words. */
export class EngineLoadError extends Error {
  override readonly name = 'EngineLoadError';
  constructor(
    readonly engineMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`the engine refused the image archive: ${engineMessage}`, options);
  }
}

export function isEngineLoadError(err: unknown): err is EngineLoadError {
  return err instanceof EngineLoadError;
}

/** One line of the engine's answer to /images/load. */
interface LoadMessage {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

export class DockerEngineImages implements EngineImages {
  constructor(private readonly docker: Dockerode) {}

  async layerChains(): Promise<Set<string>> {
    let listed: Dockerode.ImageInfo[];
    try {
      listed = await this.docker.listImages();
    } catch (err) {
      throw toRuntimeError(err, 'list images');
    }
    // The list carries no RootFS: each image is inspected. A device holds a
    // few dozen images at most, each a small local request.
    const stacks = await Promise.all(listed.map((image) => this.diffIdsOf(image.Id)));
    const chains = new Set<string>();
    for (const diffIds of stacks) for (const chain of chainIds(diffIds)) chains.add(chain);
    return chains;
  }

  /** An image's layers, base first; none when it was removed since it was listed. */
  private async diffIdsOf(id: string): Promise<string[]> {
    try {
      const info = await this.docker.getImage(id).inspect();
      return info.RootFS?.Layers ?? [];
    } catch (err) {
      if (statusCodeOf(err) === 404) return [];
      throw toRuntimeError(err, `inspect image ${id}`);
    }
  }

  async load(archive: Readable, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      archive.destroy();
      throw signal.reason;
    }
    // dockerode pipes the archive into the request and destroys the request
    // when the archive fails; the archive's own error says more than "socket hang up".
    let archiveError: Error | undefined;
    archive.once('error', (err: Error) => {
      archiveError = err;
    });
    try {
      let answer: NodeJS.ReadableStream;
      try {
        answer = await this.docker.loadImage(archive, { quiet: true, abortSignal: signal } as object);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (archiveError) throw archiveError;
        throw new EngineLoadError(engineMessage(err), { cause: err });
      }
      let refusal: string | undefined;
      try {
        refusal = await readAnswer(answer as Readable, signal);
      } catch (err) {
        // A failing archive destroys the request, which breaks the answer off too.
        if (archiveError && !signal.aborted) throw archiveError;
        throw err;
      }
      if (archiveError) throw archiveError;
      if (refusal !== undefined) throw new EngineLoadError(refusal);
    } finally {
      archive.destroy();
    }
  }
}

/**
 * Reads the engine's newline-separated JSON answer to its end; resolves with
 * the first error it reports, or undefined when it reported none.
 */
function readAnswer(answer: Readable, signal: AbortSignal): Promise<string | undefined> {
  return new Promise<string | undefined>((resolve, reject) => {
    let buffered = '';
    let refusal: string | undefined;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      outcome();
    };
    const take = (line: string) => {
      if (line.trim() === '' || refusal !== undefined) return;
      let message: LoadMessage;
      try {
        message = JSON.parse(line) as LoadMessage;
      } catch {
        return; // not a message: nothing to learn from it
      }
      const detail = message.errorDetail?.message ?? message.error;
      if (typeof detail === 'string' && detail.trim() !== '') refusal = detail.trim();
    };
    const onAbort = () => {
      answer.destroy();
      settle(() => reject(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    answer.setEncoding('utf8');
    answer.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        take(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
    answer.on('end', () => {
      take(buffered);
      settle(() => resolve(refusal));
    });
    const broken = (why: string, cause?: unknown) =>
      settle(() => reject(signal.aborted ? signal.reason : new EngineLoadError(`its answer broke off: ${why}`, { cause })));
    answer.on('error', (err: Error) => broken(err.message, err));
    // A connection closed before the end of the answer: the load's outcome is unknown, so not a success.
    answer.on('close', () => broken('the connection closed'));
  });
}
