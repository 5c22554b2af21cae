/**
 * The guard's line protocol between a service and its watchdog (docs/guard.md, "Line
 * protocol"): ASCII lines ending in "\n", fields separated by one space, at most
 * MAX_LINE_BYTES each, so a service in any language can speak it with a socket and printf.
 *
 *   service → watchdog
 *     HELLO 1 <pid> [name]            first line: protocol version, the process to kill if it wedges
 *     SESSION <id> <password>         the ZooKeeper session to end (16 hex digits, hex bytes); answered OK SESSION
 *     SESSION none                    no session any more (resigned, closed); answered OK SESSION
 *     ZNODE <path>                    the session's election znode (status only)
 *     STATE leader <epoch> | candidate | waiting
 *     HEARTBEAT <seq> ok | HEARTBEAT <seq> ill <reason...>
 *     BYE                             a clean stop: forget the session, expect no more beats
 *     STATUS                          answered with one JSON line (also how `zkwarden guard status` asks)
 *   watchdog → service
 *     OK <command> | ERR <line> <field>: <message>
 *
 * Pure: no sockets. Both ends use it; the watchdog never logs a SESSION line's fields.
 */
import { ProtocolError } from './errors.ts';

export const PROTOCOL_VERSION = 1;
export const MAX_LINE_BYTES = 1024;

export type ServiceState = { kind: 'leader'; epoch: bigint } | { kind: 'candidate' } | { kind: 'waiting' };

export type Message =
  | { type: 'hello'; version: number; pid: number; name: string | null }
  | { type: 'session'; session: { id: bigint; password: Buffer } | null }
  | { type: 'znode'; path: string }
  | { type: 'state'; state: ServiceState }
  | { type: 'heartbeat'; seq: number; healthy: boolean; reason: string | null }
  | { type: 'bye' }
  | { type: 'status' };

const HEX = /^[0-9a-fA-F]+$/;

function hexBigint(s: string | undefined, line: number, field: string, maxDigits: number): bigint {
  if (s === undefined || s.length === 0 || s.length > maxDigits || !HEX.test(s)) {
    throw new ProtocolError(line, field, `expected 1 to ${maxDigits} hex digits`);
  }
  return BigInt(`0x${s}`);
}

function int(s: string | undefined, line: number, field: string): number {
  if (s === undefined || !/^\d{1,15}$/.test(s)) throw new ProtocolError(line, field, 'expected a non-negative decimal integer');
  return Number(s);
}

/**
 * Parses one line (without its "\n"; a trailing "\r" is tolerated). `line` is its 1-based
 * number on the connection, for the error. Errors never quote a SESSION line's fields.
 */
