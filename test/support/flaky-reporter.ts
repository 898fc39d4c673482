/**
 * Lists the tests that failed and then passed on their retry (`retry` in vitest.config.ts), so a
 * flaky test is reported by name at the end of every run instead of passing unseen.
 *
 * With FLOTILLA_FLAKY_LOG set (.ci/run sets it), each one is also appended to that file as
 * `file > suite > test: first error line`, for the CI log's summary.
 */
import { appendFileSync } from 'node:fs';
import type { Reporter, TestCase } from 'vitest/node';

export default class FlakyReporter implements Reporter {
  private readonly flaky: string[] = [];

  onTestCaseResult(test: TestCase): void {
    const { flaky, retryCount } = test.diagnostic() ?? { flaky: false, retryCount: 0 };
    if (!flaky) return;
    const firstError = test.result().errors?.[0]?.message?.split('\n')[0] ?? 'no error recorded';
    this.flaky.push(
      `${test.module.moduleId.replace(`${process.cwd()}/`, '')} > ${test.fullName} (passed after ${retryCount} retry): ${firstError}`,
    );
  }

  onTestRunEnd(): void {
    if (this.flaky.length === 0) return;
    const lines = this.flaky.map((line) => `  ${line}`).join('\n');
    process.stdout.write(`\nFlaky: ${this.flaky.length} test(s) failed, then passed on retry:\n${lines}\n`);
    const log = process.env.FLOTILLA_FLAKY_LOG;
    if (log) appendFileSync(log, `${this.flaky.join('\n')}\n`);
  }
}
