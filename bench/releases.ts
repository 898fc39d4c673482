/**
 * What a benchmark started (processes, containers, temp dirs), released in reverse order
 * on the way out, Ctrl-C and SIGTERM included: a benchmark that stops half-way leaves
 * nothing running behind it.
 */
export interface Releases {
  push(release: { what: string; run: () => unknown }): void;
  /** Runs each release once, newest first; a failing one is reported and the rest still run. */
  releaseAll(): Promise<void>;
}

export function releasesOnExit(say: (text: string) => void): Releases {
  const releases: { what: string; run: () => unknown }[] = [];
  let released = false;
  async function releaseAll(): Promise<void> {
    if (released) return;
    released = true;
    for (const { what, run } of releases.reverse()) {
      try {
        await run();
      } catch (err) {
        console.error(`cleanup: ${what}: ${(err as Error).message}`);
      }
    }
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: cleaning up`);
      void releaseAll().then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  return { push: (release) => releases.push(release), releaseAll };
}
