/** MQTT 3.1.1 packets by hand, for clients that misbehave below what mqtt.js allows. */

/** A fixed header (first byte, remaining length as a variable byte integer) and the body. */
export function frame(firstByte: number, body: Buffer): Buffer {
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([firstByte, ...length]), body]);
}

/** A UTF-8 string as MQTT encodes it: a two-byte big-endian length, then the bytes [MQTT-1.5.3]. */
export function str(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}
