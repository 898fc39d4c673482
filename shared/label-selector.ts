/**
 * Label selectors in kubectl's syntax, parsed and matched without I/O, so the
 * console (and anything else) filters devices the way operators already
 * write it:
 *
 *   site=roof             equal (`==` too)
 *   site!=roof            not equal, or no such label
 *   gpu                   has the label
 *   !gpu                  has no such label
 *   site in (roof,yard)   one of
 *   site notin (roof)     none of, or no such label
 *   site=roof,arch=arm64  every requirement (comma = and)
 *
 * An empty selector matches every device. Keys and values must be what a
 * label can be (shared/ids.ts), so a typo is reported instead of silently
 * matching nothing.
 */
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from './ids.js';

export type LabelRequirement =
  | { key: string; op: 'exists' }
  | { key: string; op: 'not-exists' }
  | { key: string; op: 'in'; values: string[] }
  | { key: string; op: 'notin'; values: string[] };

/** Every requirement must hold; `[]` selects everything. */
export type LabelSelector = LabelRequirement[];

/** Bad syntax, with the 1-based column where the parser gave up. */
export class LabelSelectorError extends Error {
  readonly code = 'invalid_label_selector';
  constructor(
    message: string,
    readonly column: number,
  ) {
    super(`${message} (column ${column})`);
    this.name = 'LabelSelectorError';
  }
}

const keyRe = new RegExp(LABEL_KEY_PATTERN);
const valueRe = new RegExp(LABEL_VALUE_PATTERN);

type TokenKind = 'word' | '=' | '==' | '!=' | '!' | '(' | ')' | ',' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  /** 0-based offset in the selector. */
  at: number;
}

/** Anything but white space and the operators' characters is part of a word (a key or a value). */
const WORD_END = /[\s,()=!]/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if ((c === '=' || c === '!') && text[i + 1] === '=') {
      tokens.push({ kind: c === '=' ? '==' : '!=', text: `${c}=`, at: i });
      i += 2;
    } else if (c === '=' || c === '!' || c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c, text: c, at: i });
      i++;
    } else {
      const start = i;
      while (i < text.length && !WORD_END.test(text[i] as string)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    }
  }
  tokens.push({ kind: 'end', text: '', at: text.length });
  return tokens;
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'the end' : `"${token.text}"`;
}

/** Parses `text`; throws LabelSelectorError naming what was expected and where. */
export function parseLabelSelector(text: string): LabelSelector {
  const tokens = tokenize(text);
  let next = 0;
  const peek = (): Token => tokens[next] as Token;
  const take = (): Token => tokens[next++] as Token;
  const fail = (message: string, token: Token): never => {
    throw new LabelSelectorError(message, token.at + 1);
  };

  const key = (token: Token): string => {
    if (token.kind !== 'word') fail(`expected a label key, found ${describe(token)}`, token);
    if (!keyRe.test(token.text)) fail(`invalid label key "${token.text}"`, token);
    return token.text;
  };
  const value = (token: Token): string => {
    if (!valueRe.test(token.text)) fail(`invalid label value "${token.text}"`, token);
    return token.text;
  };
  /** `(a, b)`: at least one value, as a set with no repeats. */
  const valueList = (name: string): string[] => {
    const open = take();
    if (open.kind !== '(') fail(`expected "(" after "${name}", found ${describe(open)}`, open);
    const values = new Set<string>();
    for (;;) {
      const token = take();
      if (token.kind !== 'word') fail(`expected a value in the list of "${name}", found ${describe(token)}`, token);
      values.add(value(token));
      const after = take();
      if (after.kind === ')') return [...values];
      if (after.kind !== ',') fail(`expected "," or ")" in the list of "${name}", found ${describe(after)}`, after);
    }
  };

  const requirement = (): LabelRequirement => {
    const first = take();
    if (first.kind === '!') return { key: key(take()), op: 'not-exists' };
    const name = key(first);
    const op = peek();
    if (op.kind === ',' || op.kind === 'end') return { key: name, op: 'exists' };
    take();
    if (op.kind === '=' || op.kind === '==' || op.kind === '!=') {
      // `site=` is an empty value (a label can be empty), as kubectl reads it.
      const single = peek().kind === 'word' ? value(take()) : '';
      return { key: name, op: op.kind === '!=' ? 'notin' : 'in', values: [single] };
    }
    if (op.kind === 'word' && (op.text === 'in' || op.text === 'notin')) {
      return { key: name, op: op.text, values: valueList(`${name} ${op.text}`) };
    }
    return fail(`expected "=", "==", "!=", "in", "notin", "," or the end after "${name}", found ${describe(op)}`, op);
  };

  const selector: LabelSelector = [];
  if (peek().kind === 'end') return selector;
  for (;;) {
    selector.push(requirement());
    const after = take();
    if (after.kind === 'end') return selector;
    if (after.kind !== ',') fail(`expected "," or the end, found ${describe(after)}`, after);
  }
}

/** Whether `labels` meets every requirement; a missing label fails `in` and passes `notin`, as in Kubernetes. */
export function matchesLabelSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((requirement) => meets(requirement, labels));
}

function meets(requirement: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  switch (requirement.op) {
    case 'exists':
      return has;
    case 'not-exists':
      return !has;
    case 'in':
      return has && requirement.values.includes(labels[requirement.key] as string);
    case 'notin':
      return !has || !requirement.values.includes(labels[requirement.key] as string);
  }
}