export function parseLine(text: string, line: number): Message {
  if (Buffer.byteLength(text) > MAX_LINE_BYTES) throw new ProtocolError(line, 'line', `longer than ${MAX_LINE_BYTES} bytes`);
  const parts = text.replace(/\r$/, '').split(' ');
  const command = parts[0] ?? '';
  const arity = (min: number, max: number): void => {
    const n = parts.length - 1;
    if (n < min || n > max) throw new ProtocolError(line, command, `expected ${min === max ? min : `${min} to ${max}`} fields, got ${n}`);
  };
  switch (command) {
    case 'HELLO': {
      arity(2, 3);
      const version = int(parts[1], line, 'version');
      if (version !== PROTOCOL_VERSION) throw new ProtocolError(line, 'version', `this watchdog speaks version ${PROTOCOL_VERSION}, got ${version}`);
      const pid = int(parts[2], line, 'pid');
      if (pid < 1) throw new ProtocolError(line, 'pid', 'expected a process id above 0');
      return { type: 'hello', version, pid, name: parts[3] ?? null };
    }
    case 'SESSION': {
      if (parts.length === 2 && parts[1] === 'none') return { type: 'session', session: null };
      arity(2, 2);
      const id = hexBigint(parts[1], line, 'sessionId', 16);
      if (id === 0n) throw new ProtocolError(line, 'sessionId', 'expected a non-zero session id');
      const pw = parts[2] ?? '';
      if (pw.length === 0 || pw.length % 2 !== 0 || pw.length > 128 || !HEX.test(pw)) {
        throw new ProtocolError(line, 'password', 'expected an even number (2 to 128) of hex digits');
      }
      return { type: 'session', session: { id: BigInt.asIntN(64, id), password: Buffer.from(pw, 'hex') } };
    }
    case 'ZNODE':
      arity(1, 1);
      if (!parts[1]!.startsWith('/')) throw new ProtocolError(line, 'path', 'expected an absolute znode path');
      return { type: 'znode', path: parts[1]! };
    case 'STATE': {
      const kind = parts[1];
      if (kind === 'leader') {
        arity(2, 2);
        return { type: 'state', state: { kind, epoch: hexBigint(parts[2], line, 'epoch', 16) } };
      }
      arity(1, 1);
      if (kind === 'candidate' || kind === 'waiting') return { type: 'state', state: { kind } };
      throw new ProtocolError(line, 'state', 'expected leader <epoch>, candidate or waiting');
    }
    case 'HEARTBEAT': {
      if (parts.length < 3) throw new ProtocolError(line, 'HEARTBEAT', 'expected <seq> ok or <seq> ill <reason>');
      const seq = int(parts[1], line, 'seq');
      if (parts[2] === 'ok') {
        arity(2, 2);
        return { type: 'heartbeat', seq, healthy: true, reason: null };
      }
      if (parts[2] === 'ill') return { type: 'heartbeat', seq, healthy: false, reason: parts.slice(3).join(' ') || 'unspecified' };
      throw new ProtocolError(line, 'health', 'expected ok or ill');
    }
    case 'BYE':
      arity(0, 0);
      return { type: 'bye' };
    case 'STATUS':
      arity(0, 0);
      return { type: 'status' };
    default:
      throw new ProtocolError(line, 'command', `expected HELLO, SESSION, ZNODE, STATE, HEARTBEAT, BYE or STATUS, got '${command.slice(0, 20)}'`);
  }
}

/** One line, "\n" included. */
export function formatMessage(m: Message): string {
  switch (m.type) {
    case 'hello':
      return `HELLO ${m.version} ${m.pid}${m.name ? ` ${m.name.replace(/\s+/g, '_')}` : ''}\n`;
    case 'session':
      return m.session
        ? `SESSION ${BigInt.asUintN(64, m.session.id).toString(16).padStart(16, '0')} ${m.session.password.toString('hex')}\n`
        : 'SESSION none\n';
    case 'znode':
      return `ZNODE ${m.path}\n`;
    case 'state':
      return m.state.kind === 'leader' ? `STATE leader ${m.state.epoch.toString(16)}\n` : `STATE ${m.state.kind}\n`;
    case 'heartbeat':
      return m.healthy ? `HEARTBEAT ${m.seq} ok\n` : `HEARTBEAT ${m.seq} ill ${(m.reason ?? 'unspecified').replace(/[\r\n]+/g, ' ')}\n`;
    case 'bye':
      return 'BYE\n';
    case 'status':
      return 'STATUS\n';
  }
}

/**
 * Splits a byte stream into lines. A line longer than MAX_LINE_BYTES is reported once (as a
 * ProtocolError through `onLine`'s error argument) and skipped up to its end, so a misbehaving
 * peer cannot make the reader buffer without bound.
 */
export class LineSplitter {
  private pending = '';
  private skipping = false;
  private count = 0;
  constructor(
    private readonly onLine: (text: string, line: number) => void,
    private readonly onOverlong: (line: number) => void,
  ) {}

  push(chunk: Buffer | string): void {
    let s = this.pending + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    this.pending = '';
    for (;;) {
      const nl = s.indexOf('\n');
      if (nl < 0) break;
      const text = s.slice(0, nl);
      s = s.slice(nl + 1);
      this.count++;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      this.onLine(text, this.count);
    }
    if (s.length > MAX_LINE_BYTES) {
      if (!this.skipping) this.onOverlong(this.count + 1);
      this.skipping = true;
      s = '';
    }
    this.pending = s;
  }
}
