/**
 * A hub started the ways the README and the release start it runs with the
 * capped young generation (broker/v8-young-generation.ts), as its "hub ready"
 * line says: the flag only takes effect on node's command line, so each
 * launcher must put it there. Node started without it says so too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HUB_MAX_SEMI_SPACE_MIB } from '../../broker/v8-young-generation.js';
import { killStartedGroups, spawnInGroup } from '../support/process-groups.js';
import { CLI, hubServerArgs, scratchDir, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

afterEach(async () => {
  killStartedGroups();
  await stopAll();
});

interface ReadyLine {
  pid: number;
  maxSemiSpaceMiB: number | null;
}

/** Starts `command args` in a process group of its own (killed afterwards) and answers its "hub ready" line. */
async function hubReady(command: string, args: string[]): Promise<ReadyLine> {
  const { output: soFar } = spawnInGroup(command, args);
  let ready: ReadyLine | undefined;
  await waitFor(
    `"hub ready" from ${command} (output so far: ${soFar().slice(-600)})`,
    () => {
      const line = soFar()
        .split('\n')
        .find((l) => l.includes('"msg":"hub ready"'));
      ready = line === undefined ? undefined : (JSON.parse(line) as ReadyLine);
      return ready !== undefined;
    },
    { timeoutMs: 30_000 },
  );
  return ready!;
}

async function serverArgs(): Promise<string[]> {
  return (await hubServerArgs(scratchDir('flotilla-young-generation-'))).args;
}

describe("the hub's young generation as launched", () => {
  it('is capped when the checkout executable is run as a program (its shebang passes the flag)', async () => {
    const ready = await hubReady(CLI, await serverArgs());
    expect(ready.maxSemiSpaceMiB).toBe(HUB_MAX_SEMI_SPACE_MIB);
  });

  it('is capped under `npx flotilla server`, which runs the built executable', async () => {
    const ready = await hubReady('npx', ['flotilla', ...(await serverArgs())]);
    expect(ready.maxSemiSpaceMiB).toBe(HUB_MAX_SEMI_SPACE_MIB);
  });

  it("is V8's default, and said to be, when node is started without the flag", async () => {
    const ready = await hubReady(process.execPath, [CLI, ...(await serverArgs())]);
    expect(ready.maxSemiSpaceMiB).toBeNull();
  });
});
