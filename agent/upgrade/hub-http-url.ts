/**
 * The hub's HTTP API, where a bundle URL given as a path is fetched from: the
 * configured `hubHttpUrl` (`flotilla agent register` writes the `--hub` it
 * used), else the MQTT URL's host on the hub's default HTTP port, 7070. An
 * https hub is reached with the agent's pinned CA.
 */
export const DEFAULT_HUB_HTTP_PORT = 7070;

export function hubHttpUrl(config: { hubHttpUrl?: string | undefined; hubUrl: string }): string {
  if (config.hubHttpUrl !== undefined) return config.hubHttpUrl.replace(/\/+$/, '');
  const host = new URL(config.hubUrl).hostname;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${DEFAULT_HUB_HTTP_PORT}`;
}
