#!/usr/bin/env -S node --max-semi-space-size=2
// The `flotilla` executable: TypeScript sources run through tsx, no build step.
// The node flag caps the hub's young generation (broker/v8-young-generation.ts).
//
// Dependencies with many files of their own are loaded *before* tsx's hooks
// are registered: past that point every module resolution makes a round trip
// to the hooks' thread, and TypeBox's few hundred files alone would add about
// a second to every command. Loaded first, each costs one cached lookup later.
await Promise.all([import('@sinclair/typebox'), import('commander'), import('yaml')]);

const { register } = await import('tsx/esm/api');
register();
const { main } = await import('./main.ts');
await main();
