/**
 * The service's end of the line to its watchdog: heartbeats with the gate's verdict, the
 * ZooKeeper session to end if the service wedges, and its state, over a channel that is not a
 * file (an inherited socket, an abstract Unix socket, or loopback TCP). Heartbeats come from the
 * service's event loop on purpose: when that loop cannot run, the beats stop, and that silence is
 * what the watchdog acts on.
 *
 * Writes never block: a socket buffers in memory, and a heartbeat is skipped when the watchdog
 * has not read the previous ones (it is then late itself, and a beat more would not help).
 */
import { EventEmitter } from 'node:events';
import { Socket, connect, isIP } from 'node:net';
import { GuardConfigError } from './errors.ts';
import { LineSplitter, PROTOCOL_VERSION, formatMessage, type Message, type ServiceState } from './protocol.ts';
import type { Probe } from './probes.ts';

/** Set by `zkwarden guard run` in its child's environment: the inherited socket's fd. */
export const ENV_FD = 'ZKWARDEN_GUARD_FD';
/** Set by `zkwarden guard run`: its deadline and the heartbeat interval it expects; a Guard adopts them. */
export const ENV_DEADLINE = 'ZKWARDEN_GUARD_DEADLINE_MS';
export const ENV_HEARTBEAT = 'ZKWARDEN_GUARD_HEARTBEAT_MS';
/** Or: the watchdog's address (`@abstract-name`, `127.0.0.1:PORT`, `[::1]:PORT`). */
export const ENV_ADDRESS = 'ZKWARDEN_GUARD_ADDRESS';

export type LinkTarget = { fd: number } | { address: string };

export interface WatchdogLinkOptions {
  target: LinkTarget;
  heartbeatIntervalMs: number;
  /** The verdict each heartbeat carries. */
  health: () => { healthy: boolean; reason: string | null };
  /** The name the watchdog logs; default the process title. */
  name?: string;
  /** How long to wait for the watchdog's OK to a SESSION line; default 2000 ms. */
  ackTimeoutMs?: number;
}

export interface LinkEvents {
  /** The channel closed or failed: the service has no backstop any more. */
  lost: [err: Error];
  /** The watchdog refused a line (a bug on one side). */
  refused: [message: string];
}

/** Buffered bytes beyond which a heartbeat is skipped rather than queued. */
const MAX_BUFFERED = 64 * 1024;

/** Where `zkwarden guard run` (or the caller's environment) says the watchdog is; null if nowhere. */
export function linkTargetFromEnv(env: NodeJS.ProcessEnv = process.env): LinkTarget | null {
  const fd = env[ENV_FD];
  if (fd !== undefined && fd !== '') {
    if (!/^\d+$/.test(fd) || Number(fd) < 3) throw new GuardConfigError(ENV_FD, `expected an inherited file descriptor number of 3 or more, got '${fd}'`);
    return { fd: Number(fd) };
  }
  const address = env[ENV_ADDRESS];
  if (address !== undefined && address !== '') {
    parseAddress(address, ENV_ADDRESS);
    return { address };
  }
  return null;
}

/** The timing the watchdog announced in the environment (fields it did not set are left out). */
export function timingFromEnv(env: NodeJS.ProcessEnv = process.env): { watchdogDeadlineMs?: number; heartbeatIntervalMs?: number } {
  const out: { watchdogDeadlineMs?: number; heartbeatIntervalMs?: number } = {};
  for (const [name, field] of [
    [ENV_DEADLINE, 'watchdogDeadlineMs'],
    [ENV_HEARTBEAT, 'heartbeatIntervalMs'],
  ] as const) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (!/^\d+$/.test(v) || Number(v) <= 0) throw new GuardConfigError(name, `expected a positive integer of milliseconds, got '${v}'`);
    out[field] = Number(v);
  }
  return out;
}

/** `@name` (abstract Unix socket), `IP:PORT` or `[IPv6]:PORT` on loopback; anything else is refused. */
export function parseAddress(address: string, option: string): { path: string } | { host: string; port: number } {
  if (address.startsWith('@')) {
    if (address.length < 2 || address.length > 107) throw new GuardConfigError(option, `an abstract socket name of 1 to 106 characters, got '${address}'`);
    return { path: `\0${address.slice(1)}` };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(address);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || isIP(host) === 0 || port < 1 || port > 65535) {
    throw new GuardConfigError(option, `expected @abstract-name, IPv4:PORT or [IPv6]:PORT (IP literals: no DNS), got '${address}'`);
  }
  if (!(host.startsWith('127.') || host === '::1')) throw new GuardConfigError(option, `the watchdog listens on loopback only, got ${host}`);
  return { host, port };
}

