/**
 * What a start opened, closed again in reverse order: the last thing opened
 * is the first closed, so what feeds a part stops before the part is flushed
 * (the hub's broker before its telemetry ingest, the agent's reconciler
 * before its link), and the files close last. A failed start closes what it
 * had opened, so it never leaves a process hanging on open handles (a port in
 * use, say).
 */
export class Closer {
  private readonly steps: { what: string; close: () => unknown }[] = [];

  add(what: string, close: () => unknown): void {
    this.steps.push({ what, close });
  }

  /** Runs every step, even after one fails; the first failure is thrown at the end. */
  async close(): Promise<void> {
    let first: unknown;
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.close();
      } catch (err) {
        first ??= new Error(`closing ${step.what} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    if (first) throw first;
  }
}
