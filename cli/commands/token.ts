/**
 * `flotilla token create|revoke` and `flotilla get tokens` — registration
 * tokens, which a device trades once (or --max-uses times) for its own
 * identity with `flotilla agent register`.
 *
 * `token create` prints the token alone on stdout so that
 * `T=$(flotilla token create)` works; `-o json|yaml` prints the hub's whole
 * answer (id, labels, maxUses, expiresAt) instead.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ApiParams, TokenInfo } from '../../shared/index.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { parseLabelAssignments } from '../labels.js';
import { parsePositiveDuration } from '../option-parsers.js';
import { formatAge, formatLabels, formatTable, yesNo } from '../output.js';

interface CreateOptions {
  label: string[];
  labels: string[];
  maxUses?: number;
  expires?: number;
}

export function registerToken(program: Command, io: CliIO): void {
  const token = program.command('token').description('registration tokens: what a device trades for its identity (admin)');

  token
    .command('create')
    .description('create a registration token and print it (shown only this once)')
    .addOption(
      new Option('--label <key=value>', 'a label every device registered with it gets (repeatable)').argParser(collect).default([]),
    )
    .addOption(new Option('--labels <k=v,k=v>', 'several labels at once, comma-separated').argParser(collectList).default([]))
    .addOption(new Option('--max-uses <n>', "how many devices may register with it (the hub's default: 1)").argParser(parseMaxUses))
    .addOption(
      new Option('--expires <duration>', "how long it stays valid, e.g. 1h or 7d (the hub's default: 24h)").argParser(parseExpires),
    )
    .action(async (options: CreateOptions, command: Command) => {
      const request = createTokenRequest(options);
      const created = await hubClient(command, io).call('tokens.create', request);
      render(io, globalOptions(command).output, created, () => `${created.token}\n`);
    });

  token
    .command('revoke')
    .argument('<id>', 'the token id (see flotilla get tokens)')
    .description('revoke a registration token: no device can register with it any more')
    .action(async (id: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('tokens.revoke', { id });
      render(io, globalOptions(command).output, result, () => `token/${result.id} revoked\n`);
    });
}

/** `flotilla get tokens` (added to `get` by get.ts). */
export function registerGetTokens(get: Command, io: CliIO): void {
  get
    .command('tokens')
    .alias('token')
    .description('list registration tokens: uses, expiry, revoked (never the token itself)')
    .action(async (_options: unknown, command: Command) => {
      const list = await hubClient(command, io).call('tokens.list', {});
      const { output } = globalOptions(command);
      if (output === 'table' && list.items.length === 0) io.stderr('No tokens found.\n');
      else render(io, output, list, () => tokensTable(list.items));
    });
}

/** The request body from the options; labels from --label and --labels together, each key once. */
export function createTokenRequest(options: CreateOptions): ApiParams<'tokens.create'> {
  const labels = parseLabelAssignments([...options.label, ...options.labels]);
  return {
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(options.maxUses !== undefined ? { maxUses: options.maxUses } : {}),
    ...(options.expires !== undefined ? { expiresInSeconds: options.expires } : {}),
  };
}

export function tokensTable(tokens: readonly TokenInfo[], now: number = Date.now()): string {
  return formatTable(
    ['ID', 'LABELS', 'USES', 'EXPIRES', 'REVOKED', 'AGE'],
    tokens.map((token) => [
      token.id,
      formatLabels(token.labels),
      `${token.uses}/${token.maxUses ?? '∞'}`,
      formatExpiry(token.expiresAt, now),
      yesNo(token.revoked),
      formatAge(token.createdAt, now),
    ]),
  );
}

/** `in 23h`, `expired 2d ago`, or `never`. */
export function formatExpiry(expiresAt: string | null, now: number = Date.now()): string {
  if (expiresAt === null) return 'never';
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return '<unknown>';
  // formatAge measures time since a moment; mirrored, it measures time until one.
  return at > now ? `in ${formatAge(new Date(now - (at - now)), now)}` : `expired ${formatAge(expiresAt, now)} ago`;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collectList(value: string, previous: string[]): string[] {
  const items = value.split(',').filter((item) => item !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected key=value[,key=value…].');
  return [...previous, ...items];
}

function parseMaxUses(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number, at least 1.');
  }
  return n;
}

/** A duration → whole seconds (the hub's `expiresInSeconds`), at least one. */
function parseExpires(value: string): number {
  const seconds = Math.floor(parsePositiveDuration(value) / 1000);
  if (seconds < 1) throw new InvalidArgumentError('must be at least 1s.');
  return seconds;
}
