/** A spec shown as the YAML the editor would show, read-only. */
import { useMemo } from 'preact/hooks';
import { ErrorNote } from '../components.js';
import { useYamlTools } from './use-yaml.js';

export function SpecText({ spec, label }: { spec: unknown; label: string }) {
  const { tools, error } = useYamlTools();
  const text = useMemo(() => tools?.specToText(spec), [tools, spec]);
  if (error) return <ErrorNote error={error} />;
  return (
    <section aria-label={label}>
      <pre class="spec-text">{text ?? 'Loading…'}</pre>
    </section>
  );
}
