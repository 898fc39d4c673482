/**
 * An app spec as YAML, the one way `export` writes it and `diff` compares it:
 * keys in the order the spec has them (the hub keeps the order it was applied
 * in), and no folding of long lines, so a line of the file is a line of the
 * diff and the text reads back as the very same spec.
 */
import type { AppSpec } from '../shared/schemas/spec.js';
import { yaml } from './yaml.js';

export function specYaml(spec: AppSpec): string {
  return yaml().stringify(spec, { lineWidth: 0 });
}
