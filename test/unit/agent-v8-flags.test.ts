/** The agent's own V8 flags: set in a child process (they change the whole process), unless the command line asked otherwise. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/processes.js';

/** The flags useAgentV8Flags set in a fresh node, and whether V8 then still optimizes a function asked to be. */
function runIn(nodeArgs: string[]): { applied: string[]; optimized: boolean } {
  const script = `
    import { useAgentV8Flags } from './agent/v8-flags.ts';
    const applied = useAgentV8Flags();
    const square = (x) => x * x;
    %PrepareFunctionForOptimization(square);
    square(1);
    square(2);
    %OptimizeFunctionOnNextCall(square);
    square(3);
    // Bit 4 of V8's optimization status: the function runs optimized code.
    console.log(JSON.stringify({ applied, optimized: (%GetOptimizationStatus(square) & 16) !== 0 }));`;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', ...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as { applied: string[]; optimized: boolean };
}

describe('agent V8 flags', () => {
  it('turns off the optimizing and baseline compilers in the process that runs the agent', () => {
    expect(runIn([])).toEqual({ applied: ['--no-opt', '--no-sparkplug'], optimized: false });
  });

  it("leaves a compiler on when node's command line asks for it", () => {
    expect(runIn(['--opt'])).toEqual({ applied: ['--no-sparkplug'], optimized: true });
    expect(runIn(['--turbofan', '--sparkplug'])).toEqual({ applied: [], optimized: true });
  });
});
