/**
 * jobs.*: one-off work on many devices (docs/jobs.md). Like the app methods,
 * these answer on every replica; what they change reaches devices through the
 * leader's plan (jobs.ts JobsChange).
 */
import { ApiError } from '../dispatcher/errors.js';
import { type ApiHandlersFor, UNKNOWN_CALLER } from '../dispatcher/method.js';
import type { Jobs } from './jobs.js';

export type JobMethodName = 'jobs.create' | 'jobs.list' | 'jobs.get' | 'jobs.cancel' | 'jobs.delete';

export type JobMethodDeps = Pick<Jobs, 'create' | 'list' | 'get' | 'cancel' | 'delete'>;

export function jobMethods(jobs: JobMethodDeps): ApiHandlersFor<JobMethodName> {
  return {
    'jobs.create': ({ spec }) => jobs.create(spec),
    'jobs.list': () => jobs.list(),
    'jobs.get': ({ name }) => jobs.get(name),
    'jobs.cancel': ({ name }, context = UNKNOWN_CALLER) => jobs.cancel(name, context.caller),
    'jobs.delete': ({ name }, context = UNKNOWN_CALLER) => jobs.delete(name, context.caller),
  };
}

/** A method table without jobs (a hub wired without a job store) says so rather than failing. */
export function unavailableJobMethods(): ApiHandlersFor<JobMethodName> {
  const unavailable = () => {
    throw new ApiError('invalid_request', 'jobs are not available on this hub');
  };
  return {
    'jobs.create': unavailable,
    'jobs.list': unavailable,
    'jobs.get': unavailable,
    'jobs.cancel': unavailable,
    'jobs.delete': unavailable,
  };
}
