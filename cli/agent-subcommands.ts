/**
 * The subcommands of `flotilla agent` that do not run the agent: `register` sets a
 * device up, the rest are the operator's (agent-upgrade.ts). bin.ts reads this list
 * before anything else loads, so it stays a list of names and imports nothing.
 */
export const AGENT_SUBCOMMANDS: ReadonlySet<string> = new Set(['register', 'upgrade', 'targets', 'target', 'delete-target', 'swap']);
