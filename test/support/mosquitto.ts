/** Debian's mosquitto-clients, run as real MQTT peers of the hub's broker. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** `mosquitto_sub … -C count -W seconds`: returns each received payload (one per line, -N off). */
export async function mosquittoSub(port: number, topic: string, { count = 1, waitSeconds = 10 } = {}): Promise<string[]> {
  const { stdout } = await execFileAsync(
    'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-t', topic, '-C', String(count), '-W', String(waitSeconds)],
    { timeout: (waitSeconds + 5) * 1000 },
  );
  return stdout.split('\n').filter((line) => line !== '');
}

export async function mosquittoPub(port: number, topic: string, message: string, { retain = false, qos = 1 } = {}): Promise<void> {
  await execFileAsync(
    'mosquitto_pub',
    ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-q', String(qos), ...(retain ? ['-r'] : []), '-t', topic, '-m', message],
    { timeout: 15_000 },
  );
}
