/**
 * The hub's side of remote access, played by a test against a real agent:
 * a bare Aedes broker on loopback (no hub ACL in the way: this checks the
 * agent, not the hub), a real MQTT.js client that publishes `session.open` /
 * `session.close` commands and down frames, and reads replies and up frames
 * with the same FrameReceiver and flow control the CLI uses.
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { MqttClient } from 'mqtt';
import { type Agent, startAgent } from '../../../agent/agent.js';
import type { ContainerRuntime } from '../../../agent/runtime/runtime.js';
import { type Command, type CommandReply, Topics } from '../../../shared/index.js';
import {
  asBuffer,
  CHANNEL,
  DEFAULT_WINDOW_BYTES,
  FRAME,
  type Frame,
  type FrameBody,
  FrameReceiver,
  FrameSender,
  newSessionId,
  type SessionOpened,
  type SessionRequest,
} from '../../../shared/remote/index.js';
import type { Cleanup } from '../../support/cleanup.js';
import type { LogCapture } from '../../support/logs.js';
import { closeClient, connectClient } from '../../support/mqtt-client.js';
import { scratchDir } from '../../support/scratch.js';
import { waitFor } from '../../support/wait.js';

export const topics = new Topics();

export interface HubDouble {
  port: number;
  url: string;
  client: MqttClient;
  /** Resolves once `deviceId` has subscribed to its commands and session frames. */
  deviceReady(deviceId: string): Promise<void>;
  open(deviceId: string, request: SessionRequest, options?: OpenOptions): Promise<Opened>;
  command(deviceId: string, command: Command): Promise<void>;
  reply(commandId: string, timeoutMs?: number): Promise<CommandReply>;
  /** Replies seen so far for this command id. */
  repliesTo(commandId: string): CommandReply[];
}

export interface OpenOptions {
  window?: number;
  /** Grant WINDOW back as data arrives (default true); false plays a reader that never reads. */
  autoGrant?: boolean;
}

export interface Opened {
  reply: CommandReply;
  peer: SessionPeer;
}

/** One session as its opener sees it. */
export class SessionPeer {
  readonly frames: Frame[] = [];
  /** Why the up frames broke the protocol, if they did. */
  broken: string | undefined;
  private readonly receiver = new FrameReceiver();
  private readonly sender: FrameSender;

  constructor(
    client: MqttClient,
    readonly deviceId: string,
    readonly sessionId: string,
    readonly autoGrant: boolean,
  ) {
    this.sender = new FrameSender((bytes) => client.publish(topics.session(deviceId, sessionId, 'down'), asBuffer(bytes), { qos: 0 }));
  }

  /** An up frame arrived. */
  take(bytes: Buffer): void {
    const decoded = this.receiver.receive(bytes);
    if (!decoded.ok) {
      this.broken ??= decoded.reason;
      return;
    }
    this.frames.push(decoded.frame);
    if (this.autoGrant && decoded.frame.type === FRAME.data) {
      this.send({ type: FRAME.window, channel: decoded.frame.channel, bytes: decoded.frame.data.length });
    }
  }

  send(body: FrameBody): void {
    this.sender.send(body);
  }

  stdin(text: string | Buffer): void {
    this.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from(text) });
  }

  /** The bytes that arrived on a channel, in order. */
  bytes(channel: number = CHANNEL.stdio): Buffer {
    return Buffer.concat(this.frames.flatMap((f) => (f.type === FRAME.data && f.channel === channel ? [f.data] : [])));
  }

  text(channel: number = CHANNEL.stdio): string {
    return this.bytes(channel).toString('utf8');
  }

  /** The session's last frame (EXIT 0 or CLOSE 0), once it came. */
  ending(): Frame | undefined {
    return this.frames.find((f) => f.channel === CHANNEL.session && (f.type === FRAME.exit || f.type === FRAME.close));
  }

  async waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
    try {
      return await waitFor(what, probe, { timeoutMs, intervalMs: 20 });
    } catch (err) {
      const last = this.frames.slice(-5).map((f) => ({ ...f, ...('data' in f ? { data: f.data.toString().slice(0, 200) } : {}) }));
      throw new Error(`${(err as Error).message}; broken: ${this.broken}; last frames: ${JSON.stringify(last)}`);
    }
  }

  async waitForText(text: string, channel: number = CHANNEL.stdio, timeoutMs?: number): Promise<string> {
    return this.waitFor(`"${text}" on channel ${channel}`, () => this.text(channel).includes(text) && this.text(channel), timeoutMs);
  }

  /** Waits for the session's last frame. */
  async ended(timeoutMs?: number): Promise<Frame> {
    return this.waitFor('the session to end', () => this.ending(), timeoutMs);
  }
}

