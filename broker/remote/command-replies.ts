/**
 * Devices' replies to the commands the hub sends them (`…/devices/+/replies`),
 * handed to whoever waits for that command id. The hub subscribes once, in
 * process; nothing else in the hub reads replies. A reply is taken only from
 * the device the command went to (the ACL keeps a device to its own replies
 * topic, so the topic names the sender).
 */
import type { Logger } from 'pino';
import { CommandReply, decode, formatIssues, type Topics } from '../../shared/index.js';
import type { HubBus } from '../mqtt/hub-bus.js';

interface Waiter {
  deviceId: string;
  resolve(reply: CommandReply | undefined): void;
  timer: NodeJS.Timeout;
}

export class CommandReplies {
  private readonly waiting = new Map<string, Waiter>();
  private readonly log: Logger;

  constructor(
    private readonly topics: Topics,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'command-replies' });
  }

  async attach(bus: HubBus): Promise<void> {
    await bus.subscribe([this.topics.allDevices('replies')], (topic, payload) => this.onReply(topic, payload));
  }

  /** The device's reply to `commandId`; undefined if none came within `timeoutMs` or the wait was cancelled. */
  wait(deviceId: string, commandId: string, timeoutMs: number): Promise<CommandReply | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(commandId, undefined), timeoutMs);
      timer.unref();
      this.waiting.set(commandId, { deviceId, resolve, timer });
    });
  }

  cancel(commandId: string): void {
    this.settle(commandId, undefined);
  }

  close(): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, undefined);
  }

  private onReply(topic: string, payload: Buffer): void {
    const parsed = this.topics.parse(topic);
    if (parsed?.kind !== 'device') return;
    const decoded = decode(CommandReply, payload);
    if (!decoded.ok) {
      this.log.warn({ deviceId: parsed.deviceId, reason: formatIssues(decoded.issues) }, 'invalid command reply dropped');
      return;
    }
    const waiter = this.waiting.get(decoded.value.commandId);
    // A late reply (after the timeout) or another device's id: nobody waits for it here.
    if (!waiter || waiter.deviceId !== parsed.deviceId) {
      this.log.debug({ deviceId: parsed.deviceId, commandId: decoded.value.commandId }, 'command reply nobody waits for');
      return;
    }
    this.settle(decoded.value.commandId, decoded.value);
  }

  private settle(commandId: string, reply: CommandReply | undefined): void {
    const waiter = this.waiting.get(commandId);
    if (!waiter) return;
    this.waiting.delete(commandId);
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
  }
}
