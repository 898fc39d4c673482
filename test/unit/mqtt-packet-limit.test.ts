/** The packet-size scanner in front of Aedes' parser: packet boundaries across any chunking, the CONNECT cap, malformed lengths. */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { limitPacketSize, PacketScanner } from '../../broker/mqtt/packet-limit.js';
import { frame } from '../support/mqtt-frame.js';

// MQTT 3.1.1 CONNECT, clean session, keepalive 60, client id "dev-1".
const connect = frame(0x10, Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 5, ...Buffer.from('dev-1')]));
/** A QoS 0 PUBLISH on topic "t" with `bytes` of payload. */
const publish = (bytes: number) => frame(0x30, Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.alloc(bytes)]));

/** Feeds `data` to a scanner in chunks of `size`; the first over-cap finding, if any. */
function scanInChunks(scanner: PacketScanner, data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) {
    const over = scanner.scan(data.subarray(i, i + size));
    if (over) return over;
  }
  return undefined;
}

describe('PacketScanner', () => {
  it('follows packets of every length-field size across any chunking, and finds the first one over the cap', () => {
    // Remaining lengths needing 1, 2 and 3 length bytes, then one just over a 200,000-byte cap.
    const fine = Buffer.concat([connect, publish(10), publish(300), publish(20_000), publish(199_990)]);
    const over = publish(200_001);
    for (const size of [1, 2, 3, 7, 64, 1_000_000]) {
      expect(scanInChunks(new PacketScanner(200_000, 1_000), fine, size), `chunks of ${size}`).toBeUndefined();
      const found = scanInChunks(new PacketScanner(200_000, 1_000), Buffer.concat([fine, over.subarray(0, 10)]), size);
      expect(found, `chunks of ${size}`).toEqual({ bytes: over.length, first: false });
    }
  });

  it('caps the first packet (the CONNECT) lower, from its header alone', () => {
    const scanner = new PacketScanner(1_000_000, 64 * 1024);
    expect(scanner.scan(Buffer.from([0x10, 0x80, 0x80, 0x04]))).toEqual({ bytes: 4 + 65_536, first: true });
    expect(new PacketScanner(1_000_000, 64 * 1024).scan(connect)).toBeUndefined();
  });

  it('stops following a length of more than four bytes (the parser closes that connection)', () => {
    const scanner = new PacketScanner(10, 10);
    expect(scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBeUndefined();
    expect(scanner.stopped).toBe(true);
  });
});

describe('limitPacketSize', () => {
  function stream() {
    const conn = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    return conn;
  }

  it('hands the parser nothing of a chunk holding an oversized packet, and destroys the connection', () => {
    const conn = stream();
    const refused: unknown[] = [];
    limitPacketSize(conn, {
      maxBytes: 1_000,
      maxConnectBytes: 500,
      onRefused: (refusedConn, info) => refused.push({ ...info, sameConnection: refusedConn === conn }),
    });
    conn.push(Buffer.concat([connect, publish(100)]));
    expect((conn.read() as Buffer).length).toBe(connect.length + publish(100).length);
    conn.push(Buffer.concat([publish(10), publish(2_000)]));
    expect(conn.read()).toBeNull();
    expect(conn.destroyed).toBe(true);
    expect(refused).toEqual([{ bytes: publish(2_000).length, maxBytes: 1_000, first: false, sameConnection: true }]);
  });
});
