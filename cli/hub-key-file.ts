/**
 * `flotilla agent --hub-key FILE`: the hub's public key pinned by hand (from
 * `GET /api/v1/hub/key`) instead of by `flotilla agent register`. Checked
 * here, so a wrong file is a usage error before the agent starts.
 */
import { readFileSync } from 'node:fs';
import { parseHubKey } from '../shared/index.js';
import { UsageError } from './errors.js';

export function readHubKeyFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the hub key ${path}: ${(err as Error).message}`);
  }
  // `curl …/api/v1/hub/key > hub.json` gives the JSON answer: take the key out of it.
  const pem = text.trimStart().startsWith('{') ? hubKeyFromJson(text, path) : text;
  try {
    parseHubKey(pem);
  } catch (err) {
    throw new UsageError(`${path}: ${(err as Error).message}`);
  }
  return pem;
}

function hubKeyFromJson(text: string, path: string): string {
  try {
    const value = JSON.parse(text) as { hubKey?: unknown };
    if (typeof value.hubKey === 'string') return value.hubKey;
  } catch {
    // Reported below like any other file that holds no key.
  }
  throw new UsageError(`${path}: expected a PEM public key or the JSON of GET /api/v1/hub/key`);
}
