/**
 * Whether an image reference is one the Docker Engine accepts, so a spec that names one it would
 * refuse ("invalid reference format") is refused at apply time, naming what is wrong, instead of
 * failing later on every device it reaches.
 *
 * The grammar is the engine's own (github.com/distribution/reference, reference.go):
 *
 *     reference := name [":" tag] ["@" digest]
 *     name      := [domain "/"] path-component ["/" path-component]*     (at most 255 characters)
 *     domain    := host [":" port], host a DNS name (any case) or [IPv6]
 *     path-component := [a-z0-9]+ ([._] | "__" | "-"+) [a-z0-9]+ …
 *     tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *     digest    := algorithm ":" hex (at least 32 hex digits)
 *
 * An image id (`sha256:` and 64 hex digits) is accepted as well: the engine runs a loaded image by it.
 * Where engine releases disagree, it accepts: a registry host in upper case without a dot
 * (`MyRegistry/web`) or in brackets (`[::1]:5000/web`) is refused by Debian 12's engine (20.10)
 * and read as a host by newer ones, so the device's own engine decides.
 */

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;
/** The engine's NameTotalLengthMax. */
const MAX_NAME_LENGTH = 255;

/** Why the engine would refuse `image` as a reference, or undefined when it would accept it. */
export function imageReferenceProblem(image: string): string | undefined {
  if (IMAGE_ID.test(image)) return undefined;
  const at = image.indexOf('@');
  const beforeDigest = at >= 0 ? image.slice(0, at) : image;
  const digest = at >= 0 ? image.slice(at + 1) : undefined;
  if (digest !== undefined && !DIGEST.test(digest)) {
    return `the digest "${digest}" is not ALGORITHM:HEX (e.g. sha256: and 64 hex digits)`;
  }
  const slash = beforeDigest.lastIndexOf('/');
  const colon = beforeDigest.lastIndexOf(':');
  // A colon before the last "/" is a registry's port, not a tag.
  const tag = colon > slash ? beforeDigest.slice(colon + 1) : undefined;
  const name = tag !== undefined ? beforeDigest.slice(0, colon) : beforeDigest;
  if (tag !== undefined && !TAG.test(tag)) {
    return tag === ''
      ? 'the tag after ":" is empty'
      : `the tag "${tag}" may hold only letters, digits, "_", "." and "-", at most 128, and not start with "." or "-"`;
  }
  if (name === '') return 'the repository name is empty';
  if (name.length > MAX_NAME_LENGTH) return `the repository name is ${name.length} characters; at most ${MAX_NAME_LENGTH}`;
  const parts = name.split('/');
  const first = parts[0] ?? '';
  // As the engine reads it: the first part is a registry when it looks like a host, or is not lowercase.
  const hasDomain = parts.length > 1 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  if (hasDomain && !DOMAIN.test(first)) return `"${first}" is not a registry host (HOST or HOST:PORT)`;
  const path = hasDomain ? parts.slice(1) : parts;
  const bad = path.find((part) => !PATH_COMPONENT.test(part));
  if (bad === undefined) return undefined;
  if (bad !== bad.toLowerCase()) return `the repository name must be lowercase ("${bad}")`;
  if (bad === '') return 'the repository name has an empty part (a "/" at its start or end, or "//")';
  return `"${bad}" is not a repository name part: lowercase letters and digits, joined by ".", "_", "__" or "-"`;
}
