/**
 * The raw-Aedes target of bench/telemetry-ingest.ts: the hub's own broker
 * module (`startBroker`, same Aedes options and listeners) with no hooks and
 * no `published` consumer, so the difference to the hub is exactly what
 * Flotilla adds on top of Aedes. Forked with an IPC channel; answers
 * `{ type: 'ready', mqttPort }` and exits when the parent goes away.
 *
 *   node --import tsx bench/telemetry/aedes-relay.ts <mqtt-port>
 */
import { pino } from 'pino';
import { startBroker } from '../../broker/mqtt/broker.js';

const broker = await startBroker({
  host: '127.0.0.1',
  mqttPort: Number(process.argv[2] ?? 0),
  wsPort: 0,
  logger: pino({ level: 'silent' }),
});
process.send?.({ type: 'ready', mqttPort: broker.mqttPort });

const stop = () => {
  broker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
