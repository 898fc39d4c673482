/**
 * What a release's command printed, as the one line an operator reads in a
 * failed upgrade's report and event: the error Node threw when there is one
 * ("Error: Cannot find module 'x'"), else the printed lines without the
 * noise of a crash dump (the source echo's location, caret rows, stack
 * frames, the "Node.js v20" footer), joined and cut at a word.
 *
 * Pure, so each shape of output is a unit test.
 */

/** Long enough for an error's message and path; well under the report's 1024 characters with the sentence around it. */
export const PRINTED_LINE_MAX = 300;

/** `Error: …`, `TypeError: …`, `Error [ERR_MODULE_NOT_FOUND]: …`, `RangeError [ERR_X]: …`. */
const THROWN = /^(?:[A-Z][A-Za-z]*)?(?:Error|Exception)(?: \[[A-Z0-9_]+\])?: \S/;

const NOISE: readonly RegExp[] = [
  /^[\s^~]+$/, // the caret row under the echoed source line
  /^at\s/, // stack frames
  /^Node\.js v\d/, // the footer of an uncaught exception
  /^(?:file:\/\/|node:)?\/?\S*:\d+(?::\d+)?$/, // the location above the echoed source line
  /^[{}[\]]+$/, // the braces of an error's printed properties
  /^(?:throw\b.*|Require stack:|- \/.*)$/, // the echoed `throw err;` and a require stack
  /^\(Use `node --trace-/, // the hint under a thrown value that is not an Error
];

/** One line of what was printed (empty when nothing was), at most `max` characters. */
export function printedLine(printed: string, max = PRINTED_LINE_MAX): string {
  const lines = printed
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const thrown = lines.find((line) => THROWN.test(line));
  const kept = thrown !== undefined ? [thrown] : lines.filter((line) => !NOISE.some((noise) => noise.test(line)));
  return cutAtWord(kept.join('; ').replace(/\s+/g, ' '), max);
}

/** `text`, or its start up to the last whole word that fits with an ellipsis. */
export function cutAtWord(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, max - 1);
  const space = room.lastIndexOf(' ');
  return `${(space >= max / 2 ? room.slice(0, space) : room).replace(/[\s,;:]+$/, '')}…`;
}
