/**
 * Remote access on the device: the session manager, fed by what the link
 * hands over (commands, session frames, the end of a connection) and
 * answering through it. Registered after the link, so it closes first and
 * its sessions' openers hear "the agent is stopping" while the link is up.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import { SessionManager } from '../remote/session-manager.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { Uplink } from './uplink.js';

export function openRemoteAccess(
  config: AgentConfig,
  { runtime, uplink, logger }: { runtime: ContainerRuntime; uplink: Uplink; logger: Logger },
  closer: Closer,
): SessionManager {
  const { link, remote } = uplink;
  const sessions = new SessionManager({
    runtime,
    allowHostShell: config.allowHostShell,
    maxSessions: config.maxSessions,
    idleTimeoutMs: config.sessionIdleTimeoutMs,
    logger,
    link: {
      publishReply: (reply) => void link.publishReply(reply),
      publishSessionFrame: (sessionId, frame) => void link.publishSessionFrame(sessionId, frame),
    },
  });
  const unsubscribe = [
    remote.commands.on((command) => sessions.onCommand(command)),
    remote.frames.on(({ sessionId, frame }) => sessions.onFrame(sessionId, frame)),
    remote.connectionLost.on(() => sessions.linkLost()),
  ];
  closer.add('remote sessions', () => {
    for (const off of unsubscribe) off();
    sessions.close();
  });
  return sessions;
}
