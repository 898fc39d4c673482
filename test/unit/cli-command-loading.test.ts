/**
 * The CLI imports only the command it runs (cli/main.ts, COMMANDS): what the
 * user sees must be what the whole tree prints, for the root help, a
 * command's help, global options before the command, and a mistyped command.
 */
import { describe, expect, it } from 'vitest';
import { renderCliReference } from '../../cli/help-reference.js';
import { COMMANDS, commandsFor } from '../../cli/main.js';
import { runCli } from '../support/processes.js';

/** The fenced help block under `## heading` in the rendered reference (built from every command). */
function section(heading: string): string | undefined {
  const match = renderCliReference().match(new RegExp(`^## ${heading}\\n\\n\`\`\`text\\n([\\s\\S]*?)\\n\`\`\`$`, 'm'));
  return match?.[1];
}

describe('loading only the command that runs', () => {
  it('prints the root help and a command help as the whole tree does', async () => {
    const root = await runCli(['--help'], { env: { NO_COLOR: '1' } });
    expect(root.code).toBe(0);
    expect(root.stdout.trimEnd()).toBe(section('flotilla'));
    const get = await runCli(['--hub', 'http://127.0.0.1:1', '-o', 'json', 'get', 'devices', '--help'], { env: { NO_COLOR: '1' } });
    expect(get.code).toBe(0);
    expect(get.stdout.trimEnd()).toBe(section('flotilla get devices'));
  });

  it('still suggests the command meant when one is mistyped', async () => {
    const typo = await runCli(['gett', 'devices']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("error: unknown command 'gett'");
    expect(typo.stderr).toContain('(Did you mean get?)');
  });

  it('registers one command when argv names it, past global options in either form', async () => {
    const get = COMMANDS.find((command) => command.name === 'get')!;
    const registerGet = await get.load();
    for (const argv of [
      ['get', 'devices'],
      ['--hub', 'http://h:1', '-o', 'json', '--token', 't', '--ca', 'ca.pem', 'get', 'devices'],
      ['--hub=http://h:1', '-ojson', '--output=yaml', 'get'],
    ]) {
      expect(await commandsFor(['node', 'flotilla', ...argv])).toEqual([registerGet]);
    }
    expect(await commandsFor(['node', 'flotilla', '--version'])).toEqual([]);
    for (const argv of [[], ['--help'], ['gett'], ['--hub', 'http://h:1'], ['--verbose', 'get']]) {
      expect(await commandsFor(['node', 'flotilla', ...argv])).toHaveLength(COMMANDS.length);
    }
  });
});
