/**
 * `flotilla version` — this CLI's version and the hub's, with the protocol
 * versions the hub speaks with agents (an agent stating another is refused:
 * shared/protocol-version.ts). The client's line comes first and whatever
 * happens to the hub: "which client do I have" is worth an answer even when
 * the hub is down, and the failure is then the usual one-line error (exit 1).
 * `-o json|yaml` prints `{client, hub}`; `{client}` alone when the hub failed.
 */
import { arch, platform } from 'node:os';
import type { Command } from 'commander';
import type { HubVersion } from '../../shared/index.js';
import { AGENT_PROTOCOL_VERSION } from '../../shared/protocol-version.js';
import { flotillaVersion } from '../../shared/version.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { cell } from '../output.js';

export interface ClientVersion {
  version: string;
  nodeVersion: string;
  platform: string;
  /** The protocol version an agent of this release speaks (`flotilla agent`). */
  agentProtocolVersion: number;
}

export function clientVersion(): ClientVersion {
  return {
    version: flotillaVersion(),
    nodeVersion: process.versions.node,
    platform: `${platform()}/${arch()}`,
    agentProtocolVersion: AGENT_PROTOCOL_VERSION,
  };
}

export function registerVersion(program: Command, io: CliIO): void {
  program
    .command('version')
    .description("print this CLI's version and the hub's, with the protocol versions the hub speaks with agents")
    .action(async (_options: unknown, command: Command) => {
      const { output, hub } = globalOptions(command);
      const client = clientVersion();
      if (output === 'table') io.stdout(clientLine(client));
      let hubVersion: HubVersion;
      try {
        hubVersion = await hubClient(command, io).call('hub.version', {});
      } catch (err) {
        if (output !== 'table') render(io, output, { client }, () => '');
        throw err;
      }
      render(io, output, { client, hub: hubVersion }, () => hubLine(hubVersion, hub));
    });
}

// Written one at a time (the client's before the hub is asked), so aligned by hand as formatFields would align them together.
function clientLine(client: ClientVersion): string {
  return `Client:  ${client.version} (Node ${client.nodeVersion}, ${client.platform}, agent protocol version ${client.agentProtocolVersion})\n`;
}

function hubLine(hub: HubVersion, url: string): string {
  return `Hub:     ${cell(hub.version)} at ${url} (agent protocol versions: ${hub.protocolVersions.join(', ')})\n`;
}
