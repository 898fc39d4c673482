/**
 * A Compose `command:` or `entrypoint:` written as one string, split into
 * words as Compose splits it (POSIX shell words, as Python's shlex and Go's
 * shellwords do): blanks separate words, single quotes keep everything,
 * double quotes keep everything but `\"` and `\\`, and a backslash outside
 * quotes escapes the next character. Nothing is expanded: no `$VAR`, no
 * globs, no `;` or `|` (Compose does not run a shell either; write
 * `["sh", "-c", "…"]` for one).
 */

/** The words of `text`; throws an Error naming the open quote when one is never closed. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new Error(`the ${quote === "'" ? 'single' : 'double'} quote is never closed`);
  if (inWord) words.push(word);
  return words;
}
