/**
 * The hub names what it refused by JSON pointer (`/maxUses`,
 * `/labels/site`); a form shows each at its own field, and whatever names
 * no field of the form in the note beneath it.
 */
import { ApiCallError } from '../api.js';

/** The hub's message for `field` (a top-level param) in a failed call, if it named one. */
export function hubIssueAt(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiCallError)) return undefined;
  const pointer = `/${field}`;
  return error.issues.find((issue) => issue.path === pointer || issue.path.startsWith(`${pointer}/`))?.message;
}

/** Whether the failure is fully shown at the form's fields, so the note beneath would only repeat it. */
export function shownAtFields(error: unknown, fields: readonly string[]): boolean {
  if (!(error instanceof ApiCallError) || error.issues.length === 0) return false;
  return error.issues.every((issue) => fields.some((field) => issue.path === `/${field}` || issue.path.startsWith(`/${field}/`)));
}
