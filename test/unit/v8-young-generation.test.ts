import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HUB_MAX_SEMI_SPACE_MIB, HUB_NODE_FLAG, maxSemiSpaceMiB } from '../../broker/v8-young-generation.js';
import { REPO_ROOT } from '../support/processes.js';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');

describe('maxSemiSpaceMiB', () => {
  it("reads the cap from node's command line in each spelling V8 takes, the last one winning", () => {
    expect(maxSemiSpaceMiB(['--max-semi-space-size=2'], undefined)).toBe(2);
    expect(maxSemiSpaceMiB(['--max_semi_space_size=4'], undefined)).toBe(4);
    expect(maxSemiSpaceMiB(['--max-semi-space-size', '1', '--inspect'], undefined)).toBe(1);
    expect(maxSemiSpaceMiB(['--max-semi-space-size=8', '--max-semi-space-size=2'], undefined)).toBe(2);
  });

  it('reads NODE_OPTIONS, which the command line overrides', () => {
    expect(maxSemiSpaceMiB([], '--enable-source-maps  --max-semi-space-size=1')).toBe(1);
    expect(maxSemiSpaceMiB(['--max-semi-space-size=2'], '--max-semi-space-size=1')).toBe(2);
  });

  it("answers undefined (V8's default) without the flag or with no number after it", () => {
    expect(maxSemiSpaceMiB([], undefined)).toBeUndefined();
    expect(maxSemiSpaceMiB(['--max-old-space-size=512', '--max-semi-space-size='], '')).toBeUndefined();
    expect(maxSemiSpaceMiB(['--max-semi-space-size'], undefined)).toBeUndefined();
  });
});

describe("the hub's launchers", () => {
  // Each starts node itself, so each must name the flag; a launcher that lost it starts hubs with V8's default.
  it("all pass the same cap on node's command line", () => {
    expect(HUB_NODE_FLAG).toBe(`--max-semi-space-size=${HUB_MAX_SEMI_SPACE_MIB}`);
    // What `npm install -g` and `npx flotilla` run (dist/cli/bin.js keeps this shebang).
    expect(read('cli/bin.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${HUB_NODE_FLAG}`);
    expect(read('cli/flotilla.js').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${HUB_NODE_FLAG}`);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toBe(`node ${HUB_NODE_FLAG} cli/flotilla.js server`);
    // The release bundle's bin/flotilla, which the install script's systemd unit also runs.
    expect(read('docker/release-bundle.sh')).toContain(`exec "$root/node" ${HUB_NODE_FLAG} "$root/dist/cli/bin.js" "$@"`);
    expect(read('docker/hub.Dockerfile')).toContain(
      `ENTRYPOINT ["/usr/local/bin/node", "${HUB_NODE_FLAG}", "/opt/flotilla/dist/cli/bin.js"]`,
    );
  });
});
