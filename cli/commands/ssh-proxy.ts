/**
 * `flotilla ssh-proxy DEVICE PORT`: one connection to the device's loopback
 * PORT, on stdin and stdout, for OpenSSH's ProxyCommand:
 *
 *   ssh -o ProxyCommand='flotilla ssh-proxy %h 22' root@DEVICE
 *
 * (a forward session with one channel; admin, since it reaches the host).
 * Exits 0 when the connection ends (ssh closed it, or sshd did), 1 when the
 * device could not connect or the session broke.
 */
import type { Command } from 'commander';
import type { CliIO } from '../context.js';
import { type ChannelEnd, type ChannelEndpoint, ForwardChannels } from '../remote/forward-channels.js';
import { openSession } from '../remote/session-client.js';
import { SessionError } from '../remote/session-errors.js';
import { onStopSignal, type PingOptions, pingIntervalOption, sessionTarget } from '../remote/session-options.js';
import { checkDeviceId, parseTargetPort } from '../remote/targets.js';

export function registerSshProxy(program: Command, _io: CliIO): void {
  program
    .command('ssh-proxy')
    .argument('<device>', 'the device (ssh passes its host name as %h)')
    .argument('<port>', "a port on the device's loopback, e.g. 22")
    .description("connect stdin/stdout to a port on the device's loopback, for ssh's ProxyCommand (admin)")
    .addOption(pingIntervalOption())
    .addHelpText(
      'after',
      `
Example:
  ssh -o ProxyCommand='flotilla ssh-proxy %h 22' root@pi-1
  (the hub, token and CA come from FLOTILLA_HUB, FLOTILLA_TOKEN and FLOTILLA_CA, or --hub/--ca before ssh-proxy)`,
    )
    .action(async (device: string, port: string, options: PingOptions, command: Command) => {
      const targetPort = parseTargetPort(port);
      const session = await openSession({
        ...sessionTarget(command),
        device: checkDeviceId(device),
        request: { kind: 'forward', port: targetPort },
        ...(options.pingInterval !== undefined ? { pingIntervalMs: options.pingInterval } : {}),
      });
      let channelEnded!: (end: ChannelEnd) => void;
      const channelEnd = new Promise<ChannelEnd>((resolve) => {
        channelEnded = resolve;
      });
      const channels = new ForwardChannels(session, channelEnded);
      // The device's EOF (sshd closed the connection) ends it too: our exit is ssh's EOF.
      channels.add(stdioEndpoint(() => channelEnded({ channel: 1, refused: false })));
      const stopSignals = onStopSignal(() => void session.close());
      const outcome = await Promise.race([channelEnd, session.ended]);
      stopSignals();
      process.stdin.destroy();
      if ('channel' in outcome) {
        await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
        await session.close();
        if (outcome.refused)
          throw new SessionError(undefined, `the device could not connect to its port ${targetPort}: ${outcome.reason ?? 'refused'}`);
        return;
      }
      channels.destroyAll();
      if (outcome.kind === 'failed') throw outcome.error;
    });
}

/** stdin to the device, the device to stdout; the process's end closes them. */
function stdioEndpoint(onRemoteEnd: () => void): ChannelEndpoint {
  return {
    readable: process.stdin,
    writable: process.stdout,
    endWrite: onRemoteEnd,
    destroy: () => undefined,
    onClose(listener) {
      process.stdout.once('error', (err) => listener(err));
    },
  };
}
