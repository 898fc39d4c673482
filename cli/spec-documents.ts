/**
 * Reading spec files for `apply`, `diff` and `run -f`: a file's text (or
 * stdin's for `-`), split into its YAML or JSON documents. Each document
 * carries the name messages give it: `app.yaml`, or `app.yaml (document 2)`
 * when the file holds several, so an error points at the document to fix.
 *
 * YAML 1.1 merge keys are read (`<<: *common`), as docker-compose reads them:
 * Compose files share settings through an anchored `x-` key, and a spec file
 * may do the same; the keys a mapping writes itself win over the merged ones.
 *
 * Callers load the YAML library first (`await loadYaml()`): parsing here is
 * synchronous and finds it loaded.
 */
import type { CliIO } from './context.js';
import { UsageError } from './errors.js';
import { yaml } from './yaml.js';

export interface Document {
  /** How the document is named in messages: `app.yaml`, or `app.yaml (document 2)`. */
  source: string;
  value: unknown;
  /** Set when the document could not be parsed. */
  error?: UsageError;
}

/** A file's text, or stdin's for `-`; a file that cannot be read is a UsageError naming it. */
export async function readSource(io: CliIO, file: string): Promise<string> {
  if (file === '-') return io.readStdin();
  try {
    return await io.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UsageError(`${file}: ${reason}`);
  }
}

/** A document with nothing in it (or only comments) parses as a null scalar. */
function isEmpty(contents: unknown): boolean {
  return contents === null || (yaml().isScalar(contents) && contents.value === null);
}

/**
 * YAML or JSON (JSON is YAML 1.2), one or more documents. Empty documents —
 * a leading `---`, a trailing one, a file of comments — are skipped, as kubectl does.
 * `kind` names what a file without any was expected to hold; with `allowEmpty` such
 * a file is no error and gives no document (a file of comments in a folder of specs).
 */
export function parseDocuments(file: string, text: string, kind = 'app spec', { allowEmpty = false } = {}): Document[] {
  const name = file === '-' ? '<stdin>' : file;
  const nonEmpty = yaml()
    .parseAllDocuments(text, { prettyErrors: true, merge: true })
    .filter((doc) => doc.errors.length > 0 || !isEmpty(doc.contents));
  if (nonEmpty.length === 0) {
    return allowEmpty ? [] : [{ source: name, value: undefined, error: new UsageError(`${name}: no ${kind} found`) }];
  }
  return nonEmpty.map((doc, i) => {
    const source = nonEmpty.length === 1 ? name : `${name} (document ${i + 1})`;
    const [first] = doc.errors;
    if (first) {
      const lines = first.message.split('\n').filter((line) => line.trim() !== '');
      return { source, value: undefined, error: new UsageError(`${source}: not valid YAML or JSON`, lines) };
    }
    return { source, value: doc.toJS() };
  });
}
