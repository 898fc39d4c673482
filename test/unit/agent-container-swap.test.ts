/**
 * The pure parts of an image install's own upgrade: the decision
 * (agent/upgrade/container-decide.ts, every branch with its reason), the new
 * container's settings from the old one's (container-swap.ts), how starts that
 * ended are counted, and the swap file read back as written (real files).
 * The swap itself runs against a real engine: test/e2e/agent-container-swap.solo.test.ts.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { type ContainerUpgradeSituation, decideContainerUpgrade } from '../../agent/upgrade/container-decide.js';
import { endedStarts, newContainerOptions } from '../../agent/upgrade/container-swap.js';
import { MAX_ATTEMPTS, RETRY_BACKOFF_MS } from '../../agent/upgrade/decide.js';
import type { AgentContainer } from '../../agent/upgrade/swap-engine.js';
import { readSwapState, removeSwapState, type SwapState, swapFile, writeSwapState } from '../../agent/upgrade/swap-state.js';
import type { DesiredAgent } from '../../shared/index.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const IMAGE = `registry.lan/flotilla/agent@sha256:${'b'.repeat(64)}`;
const desired: DesiredAgent = { version: '0.3.0', revision: 12, image: IMAGE };

function situation(over: Partial<ContainerUpgradeSituation> = {}): ContainerUpgradeSituation {
  return { desired, running: '0.2.0', onTrial: false, swapping: false, rolledBack: undefined, failures: undefined, now: NOW, ...over };
}

describe('decideContainerUpgrade', () => {
  it('does nothing when no version is desired, or the desired one runs', () => {
    expect(decideContainerUpgrade(situation({ desired: undefined }))).toEqual({ action: 'none', reason: 'no agent version is desired' });
    expect(decideContainerUpgrade(situation({ running: '0.3.0' }))).toEqual({ action: 'none', reason: 'agent 0.3.0 runs, as desired' });
  });

  it('refuses a section without an image, or with one not named by digest, saying how to give one', () => {
    const { image: _, ...bundleOnly } = desired;
    expect(decideContainerUpgrade(situation({ desired: bundleOnly }))).toEqual({
      action: 'refuse',
      reason:
        'the desired agent 0.3.0 (revision 12) names no image, and this agent runs as a container; set one by digest: flotilla agent upgrade … --image REPO@sha256:…',
    });
    const tagged = decideContainerUpgrade(situation({ desired: { ...desired, image: 'registry.lan/flotilla/agent:0.3.0' } }));
    expect(tagged).toMatchObject({ action: 'refuse' });
    expect(tagged.reason).toContain('"registry.lan/flotilla/agent:0.3.0", not one by digest');
  });

  it('holds a version that rolled back at this revision or a later one, and tries it at a newer revision', () => {
    const rolledBack = { version: '0.3.0', revision: 12, reason: 'crashed 3 times in a row' };
    expect(decideContainerUpgrade(situation({ rolledBack }))).toEqual({
      action: 'hold',
      reason:
        'agent 0.3.0 rolled back at revision 12 (crashed 3 times in a row); not tried again until a newer revision asks for it (flotilla agent upgrade --retry)',
    });
    expect(decideContainerUpgrade(situation({ rolledBack, desired: { ...desired, revision: 13 } })).action).toBe('swap');
    expect(decideContainerUpgrade(situation({ rolledBack: { ...rolledBack, version: '0.2.9' } })).action).toBe('swap');
  });

  it('waits while the running version is on trial, or a swap is under way', () => {
    expect(decideContainerUpgrade(situation({ onTrial: true }))).toEqual({
      action: 'wait',
      reason: 'agent 0.2.0 runs on trial: it confirms before agent 0.3.0 (revision 12) is tried',
      at: NOW,
    });
    expect(decideContainerUpgrade(situation({ swapping: true }))).toEqual({
      action: 'wait',
      reason: "a swap of the agent's container is under way",
      at: NOW,
    });
  });

  it('backs off after a failure, tries again after it, and gives up after MAX_ATTEMPTS', () => {
    const failures = { version: '0.3.0', revision: 12, count: 1, lastAt: NOW, message: 'pull failed: no such image' };
    const waiting = decideContainerUpgrade(situation({ failures }));
    expect(waiting).toMatchObject({ action: 'wait', at: NOW + (RETRY_BACKOFF_MS[0] ?? 0) });
    expect(waiting.reason).toBe(
      `pull failed: no such image (attempt 2 of ${MAX_ATTEMPTS} at ${new Date(NOW + (RETRY_BACKOFF_MS[0] ?? 0)).toISOString()})`,
    );
    expect(decideContainerUpgrade(situation({ failures, now: NOW + (RETRY_BACKOFF_MS[0] ?? 0) })).action).toBe('swap');
    expect(decideContainerUpgrade(situation({ failures: { ...failures, count: MAX_ATTEMPTS } }))).toEqual({
      action: 'refuse',
      reason: `pull failed: no such image (gave up after ${MAX_ATTEMPTS} attempts; a newer revision tries again)`,
    });
  });

  it('otherwise pulls the image and starts the swap', () => {
    expect(decideContainerUpgrade(situation())).toEqual({
      action: 'swap',
      reason: `pulling ${IMAGE} and swapping the agent's container to agent 0.3.0 (revision 12)`,
      image: IMAGE,
    });
  });
});

function container(over: Partial<AgentContainer> = {}, config: Partial<Dockerode.ContainerInspectInfo['Config']> = {}): AgentContainer {
  const raw = {
    Config: {
      Image: 'registry.lan/flotilla/agent@sha256:old',
      Env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_ENV=production', 'FLOTILLA_AGENT_CONTAINER=flotilla-agent'],
      Cmd: ['agent', '--data-dir', '/var/lib/flotilla-agent', '--hub-url', 'mqtt://hub:1883'],
      Entrypoint: ['/usr/local/bin/node', '/opt/flotilla/dist/cli/bin.js'],
      User: '10001:10001',
      WorkingDir: '/',
      Labels: { 'org.flotilla.install': 'sha256:abc /var/lib/flotilla-agent', 'org.opencontainers.image.version': '0.2.0' },
      ...config,
    },
    HostConfig: {
      Binds: ['/var/run/docker.sock:/var/run/docker.sock', '/var/lib/flotilla-agent:/var/lib/flotilla-agent'],
      NetworkMode: 'host',
      GroupAdd: ['998'],
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    },
  } as unknown as Dockerode.ContainerInspectInfo;
  return {
    id: 'old',
    name: 'flotilla-agent-previous',
    imageId: 'sha256:old',
    imageRef: raw.Config.Image,
    running: false,
    status: 'exited',
    restartCount: 0,
    everStarted: true,
    exitCode: 0,
    restartPolicy: { Name: 'no' },
    raw,
    ...over,
  };
}

const oldImage = {
  Env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_ENV=production'],
  Cmd: ['agent'],
  Entrypoint: ['/usr/local/bin/node', '/opt/flotilla/dist/cli/bin.js'],
  User: '10001:10001',
  WorkingDir: '/',
  Labels: { 'org.opencontainers.image.version': '0.2.0' },
} as unknown as Dockerode.ImageInspectInfo['Config'];

describe('newContainerOptions', () => {
  it("keeps the install's own settings and host config on the new image, and leaves the old image's defaults to the new one", () => {
    const options = newContainerOptions(container(), oldImage, { to: IMAGE, restartPolicy: 'always', restartRetries: 0 });
    expect(options).toEqual({
      Image: IMAGE,
      Env: ['FLOTILLA_AGENT_CONTAINER=flotilla-agent'],
      Cmd: ['agent', '--data-dir', '/var/lib/flotilla-agent', '--hub-url', 'mqtt://hub:1883'],
      Labels: { 'org.flotilla.install': 'sha256:abc /var/lib/flotilla-agent' },
      HostConfig: {
        Binds: ['/var/run/docker.sock:/var/run/docker.sock', '/var/lib/flotilla-agent:/var/lib/flotilla-agent'],
        NetworkMode: 'host',
        GroupAdd: ['998'],
        // The old container's policy as it was before the swap set it to `no`.
        RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      },
    });
  });

  it('keeps an entrypoint, a user and a working dir the install overrode', () => {
    const old = container({}, { Entrypoint: ['/bin/tini', '--'], User: '0', WorkingDir: '/srv' });
    expect(newContainerOptions(old, oldImage, { to: IMAGE, restartPolicy: 'unless-stopped', restartRetries: 0 })).toMatchObject({
      Entrypoint: ['/bin/tini', '--'],
      User: '0',
      WorkingDir: '/srv',
      HostConfig: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } },
    });
  });

  it('copies everything when the old image is gone (nothing to tell defaults from overrides)', () => {
    const options = newContainerOptions(container(), undefined, { to: IMAGE, restartPolicy: 'always', restartRetries: 0 });
    expect(options.Env).toHaveLength(3);
    expect(options.Cmd).toEqual(['agent', '--data-dir', '/var/lib/flotilla-agent', '--hub-url', 'mqtt://hub:1883']);
  });
});

describe('endedStarts', () => {
  it('counts each restart by the policy and one more while it is not running', () => {
    expect(endedStarts(container({ running: true, restartCount: 0 }))).toBe(0);
    expect(endedStarts(container({ running: true, restartCount: 2 }))).toBe(2);
    expect(endedStarts(container({ running: false, status: 'restarting', restartCount: 2 }))).toBe(3);
  });
});

describe('the swap file', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const state: SwapState = {
    step: 'watch',
    container: 'flotilla-agent',
    to: IMAGE,
    version: '0.3.0',
    fromVersion: '0.2.0',
    revision: 12,
    healthTimeoutSeconds: 300,
    maxCrashes: 3,
    oldId: 'c0ffee',
    restartPolicy: 'always',
    restartRetries: 0,
    deadline: 1764961234,
    reason: '',
    outcome: '',
  };

  it('reads back what was written, as key=value lines under upgrade/', () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-swap-state-'));
    expect(readSwapState(dir)).toBeUndefined();
    writeSwapState(dir, state);
    expect(readSwapState(dir)).toEqual(state);
    expect(swapFile(dir)).toBe(join(dir, 'upgrade/swap'));
    removeSwapState(dir);
    expect(existsSync(swapFile(dir))).toBe(false);
  });

  it('takes a file without a known step for none (a half-written .tmp is never read)', () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-swap-state-'));
    writeSwapState(dir, state);
    writeFileSync(swapFile(dir), 'step=sideways\ncontainer=flotilla-agent\nto=x\n');
    expect(readSwapState(dir)).toBeUndefined();
  });
});
