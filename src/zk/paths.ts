/**
 * Connect strings and znode paths: parsed and checked on the client, so a typo fails with a
 * message naming the argument instead of a BadArguments reply (or a request to the wrong node).
 */
import { InvalidArgumentError } from './errors.ts';

const SLASH = 0x2f;
const DOT = 0x2e;

export interface ServerAddress {
  host: string;
  port: number;
}

export interface ConnectString {
  servers: ServerAddress[];
  /** '' or a path like '/app' (no trailing slash). */
  chroot: string;
}

/** "h1:2181,h2,[::1]:2182/chroot" — the port defaults to 2181; the chroot applies to every server. */
export function parseConnectString(s: string): ConnectString {
  if (typeof s !== 'string' || s.trim() === '') throw new InvalidArgumentError('connectString', 'empty');
  const slash = s.indexOf('/');
  const hostPart = slash >= 0 ? s.slice(0, slash) : s;
  let chroot = slash >= 0 ? s.slice(slash) : '';
  if (chroot === '/') chroot = '';
  if (chroot !== '') validatePath(chroot, 'connectString chroot');
  const servers: ServerAddress[] = [];
  for (const raw of hostPart.split(',')) {
    if (raw.trim() === '') continue;
    const server = splitHostPort(raw);
    if (!server) throw new InvalidArgumentError('connectString', `bad server "${raw.trim()}" in "${s}" (expected host:port)`);
    servers.push(server);
  }
  if (servers.length === 0) throw new InvalidArgumentError('connectString', `no servers in "${s}"`);
  return { servers, chroot };
}

/**
 * One server's "host:port" by the connect string's rules (the one parser of host:port): the port
 * defaults to 2181, an IPv6 host is written in brackets ("[::1]:2182"), and otherwise the last
 * colon separates the port. Null when the host is empty or the port is not 1-65535.
 */
export function splitHostPort(address: string): ServerAddress | null {
  const item = address.trim();
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(item);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else {
    const colon = item.lastIndexOf(':');
    host = colon >= 0 ? item.slice(0, colon) : item;
    portText = colon >= 0 ? item.slice(colon + 1) : undefined;
  }
  const port = portText === undefined ? 2181 : Number(portText);
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

/**
 * The rules of PathUtils.validatePath: absolute, no empty, "." or ".." segments, no trailing
 * slash (except for a sequential create, where the server appends the counter), no control
 * or unassigned characters.
 */
export function validatePath(path: string, argument = 'path', sequential = false): void {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError(argument, 'empty path');
  if (path.charCodeAt(0) !== SLASH) throw new InvalidArgumentError(argument, `"${path}" does not start with /`);
  const n = path.length;
  if (n === 1) return;
  let end = n;
  if (path.charCodeAt(n - 1) === SLASH) {
    if (!sequential) throw new InvalidArgumentError(argument, `"${path}" ends with /`);
    end = n - 1;
  }
  // One pass, nothing allocated (every request checks its path): segments in order, the first
  // forbidden character after them.
  let forbidden = -1;
  let segment = 1;
  for (let i = 1; i <= end; i++) {
    const c = i < end ? path.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const len = i - segment;
      if (len === 0) throw new InvalidArgumentError(argument, `"${path}" has an empty segment`);
      if (len <= 2 && path.charCodeAt(segment) === DOT && (len === 1 || path.charCodeAt(segment + 1) === DOT)) {
        throw new InvalidArgumentError(argument, `"${path}" has a relative segment "${path.slice(segment, i)}"`);
      }
      segment = i + 1;
    } else if (forbidden < 0 && (c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0)) {
      forbidden = i;
    }
  }
  if (forbidden >= 0) throw new InvalidArgumentError(argument, `"${JSON.stringify(path)}" has a forbidden character at ${forbidden}`);
}

/** A caller's path on the server: the chroot put in front ("/" is the chroot itself). */
export function chrootPath(chroot: string, path: string): string {
  if (chroot === '') return path;
  return path === '/' ? chroot : chroot + path;
}

/** A server's path back as the caller's (chroot removed); a path outside the chroot is left as it is. */
export function stripChroot(chroot: string, serverPath: string): string {
  if (chroot === '') return serverPath;
  if (serverPath === chroot) return '/';
  if (serverPath.startsWith(chroot + '/')) return serverPath.slice(chroot.length);
  return serverPath;
}
