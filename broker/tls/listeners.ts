/**
 * The hub's TLS listeners, beside the plaintext ones (which stay as configured):
 *
 *   mqtts  MQTT over TLS          (node:tls server → the broker's handle)
 *   wss    MQTT over WebSocket    (https server + ws → the broker's handle)
 *   https  the HTTP API           (the same request listener as the HTTP server)
 *
 * They start only when the hub has a certificate and key. With a client CA
 * (`tlsClientCaFile`) every one of them asks for a client certificate and
 * verifies it against that CA, but does not insist (`rejectUnauthorized:
 * false`): a device without a certificate still logs in with its id and
 * secret, and only a certificate the TLS layer verified (`socket.authorized`)
 * names a device (broker/mqtt/tls-identity.ts).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { HubConfig } from '../config.js';
import { closeServer, listen, webSocketMaxPayload } from '../mqtt/broker.js';

export interface TlsListenerDeps {
  /** Serves MQTT on an accepted connection (EmbeddedBroker.handle). */
  handleMqtt(conn: Duplex, req?: IncomingMessage): void;
  /** The HTTP API's request listener (createHttpHandler), so https answers exactly as http does. */
  httpHandler: RequestListener;
  /** WebSocket upgrades of the HTTP API (remote-access sessions, broker/remote/), as on the HTTP port. */
  httpUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  logger: Logger;
}

export interface TlsListeners {
  ports: { mqtts: number; wss: number; https: number };
  close(): Promise<void>;
}

/** Ample for a device on a slow cellular link; a TLS 1.3 handshake is a round trip or two. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

type TlsConfig = Pick<HubConfig, 'host' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsClientCaFile' | 'mqttsPort' | 'wssPort' | 'httpsPort'> &
  Partial<Pick<HubConfig, 'maxPacketBytes'>>;

/** Starts the three TLS listeners if the configuration has a certificate and key; undefined otherwise. */
export async function startTlsListeners(config: TlsConfig, deps: TlsListenerDeps): Promise<TlsListeners | undefined> {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  const log = deps.logger.child({ component: 'tls' });
  const options = serverTlsOptions(config.tlsCertFile, config.tlsKeyFile, config.tlsClientCaFile);

  // Raw sockets, including those still in the handshake, so close() can end them all.
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  // A plaintext client, or one that does not trust the hub's certificate, ends here.
  const onTlsClientError = (listener: string) => (err: Error, socket: TLSSocket) =>
    log.debug({ listener, remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed');

  // No Nagle, as on the plaintext listener (broker/mqtt/broker.ts): remote-access frames are small and waited for.
  const mqtts = createTlsServer({ ...options, noDelay: true }, (socket) => deps.handleMqtt(socket));
  mqtts.on('tlsClientError', onTlsClientError('mqtts'));

  const httpsForWs = createHttpsServer(options, (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect with a WebSocket client\n');
  });
  httpsForWs.on('tlsClientError', onTlsClientError('wss'));
  const wss = new WebSocketServer({ server: httpsForWs, maxPayload: webSocketMaxPayload(config.maxPacketBytes) });
  wss.on('error', (err) => log.debug({ err: err.message }, 'secure websocket server error'));
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket);
    stream.on('error', (err) => log.debug({ err: err.message }, 'secure websocket stream error'));
    // The request carries the TLSSocket, where tls-identity.ts finds the client certificate.
    deps.handleMqtt(stream, req);
  });

  const https = createHttpsServer(options, deps.httpHandler);
  https.on('tlsClientError', onTlsClientError('https'));
  if (deps.httpUpgrade) https.on('upgrade', deps.httpUpgrade);
  // The HTTP servers track connections only once the handshake is done; one stuck before it would hold close() up.
  for (const server of [mqtts, httpsForWs, https]) server.on('connection', track);

  const close = async () => {
    for (const client of wss.clients) client.terminate();
    const closed = Promise.all([closeServer(mqtts), closeServer(httpsForWs), closeServer(https)]);
    // A tls.Server has no closeAllConnections(), and handshakes in progress belong to no HTTP server yet: ended here.
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  try {
    const ports = {
      mqtts: await listen(mqtts, config.mqttsPort, config.host, 'MQTT over TLS (--mqtts-port)'),
      wss: await listen(httpsForWs, config.wssPort, config.host, 'MQTT over secure WebSocket (--wss-port)'),
      https: await listen(https, config.httpsPort, config.host, 'the HTTPS API (--https-port)'),
    };
    log.info({ host: config.host, ...ports, clientCertificates: config.tlsClientCaFile !== undefined }, 'TLS listeners ready');
    return { ports, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Reads the PEM files once, at start, and checks that they make a usable
 * context, so a wrong file fails the start with the config key that named it
 * rather than every handshake later.
 */
export function serverTlsOptions(certFile: string, keyFile: string, clientCaFile?: string): TlsOptions {
  const cert = readPem(certFile, 'tlsCertFile');
  const key = readPem(keyFile, 'tlsKeyFile');
  const ca = clientCaFile === undefined ? undefined : readPem(clientCaFile, 'tlsClientCaFile');
  const options: TlsOptions = {
    cert,
    key,
    minVersion: 'TLSv1.2',
    // Node waits 120 s by default for a handshake: a connection that never sends one is let go sooner.
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    // Verified, not required: an unverified or absent certificate leaves the login to username and password.
    ...(ca !== undefined ? { ca, requestCert: true, rejectUnauthorized: false } : {}),
  };
  try {
    createSecureContext(options);
  } catch (err) {
    throw new Error(`invalid TLS files (tlsCertFile ${certFile}, tlsKeyFile ${keyFile}): ${(err as Error).message}`);
  }
  return options;
}

function readPem(file: string, key: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
