/**
 * The schemas' validators are compiled at build time (cli/validator-code.ts
 * writes shared/validators/*.generated.js): the committed files must be what
 * the generator renders now, every listed schema must be served from them once
 * the hub and the agent have loaded their groups, and their validators must
 * report exactly what ajv compiling the schema at run time reports, down to
 * the path and message a user reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { renderValidatorModules, VALIDATOR_GROUPS, VALIDATORS_COMMAND } from '../../cli/validator-code.js';
import {
  AppSpec,
  compileAtRunTime,
  DeviceState,
  formatIssues,
  precompiledValidator,
  validate,
  validateAppSpec,
  validatorFor,
} from '../../shared/index.js';
import { REPO_ROOT } from '../support/processes.js';

/** A spec with a mistake of each kind the validator words differently. */
const badSpec = () => ({
  name: 'Sensor',
  scheduling: { devices: ['gw-1'] },
  spec: {
    containers: [
      {
        name: 'web',
        image: 'nginx:1.27',
        ports: ['8080:80', '80:80:tcp'],
        restartPolicy: { name: 'sometimes' },
        imagePullPolicy: 'Always',
      },
    ],
    update: { strategy: 'download-then-kill', rollback: 'auto' },
  },
});

/** Errors as data: a run-time compile's carry TypeBox's own schema objects (with its symbol keys), the precompiled ones plain copies. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('precompiled schema validators', () => {
  it('are committed as the generator renders them now', () => {
    for (const [file, text] of renderValidatorModules()) {
      const committed = readFileSync(join(REPO_ROOT, file), 'utf8');
      expect(committed === text, `${file} is stale: run \`${VALIDATORS_COMMAND}\` and commit it`).toBe(true);
    }
  });

  it('serve every listed schema once the hub and the agent have loaded their groups, so none is compiled at run time', async () => {
    const common = VALIDATOR_GROUPS.find((group) => group.loadedBy === 'shared/validate.ts')!;
    for (const [name, schema] of Object.entries(common.schemas())) expect(precompiledValidator(schema), name).toBeTypeOf('function');
    await import('../../broker/hub.js');
    await import('../../agent/agent.js');
    for (const group of VALIDATOR_GROUPS) {
      for (const [name, schema] of Object.entries(group.schemas())) {
        const precompiled = precompiledValidator(schema);
        expect(precompiled, `${name} (${group.file})`).toBeTypeOf('function');
        expect(validatorFor(schema), name).toBe(precompiled);
      }
    }
  });

  it('report a bad spec with the same field paths and messages as a run-time compile', () => {
    const precompiled = precompiledValidator(AppSpec)!;
    const compiled = compileAtRunTime(AppSpec);
    expect(precompiled).not.toBe(compiled);
    expect(precompiled(badSpec())).toBe(false);
    expect(compiled(badSpec())).toBe(false);
    expect(asJson(precompiled.errors)).toEqual(asJson(compiled.errors));

    const result = validateAppSpec(badSpec());
    expect(result.ok ? 'ok' : formatIssues(result.issues)).toBe(
      [
        'name: must match pattern "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" (e.g. "sensor-gateway")',
        'spec.containers[0].imagePullPolicy: is not a known field',
        `spec.containers[0].ports[1]: must match pattern "${(AppSpec.properties.spec.properties.containers.items.properties.ports.items as { pattern: string }).pattern}" (e.g. "8080:80", "127.0.0.1:53:53/udp", "80")`,
        'spec.containers[0].restartPolicy.name: must be one of "no", "always", "unless-stopped", "on-failure"',
      ].join('\n'),
    );
  });

  it('agree with a run-time compile on a device message', () => {
    const state = { revision: 'r1', apps: [{ name: 'web', containers: 'many' }], extra: true };
    const precompiled = precompiledValidator(DeviceState)!;
    const compiled = compileAtRunTime(DeviceState);
    expect(precompiled(state)).toBe(compiled(state));
    expect(asJson(precompiled.errors)).toEqual(asJson(compiled.errors));
    expect(precompiled.errors?.length).toBeGreaterThan(0);
  });

  it('agree with a run-time compile on every listed schema, for values wrong in assorted ways', async () => {
    await import('../../broker/hub.js');
    await import('../../agent/agent.js');
    const wrong = [null, 'text', 42, [], {}, { unknown: true }, { name: 7, revision: 'x', apps: {}, spec: [] }];
    for (const group of VALIDATOR_GROUPS) {
      for (const [name, schema] of Object.entries(group.schemas())) {
        const precompiled = precompiledValidator(schema)!;
        const compiled = compileAtRunTime(schema);
        for (const value of wrong) {
          expect(precompiled(value), `${name} on ${JSON.stringify(value)}`).toBe(compiled(value));
          expect(asJson(precompiled.errors), `${name} on ${JSON.stringify(value)}`).toEqual(asJson(compiled.errors));
        }
      }
    }
  });

  it('are not used for a schema changed since they were written, which is compiled from what it says now', () => {
    const changed = structuredClone(AppSpec);
    changed.properties.name.pattern = '^[A-Z]+$';
    expect(precompiledValidator(changed)).toBeUndefined();
    const spec = { ...badSpec(), name: 'SENSOR' };
    const paths = (result: ReturnType<typeof validate>) => (result.ok ? [] : result.issues.map((issue) => issue.path));
    expect(paths(validate(changed, spec))).not.toContain('name');
    expect(paths(validate(AppSpec, spec))).toContain('name');
  });

  it('leave a schema outside the list to a run-time compile', () => {
    const Ad = Type.Object({ port: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });
    expect(precompiledValidator(Ad)).toBeUndefined();
    const result = validate(Ad, { port: 0, other: 1 });
    expect(result.ok ? '' : formatIssues(result.issues)).toBe('other: is not a known field\nport: must be >= 1');
  });
});
