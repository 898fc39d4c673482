import { arch } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hostFacts } from '../../agent/host.js';
import { HostFacts, validate } from '../../shared/index.js';
import { flotillaVersion } from '../../shared/version.js';

describe('hostFacts', () => {
  it("reports the agent's version, the Node.js it runs on and the CPU architecture in Docker's words", () => {
    const facts = hostFacts('24.0.7');
    expect(facts).toMatchObject({ agentVersion: flotillaVersion(), nodeVersion: process.versions.node, dockerVersion: '24.0.7' });
    expect(facts.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(facts.arch).toBe({ x64: 'amd64', arm64: 'arm64' }[arch()] ?? facts.arch);
    expect(validate(HostFacts, facts).ok).toBe(true);
  });

  it('leaves the Docker version out when the engine was not reached', () => {
    expect(hostFacts()).not.toHaveProperty('dockerVersion');
  });
});
