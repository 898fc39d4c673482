/**
 * What a release's failed smoke test printed, as one line
 * (agent/upgrade/printed-line.ts), on what Node 20 really prints when a
 * release cannot start.
 */
import { describe, expect, it } from 'vitest';
import { cutAtWord, PRINTED_LINE_MAX, printedLine } from '../../agent/upgrade/printed-line.js';

const MISSING_MODULE = `node:internal/modules/cjs/loader:1210
  throw err;
  ^

Error: Cannot find module './nope-module'
Require stack:
- /opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js
    at Module._resolveFilename (node:internal/modules/cjs/loader:1207:15)
    at Module._load (node:internal/modules/cjs/loader:1038:27)
    at evalScript (node:internal/process/execution:133:3) {
  code: 'MODULE_NOT_FOUND',
  requireStack: [ '/opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js' ]
}

Node.js v20.20.2
`;

const SYNTAX = `/opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js:1
const x = ;
          ^

SyntaxError: Unexpected token ';'
    at wrapSafe (node:internal/modules/cjs/loader:1464:18)
    at node:internal/main/run_main_module:28:49

Node.js v20.20.2
`;

const ESM = `node:internal/modules/esm/resolve:873
  throw new ERR_MODULE_NOT_FOUND(packageName, fileURLToPath(base), null);
        ^

Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'pino' imported from /opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js
    at packageResolve (node:internal/modules/esm/resolve:873:9) {
  code: 'ERR_MODULE_NOT_FOUND'
}

Node.js v20.20.2
`;

const THROWN_STRING = `
/opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js:1
throw "boom at start"
^
boom at start
(Use \`node --trace-uncaught ...\` to show where the exception was thrown)

Node.js v20.20.2
`;

describe('printedLine', () => {
  it('is the error Node threw, without the location, source echo, caret row, stack or footer', () => {
    expect(printedLine(MISSING_MODULE)).toBe("Error: Cannot find module './nope-module'");
    expect(printedLine(SYNTAX)).toBe("SyntaxError: Unexpected token ';'");
    expect(printedLine(ESM)).toBe(
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'pino' imported from /opt/flotilla/.staging-0.2.2/flotilla/dist/cli.js",
    );
    expect(printedLine(THROWN_STRING)).toBe('boom at start');
  });

  it("is a shell's or a program's own lines, joined, when nothing was thrown", () => {
    expect(printedLine('/opt/flotilla/.staging-0.2.2/flotilla/bin/flotilla: 2: exec: /opt/x/node: not found\n')).toBe(
      '/opt/flotilla/.staging-0.2.2/flotilla/bin/flotilla: 2: exec: /opt/x/node: not found',
    );
    expect(printedLine('flotilla: cannot read config\n  see --help\n')).toBe('flotilla: cannot read config; see --help');
    expect(printedLine('')).toBe('');
    expect(printedLine('\n  \n')).toBe('');
  });

  it('cuts a long line at a word, with an ellipsis, within the limit', () => {
    const words = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
    const line = printedLine(`Error: ${words}\n    at main (/x.js:1:1)\n`);
    expect(line.length).toBeLessThanOrEqual(PRINTED_LINE_MAX);
    expect(line).toMatch(/^Error: word0 word1 .* word\d+…$/);
    expect(`Error: ${words}`.startsWith(line.slice(0, -1))).toBe(true);
    expect(`Error: ${words} `.includes(`${line.slice(0, -1)} `)).toBe(true);
    // One long word is cut where it must be.
    expect(cutAtWord('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(cutAtWord('short', 10)).toBe('short');
  });
});
