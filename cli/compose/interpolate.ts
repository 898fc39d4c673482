/**
 * Compose's variable interpolation, done as Compose does it before a file is
 * read: in every string value (never in keys), `${VAR}` and `$VAR` take the
 * variable's value, `${VAR:-default}` / `${VAR-default}` a default when it is
 * unset or empty / unset, `${VAR:?message}` / `${VAR?message}` refuse with the
 * message, `${VAR:+alt}` / `${VAR+alt}` give `alt` when it is set, and `$$`
 * is a literal `$`.
 *
 * One difference from Compose, on purpose: a variable that is unset, with no
 * default, is a problem naming it, where Compose warns and uses an empty
 * string. A spec is stored and sent to a fleet; an empty value taken from the
 * shell of whoever ran `apply` is a mistake that should stop the apply.
 */

export type Variables = Readonly<Record<string, string | undefined>>;

export interface Interpolated {
  value: unknown;
  /** `services.web.image: ${TAG} is not set …`: one line per problem. */
  problems: string[];
}

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
// $$ | ${NAME[op word]} | $NAME; the word of a braced form may not hold "}" (Compose's own limit).
const REFERENCE = new RegExp(`\\$(?:(\\$)|\\{(${NAME})(?:(:?[-?+])([^}]*))?\\}|(${NAME})|(\\{[^}]*\\}?))`, 'g');

/** `value` with every string interpolated, and the problems found on the way, each named by its path. */
export function interpolate(value: unknown, variables: Variables, path = ''): Interpolated {
  const problems: string[] = [];
  const walk = (node: unknown, at: string): unknown => {
    if (typeof node === 'string') return interpolateString(node, variables, at, problems);
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${at}[${i}]`));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, at === '' ? key : `${at}.${key}`)]));
    }
    return node;
  };
  return { value: walk(value, path), problems };
}

function interpolateString(text: string, variables: Variables, at: string, problems: string[]): string {
  if (!text.includes('$')) return text;
  return text.replace(REFERENCE, (whole, dollar, braced, op, word, bare, bad) => {
    if (dollar) return '$';
    if (bad !== undefined) {
      problems.push(`${at}: "${whole}" is not a variable Compose can substitute (write $$ for a literal $)`);
      return whole;
    }
    const name: string = braced ?? bare;
    const value = variables[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (op as string | undefined) {
      case ':-':
        return nonEmpty ? value : word;
      case '-':
        return set ? value : word;
      case ':+':
        return nonEmpty ? word : '';
      case '+':
        return set ? word : '';
      case ':?':
      case '?':
        if (op === ':?' ? nonEmpty : set) return value!;
        problems.push(`${at}: \${${name}} ${word === '' ? `is ${op === ':?' ? 'unset or empty' : 'unset'}` : word}`);
        return '';
      default:
        if (set) return value;
        problems.push(
          `${at}: \${${name}} is not set: set it in the environment (or in .env beside the Compose file), or give a default: \${${name}:-value}`,
        );
        return '';
    }
  });
}
