#!/usr/bin/env node
// `flotilla inventory` as one executable file, for Ansible's `-i` (which runs an inventory
// file with only --list or --host). The hub, token and CA come from FLOTILLA_HUB,
// FLOTILLA_TOKEN and FLOTILLA_CA. The release has the same as the `flotilla-inventory` command.
import { fileURLToPath } from 'node:url';

process.argv.splice(2, 0, 'inventory');
// The ProxyCommand the inventory writes runs the CLI again: this file's sibling, not this file.
process.argv[1] = fileURLToPath(new URL('./flotilla.js', import.meta.url));
await import('./flotilla.js');
