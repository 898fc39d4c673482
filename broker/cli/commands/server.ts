/**
 * `flotilla server` — the hub: MQTT broker, dispatcher, HTTP API, SQLite.
 * The hub module is imported only here, so the other commands start fast.
 */
import { type Command, Option } from 'commander';
import type { CliIO } from '../context.js';
import { type LogLevel, logLevelOption, parsePort, startUntilSignal, topicRootOption } from '../lifecycle.js';

interface ServerOptions {
  dataDir: string;
  host: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  topicRoot: string;
  logLevel: LogLevel;
}

export function registerServer(program: Command, io: CliIO): void {
  program
    .command('server')
    .description('run the hub: MQTT broker (TCP and WebSocket), dispatcher and HTTP API')
    .addOption(new Option('--data-dir <dir>', 'where the SQLite database lives').env('FLOTILLA_DATA_DIR').default('./data'))
    .addOption(new Option('--host <address>', 'address every listener binds to').env('FLOTILLA_HOST').default('127.0.0.1'))
    .addOption(
      new Option('--mqtt-port <port>', 'MQTT over TCP (0: any free port)').env('FLOTILLA_MQTT_PORT').argParser(parsePort).default(1883),
    )
    .addOption(new Option('--ws-port <port>', 'MQTT over WebSocket').env('FLOTILLA_WS_PORT').argParser(parsePort).default(8083))
    .addOption(new Option('--http-port <port>', 'HTTP API').env('FLOTILLA_HTTP_PORT').argParser(parsePort).default(7070))
    .addOption(topicRootOption())
    .addOption(logLevelOption())
    .action(async (options: ServerOptions) => {
      const { startHub } = await import('../../hub.js');
      await startUntilSignal('hub', io, () =>
        startHub({
          dataDir: options.dataDir,
          host: options.host,
          mqttPort: options.mqttPort,
          wsPort: options.wsPort,
          httpPort: options.httpPort,
          topicRoot: options.topicRoot,
          logLevel: options.logLevel,
        }),
      );
    });
}
