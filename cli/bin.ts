#!/usr/bin/env node
/**
 * The `flotilla` executable of the release: `npm run build` compiles this
 * file to dist/cli/bin.js, which package.json's "bin" names. A checkout runs
 * the sources through tsx instead (cli/flotilla.js).
 */
import { main } from './main.js';

await main();
