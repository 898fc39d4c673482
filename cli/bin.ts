#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The `flotilla` executable of the release: `npm run build` compiles this
 * file to dist/cli/bin.js, which package.json's "bin" names. A checkout runs
 * the sources through tsx instead (cli/flotilla.js).
 *
 * The shebang's node flag caps the hub's young generation: V8 reads it only
 * as the process starts (broker/v8-young-generation.ts). `env -S` splits it
 * from `node`, since Linux passes a shebang's arguments as one word.
 */
import { useAgentV8Flags } from '../agent/v8-flags.js';
import { AGENT_SUBCOMMANDS } from './agent-subcommands.js';

// `flotilla agent` sets the agent's V8 flags before any other code is compiled: set
// later (the command's action sets them too), 4 MiB more of the compilers stay resident.
// Its subcommands (register, upgrade, targets…) do not run the agent and keep the compilers.
if (process.argv[2] === 'agent' && !AGENT_SUBCOMMANDS.has(process.argv[3] ?? '')) useAgentV8Flags();

const { main } = await import('./main.js');
await main();