export class WatchdogLink extends EventEmitter<LinkEvents> {
  private readonly o: WatchdogLinkOptions;
  private sock: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private _connected = false;
  private _skipped = 0;
  private closing = false;
  private readonly acks: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];

  constructor(o: WatchdogLinkOptions) {
    super();
    this.o = o;
  }

  get connected(): boolean {
    return this._connected;
  }

  /** Heartbeats not sent because the watchdog had not read the ones before. */
  get skippedHeartbeats(): number {
    return this._skipped;
  }

  /** Connects, says HELLO, and starts the heartbeats. */
  async open(): Promise<void> {
    if (this.sock) return;
    const t = this.o.target;
    const sock =
      'fd' in t
        ? new Socket({ fd: t.fd, readable: true, writable: true })
        : await new Promise<Socket>((resolve, reject) => {
            const a = parseAddress(t.address, 'watchdog.address');
            const s = 'path' in a ? connect(a.path) : connect({ host: a.host, port: a.port });
            s.once('connect', () => resolve(s));
            s.once('error', reject);
          });
    this.sock = sock;
    this._connected = true;
    const splitter = new LineSplitter(
      (text) => this.onReply(text),
      () => this.emit('refused', 'an overlong line from the watchdog'),
    );
    sock.on('data', (c: Buffer) => splitter.push(c));
    const lost = (err: Error): void => {
      if (!this._connected) return;
      this._connected = false;
      this.stopBeats();
      for (const a of this.acks.splice(0)) {
        clearTimeout(a.timer);
        a.reject(err);
      }
      if (!this.closing) this.emit('lost', err);
    };
    sock.on('error', (e) => lost(e));
    sock.on('close', () => lost(new Error('the watchdog closed the channel')));
    this.send({ type: 'hello', version: PROTOCOL_VERSION, pid: process.pid, name: this.o.name ?? process.title });
    this.beat();
    this.timer = setInterval(() => this.beat(), this.o.heartbeatIntervalMs);
  }

  /** Tells the watchdog which session to end if this process wedges (null: none now); resolves on its OK. */
  setSession(session: { id: bigint; password: Buffer } | null): Promise<void> {
    if (!this._connected) return Promise.reject(new Error('no channel to the watchdog'));
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = this.o.ackTimeoutMs ?? 2000;
      const timer = setTimeout(() => {
        const i = this.acks.findIndex((a) => a.timer === timer);
        if (i >= 0) this.acks.splice(i, 1);
        reject(new Error(`the watchdog did not acknowledge the session within ${timeoutMs} ms`));
      }, timeoutMs);
      this.acks.push({ resolve, reject, timer });
      this.send({ type: 'session', session });
    });
  }

  state(state: ServiceState): void {
    this.send({ type: 'state', state });
  }

  znode(path: string): void {
    this.send({ type: 'znode', path });
  }

  /** Says BYE (the watchdog forgets the session and stops expecting beats) and closes the channel. */
  close(): void {
    if (!this.sock) return;
    this.closing = true;
    this.stopBeats();
    if (this._connected) this.send({ type: 'bye' });
    this.sock.end();
    this.sock = null;
  }

  /** The link as a probe: failing while there is no watchdog to back this process up. */
  probe(): Probe {
    return { name: 'watchdog', check: async () => (this._connected ? { ok: true } : { ok: false, detail: 'no channel to the watchdog' }) };
  }

  private beat(): void {
    if (!this.sock || !this._connected) return;
    if (this.sock.writableLength > MAX_BUFFERED) {
      this._skipped++;
      return;
    }
    const h = this.o.health();
    this.send({ type: 'heartbeat', seq: ++this.seq, healthy: h.healthy, reason: h.reason });
  }

  private stopBeats(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private send(m: Message): void {
    if (this.sock && this._connected) this.sock.write(formatMessage(m));
  }

  private onReply(text: string): void {
    if (text.startsWith('OK SESSION')) {
      const a = this.acks.shift();
      if (a) {
        clearTimeout(a.timer);
        a.resolve();
      }
    } else if (text.startsWith('ERR')) {
      this.emit('refused', text);
      if (/SESSION|sessionId|password/.test(text)) {
        const a = this.acks.shift();
        if (a) {
          clearTimeout(a.timer);
          a.reject(new Error(`the watchdog refused the session: ${text}`));
        }
      }
    }
  }
}
