/**
 * Docker labels Flotilla puts on every container it creates. They are the
 * agent's only record of what it runs: after a restart of the agent, Docker or
 * the device, the agent adopts containers by these labels instead of keeping
 * a second, possibly stale, list of its own.
 */
export const LABEL_MANAGED = 'flotilla.managed';
export const LABEL_APP = 'flotilla.app';
export const LABEL_CONTAINER = 'flotilla.container';
export const LABEL_APP_REVISION = 'flotilla.app-revision';
export const LABEL_SPEC_HASH = 'flotilla.spec-hash';
export const LABEL_DEVICE = 'flotilla.device';

/**
 * The image reference a spec wrote, on a container created from an image the
 * engine knows only by ID (a digest reference the agent loaded itself,
 * agent/images/image-aliases.ts): what the agent observes as the container's
 * image, where Docker's Config.Image would say the ID.
 */
export const LABEL_IMAGE = 'flotilla.image';

/**
 * A job's container (agent/jobs/) carries these instead of the app labels:
 * the job's name, its execution id and the attempt (1, 2, …). The app
 * reconciler never sees it (listManaged leaves it out), and an agent that
 * restarts mid-job finds the attempt it had started by them.
 */
export const LABEL_JOB = 'flotilla.job';
export const LABEL_JOB_EXECUTION = 'flotilla.job-execution';
export const LABEL_JOB_ATTEMPT = 'flotilla.job-attempt';

/**
 * An init container (`spec.initContainers`) carries the app's labels and this one ("true"): the
 * reconciler lists it apart (listManaged leaves it out), so it is never judged, kept or
 * retired as one of the app's containers.
 */
export const LABEL_INIT = 'flotilla.init';

/**
 * Docker container name for one init container of one revision of an app. Two `_` (an app
 * container's name has one, a job's three; names never contain `_`), and the revision, so a
 * leftover of an earlier revision never holds the name.
 */
export function initContainerName(app: string, revision: number, container: string): string {
  return `${app}_init_${container}.${revision}`;
}

/** Docker container name for one container of one app; unambiguous because names never contain `_`. */
export function containerName(app: string, container: string): string {
  return `${app}_${container}`;
}

/**
 * Docker container name for one container of one attempt of a job execution.
 * Three `_` where an app's name has one (names never contain `_`), so it never
 * takes an app container's name; the execution id keeps two executions of a
 * job of one name apart.
 */
export function jobContainerName(execution: string, attempt: number, container: string): string {
  return `job_${execution}_${attempt}_${container}`;
}
