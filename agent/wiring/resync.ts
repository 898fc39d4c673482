/**
 * What makes the reconciler, the job runner and the log collector look again. Docker events
 * make the agent notice a crash or a manual `docker rm` at once; the periodic
 * resync catches anything the event stream missed.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import type { JobRunner } from '../jobs/runner.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { LogCollector } from '../telemetry/logs/log-collector.js';

/** How long after the event stream ends the agent subscribes again (the engine may be restarting). */
export const RESUBSCRIBE_MS = 2_000;

export interface ResyncDeps {
  runtime: Pick<ContainerRuntime, 'watch'>;
  reconciler: Pick<Reconciler, 'trigger'>;
  logs: Pick<LogCollector, 'refresh'>;
  jobs?: Pick<JobRunner, 'trigger'>;
  logger: Logger;
}

/** Looks once now, then on every engine event and every `resyncIntervalMs`, until the closer runs. */
export function keepInSync(
  config: Pick<AgentConfig, 'resyncIntervalMs'>,
  { runtime, reconciler, logs, jobs, logger }: ResyncDeps,
  closer: Closer,
): void {
  const look = () => {
    reconciler.trigger();
    jobs?.trigger();
    logs.refresh();
  };
  const events = new EngineEvents(runtime, look, logger);
  closer.add('Docker event watch', () => events.stop());
  const resync = setInterval(look, config.resyncIntervalMs);
  closer.add('resync timer', () => clearInterval(resync));
  reconciler.trigger();
  jobs?.trigger();
}

/** The engine's container events, subscribed to again whenever the stream ends, until stop(). */
class EngineEvents {
  private unsubscribe: () => void = () => undefined;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly runtime: Pick<ContainerRuntime, 'watch'>,
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {
    this.subscribe();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.resubscribeTimer);
    this.unsubscribe();
  }

  private subscribe(): void {
    this.unsubscribe = this.runtime.watch(this.onChange, (err) => {
      this.logger.warn({ err: err.message }, 'Docker event stream ended; re-subscribing');
      if (!this.stopped) this.resubscribeTimer = setTimeout(() => this.subscribe(), RESUBSCRIBE_MS);
    });
  }
}
