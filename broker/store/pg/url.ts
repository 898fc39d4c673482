/**
 * A `postgres://` URL, checked and described without its password: the description is what every
 * message and log line about the database shows, since the URL itself carries the password.
 */
import { DatabaseConfigError } from './errors.js';

/** What to do about a password that breaks its URL: these characters are the URL's own separators. */
export const PASSWORD_ENCODING_HINT = 'percent-encode @ / : # ? in a password: %40 %2F %3A %23 %3F';

export interface PostgresTarget {
  /** The URL as given, password included: for pg only, never for a message. */
  readonly url: string;
  /** Host and port, or the Unix socket: `127.0.0.1:5432`, `/var/run/postgresql/.s.PGSQL.5432`. */
  readonly where: string;
  readonly user: string;
  readonly database: string;
  /** `postgres://role@where/database`: the URL without its password. */
  readonly description: string;
}

/**
 * Checks the parts the hub relies on (scheme, host, database name) and describes the URL. Defaults
 * follow libpq's: port 5432, the database named like the role.
 */
export function parsePostgresUrl(url: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The URL could not be parsed, so nothing in it can be shown safely: it may hold a password, and
    // a raw `/ # ?` in one ends the URL's authority early, which is the usual cause.
    throw new DatabaseConfigError(
      'bad_url',
      `the database URL is not a URL; expected postgres://role:password@host:5432/database (${PASSWORD_ENCODING_HINT})`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DatabaseConfigError('bad_url', `the database URL must start with postgres:// (got ${parsed.protocol}//)`);
  }
  const socketDir = parsed.searchParams.get('host');
  const host = socketDir ?? decodeURIComponent(parsed.hostname);
  if (host === '') {
    throw new DatabaseConfigError('bad_url', 'the database URL names no host; expected postgres://role:password@host:5432/database');
  }
  const port = parsed.port === '' ? 5432 : Number(parsed.port);
  const user = decodeURIComponent(parsed.username);
  if (user === '')
    throw new DatabaseConfigError('bad_url', 'the database URL names no role; expected postgres://role:password@host:5432/database');
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || user;
  // An IPv6 hostname keeps its brackets in URL.hostname, so `host:port` stays readable.
  const where = host.startsWith('/') ? `${host.replace(/\/$/, '')}/.s.PGSQL.${port}` : `${host}:${port}`;
  return { url, where, user, database, description: `postgres://${user}@${where}/${database}` };
}
