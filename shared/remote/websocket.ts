/**
 * The text messages of the session WebSocket (docs/remote-protocol.md §5):
 * the hub's answer to the client's SessionRequest. Kept free of the schemas
 * (requests.ts) so a CLI that only opens a session does not load them.
 */

/** The hub's first text message to a WebSocket client once the device opened the session; errors close the socket instead. */
export interface SessionReady {
  type: 'opened';
  sessionId: string;
  container?: string;
  /** The window each side grants at first. */
  window: number;
}

/** How the hub tells a WebSocket client a session could not open or ended without the device's exit: one text message, then the close. */
export interface SessionFailed {
  type: 'error';
  error: { code: SessionFailureCode; message: string };
}

/**
 * Why a session failed, as the hub reports it, and the WebSocket close code
 * it closes with (4000 + the HTTP status it resembles, 1000 for a normal end).
 */
export const SESSION_FAILURES = {
  invalid_request: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  not_found: 4404,
  /** The device did not answer the open in time. */
  timeout: 4408,
  /** The device is at its session limit. */
  busy: 4429,
  /** The device or the engine failed to start the session, or it broke (lost frames, a bad frame). */
  failed: 4500,
  /** The device is not connected to the hub. */
  offline: 4503,
  /** The device's link to the hub dropped while the session ran. */
  link_lost: 4504,
  /** No data either way for the idle timeout. */
  idle: 4505,
} as const;
export type SessionFailureCode = keyof typeof SESSION_FAILURES;
