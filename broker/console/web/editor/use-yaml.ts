/**
 * The YAML tools (editor/yaml-lines.ts), loaded on first use: the parser is
 * the biggest part of the editor, and the fleet page, which most visits
 * open, must not carry it.
 */
import { useEffect, useState } from 'preact/hooks';

export type YamlTools = typeof import('./yaml-lines.js');

let loading: Promise<YamlTools> | undefined;

export function loadYamlTools(): Promise<YamlTools> {
  loading ??= import('./yaml-lines.js').catch((err: unknown) => {
    // A failed download (the hub restarting) is tried again on the next use, not remembered.
    loading = undefined;
    throw err;
  });
  return loading;
}

/** The tools once loaded (undefined until then), or the error of the load. */
export function useYamlTools(): { tools?: YamlTools; error?: Error } {
  const [state, setState] = useState<{ tools?: YamlTools; error?: Error }>({});
  useEffect(() => {
    let current = true;
    loadYamlTools().then(
      (tools) => current && setState({ tools }),
      (error: Error) => current && setState({ error }),
    );
    return () => {
      current = false;
    };
  }, []);
  return state;
}
