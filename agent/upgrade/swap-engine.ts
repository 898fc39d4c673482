/**
 * The few engine operations an agent that runs as a container needs to replace
 * itself (container-swap.ts) and to start that replacement (container-upgrader.ts),
 * over dockerode. These touch only the agent's own containers, by name: never an
 * app's, which the runtime (agent/runtime/) manages.
 *
 * Every operation that can be repeated after a power cut is idempotent here:
 * removing, stopping or starting a container that is already gone, stopped or
 * running succeeds, so the swap's steps can simply be run again.
 */
import type Dockerode from 'dockerode';
import { engineMessage, RuntimeError, statusCodeOf, toRuntimeError } from '../runtime/errors.js';

/** What the swap reads of a container (`docker inspect`). */
export interface AgentContainer {
  id: string;
  name: string;
  /** The image ID (sha256:…) it was created from. */
  imageId: string;
  /** The reference it was created with (`Config.Image`). */
  imageRef: string;
  running: boolean;
  /** Docker's state: created, running, restarting, exited, dead… */
  status: string;
  /** Restarts by its restart policy since it was created. */
  restartCount: number;
  /** It has been started at least once. */
  everStarted: boolean;
  exitCode: number;
  restartPolicy: { Name: string; MaximumRetryCount?: number };
  /** The whole inspect answer, to make a container with the same settings. */
  raw: Dockerode.ContainerInspectInfo;
}

export interface SwapEngine {
  inspect(name: string): Promise<AgentContainer | undefined>;
  /** The image's own config (env, cmd, entrypoint, user, labels), to tell a container's overrides from its image's defaults. */
  imageConfig(image: string): Promise<Dockerode.ImageInspectInfo['Config'] | undefined>;
  rename(id: string, name: string): Promise<void>;
  stop(id: string, timeoutSeconds: number): Promise<void>;
  setRestartPolicy(id: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<void>;
  create(name: string, options: Dockerode.ContainerCreateOptions): Promise<string>;
  start(id: string): Promise<void>;
  remove(id: string): Promise<void>;
}

export function dockerSwapEngine(docker: Dockerode): SwapEngine {
  return {
    async inspect(name) {
      let info: Dockerode.ContainerInspectInfo;
      try {
        info = await docker.getContainer(name).inspect();
      } catch (err) {
        if (statusCodeOf(err) === 404) return undefined;
        throw toRuntimeError(err, `inspect container ${name}`);
      }
      return {
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        imageId: info.Image,
        imageRef: info.Config.Image,
        running: info.State.Running,
        status: info.State.Status,
        restartCount: info.RestartCount,
        everStarted: !info.State.StartedAt.startsWith('0001-'),
        exitCode: info.State.ExitCode,
        restartPolicy: {
          Name: info.HostConfig.RestartPolicy?.Name ?? 'no',
          MaximumRetryCount: info.HostConfig.RestartPolicy?.MaximumRetryCount ?? 0,
        },
        raw: info,
      };
    },
    async imageConfig(image) {
      try {
        return (await docker.getImage(image).inspect()).Config;
      } catch (err) {
        if (statusCodeOf(err) === 404) return undefined;
        throw toRuntimeError(err, `inspect image ${image}`);
      }
    },
    async rename(id, name) {
      try {
        await docker.getContainer(id).rename({ name });
      } catch (err) {
        throw toRuntimeError(err, `rename container ${id.slice(0, 12)} to ${name}`);
      }
    },
    async stop(id, timeoutSeconds) {
      try {
        await docker.getContainer(id).stop({ t: timeoutSeconds });
      } catch (err) {
        const status = statusCodeOf(err);
        if (status === 304 || status === 404) return; // stopped already, or gone
        throw toRuntimeError(err, `stop container ${id.slice(0, 12)}`);
      }
    },
    async setRestartPolicy(id, policy) {
      try {
        await docker.getContainer(id).update({ RestartPolicy: policy });
      } catch (err) {
        throw toRuntimeError(err, `set the restart policy of container ${id.slice(0, 12)}`);
      }
    },
    async create(name, options) {
      try {
        return (await docker.createContainer({ ...options, name })).id;
      } catch (err) {
        throw new RuntimeError(statusCodeOf(err) === 404 ? 'not_found' : 'engine', `create container ${name}: ${engineMessage(err)}`, {
          cause: err,
        });
      }
    },
    async start(id) {
      try {
        await docker.getContainer(id).start();
      } catch (err) {
        if (statusCodeOf(err) === 304) return; // running already
        throw toRuntimeError(err, `start container ${id.slice(0, 12)}`);
      }
    },
    async remove(id) {
      try {
        await docker.getContainer(id).remove({ force: true });
      } catch (err) {
        if (statusCodeOf(err) === 404) return;
        throw toRuntimeError(err, `remove container ${id.slice(0, 12)}`);
      }
    },
  };
}
