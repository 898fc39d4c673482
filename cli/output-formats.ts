/** `-o table|json|yaml`: apart from output.ts, which needs the YAML writer, so the root program can offer the choice without loading it. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
