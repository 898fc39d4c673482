/** Facts about the device that the hub shows and schedules on. */
import { arch, hostname, platform, release } from 'node:os';
import type { HostFacts } from '../shared/index.js';
import { flotillaVersion } from '../shared/version.js';

/** Node's arch names mapped to Docker's, which is what image platforms and operators use. */
const DOCKER_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

export function dockerArch(): string {
  return DOCKER_ARCH[arch()] ?? arch();
}

const AGENT_VERSION = flotillaVersion();

export function hostFacts(dockerVersion?: string): HostFacts {
  return {
    hostname: hostname(),
    os: platform(),
    arch: dockerArch(),
    kernel: release(),
    ...(dockerVersion ? { dockerVersion } : {}),
    agentVersion: AGENT_VERSION,
    nodeVersion: process.versions.node,
  };
}
