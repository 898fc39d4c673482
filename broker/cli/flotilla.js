#!/usr/bin/env node
// The `flotilla` executable: TypeScript sources run through tsx, no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
await main();
