/**
 * The types of shared/validators.generated.js, which `npm run validators`
 * (cli/validator-code.ts) writes: the precompiled validators, by a hash of
 * their schema's JSON (schemaKey in shared/validate.ts).
 */
import type { ValidateFunction } from 'ajv';

export declare const VALIDATORS: ReadonlyMap<string, ValidateFunction>;
