/**
 * Long-running commands (server, agent): parsing helpers for their options,
 * and a clean shutdown on SIGINT/SIGTERM. A second signal while closing exits
 * at once, for the operator whose hub hangs on close.
 */
import { Option } from 'commander';
import { DEFAULT_TOPIC_ROOT } from '../shared/index.js';
import { LOG_LEVELS } from '../shared/logger.js';
import type { CliIO } from './context.js';
import { watchNpmLauncher } from './npm-launcher.js';
import { parseTopicRoot } from './option-parsers.js';

export type { LogLevel } from '../shared/logger.js';
export { parsePort, parsePositiveDuration, parseSizeArg, parseTopicRoot } from './option-parsers.js';

export interface Closable {
  close(): Promise<void>;
}

/**
 * Starts a long-running component and closes it on the first SIGINT or
 * SIGTERM, then exits 0 (1 if closing failed); a second signal exits 1 at once.
 *
 * The handlers are installed *before* `start()` runs: a component can be
 * reachable (and logging "ready") before its start promise settles, and a
 * SIGTERM in that window must still close it rather than kill it. A signal
 * during start waits for the start to finish, then closes. If the start
 * fails, the caller reports that error; the handlers stay silent.
 *
 * Started by npm (`npx flotilla …`, `npm start`), the component also closes
 * when npm is gone (npm-launcher.ts): npm does not pass SIGTERM on.
 */
export async function startUntilSignal<T extends Closable>(what: string, io: CliIO, start: () => Promise<T>): Promise<T> {
  let closing = false;
  const started = start();
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      io.stderr(`${signal} again: exiting without waiting for the ${what} to close\n`);
      process.exit(1);
    }
    closing = true;
    started.then(
      (target) =>
        target.close().then(
          () => process.exit(0),
          (err: unknown) => {
            io.stderr(`error: closing the ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
            process.exit(1);
          },
        ),
      () => {},
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const launcher = watchNpmLauncher(() => {
    io.stderr(`npm, which started this ${what}, has exited: closing the ${what}\n`);
    onSignal('SIGTERM');
  });
  try {
    return await started;
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    launcher.stop();
    throw err;
  }
}

/** `--topic-root`, shared by `server` and `agent`: both sides must agree on it. */
export function topicRootOption(): Option {
  return new Option('--topic-root <root>', 'MQTT topic prefix')
    .env('FLOTILLA_TOPIC_ROOT')
    .argParser(parseTopicRoot)
    .default(DEFAULT_TOPIC_ROOT);
}

/** `--log-level`, shared by `server` and `agent`. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'pino log level').env('FLOTILLA_LOG_LEVEL').choices(LOG_LEVELS).default('info');
}
