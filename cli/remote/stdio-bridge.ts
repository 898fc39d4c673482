/**
 * exec and shell: the session's channels bridged to this process's stdio
 * (docs/remote-protocol.md §2). Channel 1 carries stdin down and stdout (or the TTY)
 * up, channel 2 stderr up.
 *
 * Flow control both ways: output is granted back to the device only once
 * stdout (or stderr) has written it (the write callback), so a slow reader
 * of `flotilla exec … | slow` slows the command rather than filling memory;
 * stdin is paused when the device's credit runs out and resumed on its WINDOW.
 */
import type { Readable, Writable } from 'node:stream';
import { ReceiveWindow, SendCredit } from '../../shared/remote/flow.js';
import { CHANNEL, FRAME, type Frame } from '../../shared/remote/frames.js';
import { OutboundChannel } from '../../shared/remote/outbound-channel.js';
import type { CliError } from '../errors.js';
import type { RemoteSession } from './session-client.js';
import { SessionError } from './session-errors.js';

export interface StdioStreams {
  stdout: Writable;
  stderr: Writable;
  /** Passed to the command when set (`-i`); its end is sent as EOF. */
  stdin?: Readable;
}

/** What ended the bridge: the command's exit code, or the error to report. */
export type StdioResult = { code: number } | { error: CliError } | { closed: true };

/**
 * Runs the bridge until the session ends; resolves once everything that
 * arrived was written out.
 */
export async function bridgeStdio(session: RemoteSession, streams: StdioStreams): Promise<StdioResult> {
  const window = session.window;
  const inbound = new ReceiveWindow((channel, bytes) => session.send({ type: FRAME.window, channel, bytes }), window);
  inbound.open(CHANNEL.stdio);
  inbound.open(CHANNEL.stderr);
  const credit = new SendCredit(window);

  const outputFor = (channel: number): Writable | undefined =>
    channel === CHANNEL.stdio ? streams.stdout : channel === CHANNEL.stderr ? streams.stderr : undefined;

  session.start((frame: Frame) => {
    switch (frame.type) {
      case FRAME.data: {
        const out = outputFor(frame.channel);
        if (!out) return;
        if (!inbound.received(frame.channel, frame.data.length)) {
          session.fail(new SessionError(undefined, `the device sent past its flow-control window on channel ${frame.channel}`));
          return;
        }
        const bytes = frame.data.length;
        out.write(frame.data, () => inbound.consumed(frame.channel, bytes));
        return;
      }
      case FRAME.window:
        credit.grant(frame.channel, frame.bytes);
        return;
      default:
        return;
    }
  });

  const stdin = streams.stdin;
  const detachStdin = stdin ? pumpStdin(session, stdin, credit) : () => undefined;
  const end = await session.ended;
  detachStdin();
  // Everything written before the end is ordered before these empty writes.
  await Promise.all([flushed(streams.stdout), flushed(streams.stderr)]);
  if (end.kind === 'exit') return { code: end.code };
  if (end.kind === 'failed') return { error: end.error };
  return { closed: true };
}

/** Sends stdin as DATA 1 within the device's credit, and EOF 1 at its end (or failure: a closed terminal); returns how to stop. */
function pumpStdin(session: RemoteSession, stdin: Readable, credit: SendCredit): () => void {
  credit.open(CHANNEL.stdio);
  const output = new OutboundChannel({
    source: stdin,
    channel: CHANNEL.stdio,
    credit,
    sendData: (channel, data) => session.send({ type: FRAME.data, channel, data }),
    onEnd: () => session.send({ type: FRAME.eof, channel: CHANNEL.stdio }),
  });
  return () => {
    output.stop();
    credit.close(CHANNEL.stdio);
  };
}

function flushed(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}
