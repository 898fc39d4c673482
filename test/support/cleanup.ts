/**
 * Collects teardown steps as a test acquires resources, and runs them in
 * reverse order (last acquired, first released) from afterEach/afterAll.
 * Every step runs even if an earlier one fails; the first failure is rethrown.
 */
export class Cleanup {
  private steps: { what: string; run: () => unknown }[] = [];

  /** Registers a teardown step and returns `value`, so acquisition and release sit on one line. */
  add<T>(what: string, run: () => unknown, value?: T): T {
    this.steps.push({ what, run });
    return value as T;
  }

  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    let firstError: unknown;
    for (const step of steps) {
      try {
        await step.run();
      } catch (err) {
        firstError ??= new Error(`cleanup "${step.what}" failed: ${(err as Error).message}`, { cause: err });
      }
    }
    if (firstError) throw firstError;
  }
}