export async function startHubDouble(cleanup: Cleanup): Promise<HubDouble> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add('broker', async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as { port: number }).port;
  const url = `mqtt://127.0.0.1:${port}`;
  const subscribed = new Map<string, Set<string>>();
  aedes.on('subscribe', (subscriptions, client) => {
    const set = subscribed.get(client.id) ?? new Set<string>();
    for (const s of subscriptions) set.add(s.topic);
    subscribed.set(client.id, set);
  });
  aedes.on('clientDisconnect', (client) => subscribed.delete(client.id));

  const client = await connectClient(url, { clientId: 'hub-double' });
  cleanup.add('hub client', () => closeClient(client));
  await client.subscribeAsync({ [topics.allDevices('replies')]: { qos: 1 }, [topics.allSessions('up')]: { qos: 0 } });
  const replies: CommandReply[] = [];
  const peers = new Map<string, SessionPeer>();
  client.on('message', (topic, payload) => {
    const parsed = topics.parse(topic);
    if (parsed?.kind === 'session') peers.get(parsed.sessionId)?.take(payload);
    else if (parsed?.kind === 'device' && parsed.channel === 'replies') replies.push(JSON.parse(payload.toString()) as CommandReply);
  });

  const double: HubDouble = {
    port,
    url,
    client,
    deviceReady: (deviceId) =>
      waitFor(`${deviceId} subscribed to its commands and sessions`, () => {
        const set = subscribed.get(deviceId);
        return set?.has(topics.device(deviceId, 'commands')) && set.has(topics.deviceSessions(deviceId, 'down'));
      }).then(() => undefined),
    async command(deviceId, command) {
      await client.publishAsync(topics.device(deviceId, 'commands'), JSON.stringify(command), { qos: 1 });
    },
    repliesTo: (commandId) => replies.filter((r) => r.commandId === commandId),
    reply: (commandId, timeoutMs = 15_000) =>
      waitFor(`the reply to command ${commandId}`, () => replies.find((r) => r.commandId === commandId), {
        timeoutMs,
        intervalMs: 20,
      }),
    async open(deviceId, request, options = {}) {
      const sessionId = newSessionId();
      const peer = new SessionPeer(client, deviceId, sessionId, options.autoGrant ?? true);
      peers.set(sessionId, peer);
      const commandId = `open-${sessionId}`;
      await double.command(deviceId, {
        id: commandId,
        type: 'session.open',
        args: { sessionId, request, window: options.window ?? DEFAULT_WINDOW_BYTES, openedBy: 'test-operator' },
        expiresAt: new Date(Date.now() + 30_000).toISOString(),
      });
      return { reply: await double.reply(commandId), peer };
    },
  };
  return double;
}

export function openedResult(reply: CommandReply): SessionOpened {
  if (!reply.ok) throw new Error(`the session did not open: ${JSON.stringify(reply.error)}`);
  return reply.result as SessionOpened;
}

export interface AgentOptions {
  deviceId?: string;
  hubUrl: string;
  runtime: ContainerRuntime;
  logs: LogCapture;
  config?: Record<string, unknown>;
}

/** A real agent on the hub double, closed by `cleanup`. */
export async function launchAgent(cleanup: Cleanup, options: AgentOptions): Promise<Agent> {
  const agent = await startAgent(
    {
      deviceId: options.deviceId ?? 'dev-remote',
      hubUrl: options.hubUrl,
      dataDir: scratchDir('flotilla-it-remote-'),
      outboxPath: 'memory',
      logLevel: 'silent',
      ...options.config,
    },
    { runtime: options.runtime, logger: options.logs.logger },
  );
  let closing: Promise<void> | undefined;
  cleanup.add('agent', () => {
    closing ??= agent.close();
    return closing;
  });
  return agent;
}
