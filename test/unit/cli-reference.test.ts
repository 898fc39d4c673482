/**
 * docs/reference/cli.md is rendered from the CLI's own help: it must be what
 * the generator renders now, and the generator must render what a user's
 * `flotilla … --help` prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_REFERENCE_COMMAND, CLI_REFERENCE_FILE, renderCliReference } from '../../cli/help-reference.js';
import { REPO_ROOT, runCli } from '../support/processes.js';

/** The fenced help block under `## heading` in the rendered reference. */
function section(reference: string, heading: string): string | undefined {
  const match = reference.match(new RegExp(`^## ${heading}\\n\\n\`\`\`text\\n([\\s\\S]*?)\\n\`\`\`$`, 'm'));
  return match?.[1];
}

describe('CLI reference', () => {
  it('the committed docs/reference/cli.md is what the generator renders from the current commands', () => {
    const committed = readFileSync(join(REPO_ROOT, CLI_REFERENCE_FILE), 'utf8');
    expect(committed, `${CLI_REFERENCE_FILE} is out of date with the CLI's help: run \`${CLI_REFERENCE_COMMAND}\` and commit it`).toBe(
      renderCliReference(),
    );
  });

  it('renders each command as `flotilla … --help` prints it, text added after the options included', async () => {
    const reference = renderCliReference();
    for (const args of [['agent'], ['rollout', 'status']]) {
      const printed = await runCli([...args, '--help'], { env: { NO_COLOR: '1' } });
      expect(printed.code).toBe(0);
      expect(section(reference, ['flotilla', ...args].join(' '))).toBe(printed.stdout.trimEnd());
    }
    expect(section(reference, 'flotilla agent')).toContain('Also: --ca FILE (global)');
  });
});
