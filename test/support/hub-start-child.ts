/**
 * Run as a child process (`node --import tsx hub-start-child.ts '<config json>'`):
 * starts a hub with the given config and prints one JSON line per outcome, then
 * retries on the same MQTT port with OS-assigned others and prints that outcome.
 * A separate process, because a failing start must be observable even when
 * it crashes the process rather than rejecting.
 */
import { startHub } from '../../broker/hub.js';

const config = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

try {
  const hub = await startHub({ ...config, logLevel: 'silent' });
  say({ step: 'first', ok: true });
  await hub.close();
} catch (err) {
  say({ step: 'first', ok: false, error: (err as Error).message });
}
try {
  const hub = await startHub({ ...config, wsPort: 0, httpPort: 0, logLevel: 'silent' });
  say({ step: 'retry', ok: true, mqttPort: hub.ports.mqtt });
  await hub.close();
} catch (err) {
  say({ step: 'retry', ok: false, error: (err as Error).message });
}
