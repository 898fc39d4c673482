/**
 * `flotilla version` as an operator runs it (the real CLI process against a
 * real hub): the client's version, then the hub's with the protocol versions
 * it speaks; with the hub down, the client's line and the usual error, exit 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PROTOCOL_VERSION, PROTOCOL_VERSIONS } from '../../shared/protocol-version.js';
import { flotillaVersion } from '../../shared/version.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { freePort } from '../support/ports.js';
import { runCli } from '../support/processes.js';

const SLOW = { timeout: 30_000 };
const VERSION = flotillaVersion();
const CLIENT_LINE = `Client:  ${VERSION} (Node ${process.versions.node}, ${process.platform}/${process.arch}, agent protocol version ${AGENT_PROTOCOL_VERSION})\n`;

describe('flotilla version', SLOW, () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(() => hub.close());

  it("prints the client's version and the hub's, with the protocol versions the hub speaks", async () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    const result = await runCli(['--hub', hub.httpUrl, 'version']);
    expect(result).toEqual({
      code: 0,
      stdout: `${CLIENT_LINE}Hub:     ${VERSION} at ${hub.httpUrl} (agent protocol versions: ${PROTOCOL_VERSIONS.join(', ')})\n`,
      stderr: '',
    });
  });

  it('prints both as JSON with -o json', async () => {
    const result = await runCli(['--hub', hub.httpUrl, '-o', 'json', 'version']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      client: {
        version: VERSION,
        nodeVersion: process.versions.node,
        platform: `${process.platform}/${process.arch}`,
        agentProtocolVersion: AGENT_PROTOCOL_VERSION,
      },
      hub: { version: VERSION, protocolVersions: [...PROTOCOL_VERSIONS] },
    });
  });

  it("prints the client's version, then says the hub cannot be reached (exit 1)", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(['--hub', url, 'version']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(CLIENT_LINE);
    expect(result.stderr).toMatch(new RegExp(`^error: cannot reach the hub at ${url}: .*ECONNREFUSED`));

    const json = await runCli(['--hub', url, '-o', 'json', 'version']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ client: expect.objectContaining({ version: VERSION }) });
    expect(json.stderr).toMatch(/^error: cannot reach the hub at /);
  });
});
