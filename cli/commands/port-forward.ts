/**
 * `flotilla port-forward DEVICE [LOCAL_ADDR:]LOCAL_PORT:[TARGET:]TARGET_PORT`:
 * a local TCP listener whose every connection is a channel of one forward
 * session to a port of an app's container (TARGET = app or app/container) or,
 * with no TARGET, of the device's own loopback (admin). Runs until Ctrl-C or
 * SIGTERM (exit 0) or until the session ends (exit 1, with the reason).
 */
import { type AddressInfo, createServer, type Server } from 'node:net';
import type { Command } from 'commander';
import type { CliIO } from '../context.js';
import { CliError, EXIT_HUB_ERROR } from '../errors.js';
import { ForwardChannels, socketEndpoint } from '../remote/forward-channels.js';
import { openSession } from '../remote/session-client.js';
import { onStopSignal, type PingOptions, pingIntervalOption, sessionTarget } from '../remote/session-options.js';
import { checkDeviceId, describeForwardTarget, type ForwardSpec, parseForwardSpec } from '../remote/targets.js';

export function registerPortForward(program: Command, io: CliIO): void {
  program
    .command('port-forward')
    .argument('<device>', 'the device')
    .argument(
      '<ports>',
      '[LOCAL_ADDR:]LOCAL_PORT:[APP[/CONTAINER]:]TARGET_PORT (LOCAL_ADDR 127.0.0.1 by default; LOCAL_PORT 0 picks a free one)',
    )
    .description("forward local TCP connections to a port in an app's container, or on the device's loopback, through the hub")
    .addOption(pingIntervalOption())
    .addHelpText(
      'after',
      `
Examples:
  flotilla port-forward pi-1 8080:web:80          # localhost:8080 -> port 80 of app web's container
  flotilla port-forward pi-1 0:web/db:5432        # a free local port (printed) -> container db of app web
  flotilla port-forward pi-1 0.0.0.0:2222:22      # the device's own port 22 (admin)

Prints "Forwarding from ADDR:PORT -> DEVICE TARGET:PORT" on stderr once listening, and runs
until Ctrl-C or SIGTERM (exit 0) or until the session ends (exit 1, with the reason).
A connection the device cannot make (nothing listens there) is reported and closed; the
others go on. App containers need the operator role, the device's own ports admin.`,
    )
    .action(async (device: string, ports: string, options: PingOptions, command: Command) => {
      const spec = parseForwardSpec(ports);
      const session = await openSession({
        ...sessionTarget(command),
        device: checkDeviceId(device),
        request: { kind: 'forward', ...spec.target, port: spec.targetPort },
        ...(options.pingInterval !== undefined ? { pingIntervalMs: options.pingInterval } : {}),
      });
      const target = describeForwardTarget(spec);
      const channels = new ForwardChannels(session, (end) => {
        if (end.refused) io.stderr(`error: connection ${end.channel} to ${device} ${target} failed on the device: ${end.reason}\n`);
      });
      const server = createServer({ allowHalfOpen: true }, (socket) => {
        socket.setNoDelay(true);
        channels.add(socketEndpoint(socket));
      });
      let closing: Promise<void> | undefined;
      const stopSignals = onStopSignal(() => {
        closing = session.close();
      });
      try {
        const address = await listen(server, spec);
        io.stderr(`Forwarding from ${formatAddress(address)} -> ${device} ${target}\n`);
      } catch (err) {
        stopSignals();
        await session.close();
        throw err;
      }
      const end = await session.ended;
      stopSignals();
      server.close();
      channels.destroyAll();
      await closing;
      if (end.kind === 'failed') throw end.error;
    });
}

function listen(server: Server, spec: ForwardSpec): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new CliError(`cannot listen on ${spec.localAddress}:${spec.localPort}: ${err.message}`, EXIT_HUB_ERROR)),
    );
    server.listen(spec.localPort, spec.localAddress, () => resolve(server.address() as AddressInfo));
  });
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
