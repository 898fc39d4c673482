/**
 * The hub wraps every MQTT connection's read (the packet-size cap, the link
 * byte count) and write (the count) with functions shared by all
 * connections, their state kept on the connection: a closure made per
 * connection would cost heap for every idle device. Each still works on its
 * own connection.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LinkBytes } from '../../broker/mqtt/link-bytes.js';
import { limitPacketSize, type PacketLimit } from '../../broker/mqtt/packet-limit.js';
import { Topics } from '../../shared/index.js';
import { frame } from '../support/mqtt-frame.js';

function stream(): Duplex {
  return new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
}

describe("the hub's connection wrappers", () => {
  it('are the same functions on every connection, and each cap still refuses on its own connection', () => {
    const refused: Duplex[] = [];
    const limit: PacketLimit = { maxBytes: 100, maxConnectBytes: 100, onRefused: (conn) => refused.push(conn) };
    const linkBytes = new LinkBytes(new Topics('flotilla/v1'));
    const [a, b] = [stream(), stream()];
    for (const conn of [a, b]) {
      linkBytes.watch(conn);
      limitPacketSize(conn, limit);
    }
    expect(a.read).toBe(b.read);
    expect(a.write).toBe(b.write);
    expect(a.read).not.toBe(stream().read);

    const small = frame(0x30, Buffer.from([0, 1, 0x74, 1, 2, 3]));
    a.push(small);
    expect(a.read()).toEqual(small);
    b.push(frame(0x30, Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.alloc(200)])));
    expect(b.read()).toBeNull();
    expect(refused).toEqual([b]);
    expect(a.destroyed).toBe(false);
    expect(b.destroyed).toBe(true);
  });
});
