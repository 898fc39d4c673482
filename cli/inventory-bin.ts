#!/usr/bin/env node
/**
 * The `flotilla-inventory` executable of the release (package.json "bin";
 * build.mjs compiles it to dist/cli/inventory-bin.js beside bin.js): `flotilla
 * inventory`, as one file Ansible's `-i` can run with --list or --host.
 */
import { fileURLToPath } from 'node:url';

process.argv.splice(2, 0, 'inventory');
// The ProxyCommand the inventory writes runs the CLI again: bin.js, not this file.
process.argv[1] = fileURLToPath(new URL('./bin.js', import.meta.url));
const { main } = await import('./main.js');
await main();
