/**
 * `flotilla secret set NAME --from-literal VALUE | --from-file PATH`,
 * `flotilla secret delete NAME` and `flotilla get secrets`.
 *
 * The value is never printed, not even with `-o json` (the hub answers with
 * the name only). `--from-file` sends the file's bytes exactly, trailing
 * newline included (kubectl's habit), as base64: a value need not be UTF-8.
 * The hub accepts any bytes for a secret file; where a secret becomes an env
 * value or a registry password it must be UTF-8 text without NUL bytes, and
 * the hub refuses otherwise, naming the spec field. `--from-file -` reads
 * stdin, which keeps the value out of the shell history and `ps`, unlike
 * `--from-literal`.
 */
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import type { SecretInfo, SecretValue } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { UsageError } from '../errors.js';
import { formatAge, formatTable } from '../output.js';

interface SetOptions {
  fromLiteral?: string;
  fromFile?: string;
}

export function registerSecret(program: Command, io: CliIO): void {
  const secret = program.command('secret').description('secrets that app specs reference (env fromSecret, auth.fromSecret, secrets files)');

  secret
    .command('set')
    .argument('<name>', 'secret name (a DNS label)')
    .description('create or replace a secret; devices running an app that uses it get the new value')
    .addOption(new Option('--from-literal <value>', 'the value itself (visible in shell history and ps; prefer --from-file)'))
    .addOption(new Option('--from-file <path>', "the file's bytes, exactly; - reads stdin"))
    .action(async (name: string, options: SetOptions, command: Command) => {
      const value = await secretValue(options);
      const result = await hubClient(command, io).call('secrets.set', { name, ...value });
      render(io, globalOptions(command).output, result, () => `secret/${result.name} set\n`);
    });

  secret
    .command('delete')
    .argument('<name>', 'secret name')
    .description('delete a secret (refused while an app uses it)')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('secrets.delete', { name });
      render(io, globalOptions(command).output, result, () => `secret/${result.name} deleted\n`);
    });
}

/** `flotilla get secrets` (added to `get` by get.ts): names and when they changed, never values. */
export function registerGetSecrets(get: Command, io: CliIO): void {
  get
    .command('secrets')
    .alias('secret')
    .description('list secrets: name and when it was last set (never the value)')
    .action(async (_options: unknown, command: Command) => {
      const list = await hubClient(command, io).call('secrets.list', {});
      const { output } = globalOptions(command);
      if (output === 'table' && list.items.length === 0) io.stderr('No secrets found.\n');
      else render(io, output, list, () => secretsTable(list.items));
    });
}

export async function secretValue(options: SetOptions, readStdin: () => Promise<Buffer> = readAllStdin): Promise<SecretValue> {
  if ((options.fromLiteral === undefined) === (options.fromFile === undefined)) {
    throw new UsageError('give exactly one of --from-literal VALUE or --from-file PATH');
  }
  if (options.fromLiteral !== undefined) return { value: options.fromLiteral };
  const path = options.fromFile as string;
  let bytes: Buffer;
  try {
    bytes = path === '-' ? await readStdin() : await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path === '-' ? 'stdin' : path}: ${(err as Error).message}`);
  }
  return { valueBase64: bytes.toString('base64') };
}

async function readAllStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function secretsTable(secrets: readonly SecretInfo[], now: number = Date.now()): string {
  return formatTable(
    ['NAME', 'UPDATED'],
    secrets.map((s) => [s.name, formatAge(s.updatedAt, now)]),
  );
}
