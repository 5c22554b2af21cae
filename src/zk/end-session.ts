/**
 * Ending a session from outside the process that holds it: what a watchdog does to a leader
 * that is wedged but still heartbeating (the seed incident).
 *
 * "Attach with the id and password, then close" is not enough on its own. ZooKeeper 3.8 (read
 * in ZooKeeperServer.processConnectRequest and FinalRequestProcessor):
 * - attaching to a server closes that server's existing connection for the session
 *   (CLIENT_RECONNECT), even when the session turns out to be gone;
 * - a closeSession makes every server close its connection for the session, except the server
 *   that received the closeSession, which closes only the requesting connection.
 * So a holder whose client is still alive and whose connection the attach kicked reconnects in
 * milliseconds; if it lands on the closer's server it either kicks the closer before the close
 * is sent (the session lives on), or holds a connection that survives the close (its pings are
 * answered and its reads served on a closed session; seen in a test of 20 churning candidates).
 *
 * endSession therefore (1) holds each attach a moment before closing: a drop in that moment means
 * the holder is reconnecting to that server, so the close goes through another one, which makes
 * the holder's server close the holder's connection itself; (2) decides by observation, not by
 * the close's reply: it attaches to every server until each answers "expired", closing again
 * wherever the session is still alive. An "expired" attach also closes the connection that
 * server has on record for the session, so a holder that raced in is told its session expired.
 * What no outside party can reach is a connection the server lost track of (a closing connection
 * removes the session's entry whoever holds it): that holder is told at its next write, when the
 * leader answers SessionExpired (zkwarden's client then moves to `expired`).
 */
import { Connection, buildFrame } from './connection.ts';
import { AuthFailedError, ConnectionLossError, ErrorCode, InvalidArgumentError, OperationTimeoutError, SessionClosedRequireSaslAuthError } from './errors.ts';
import { PreparedTls, type TlsOptions } from './transport.ts';
import { digestMd5Factory, type DigestMd5Credentials, type SaslMechanism } from './sasl.ts';
import { OpCode } from './protocol.ts';
import { parseConnectString } from './paths.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EndSessionOptions {
  /** The whole call, every attach and close included. Default 15 000 ms. */
  timeoutMs?: number;
  /** One server's TCP connect and session handshake. Default 3 000 ms. */
  connectTimeoutMs?: number;
  /** TLS to the servers' secureClientPort, as for the client. */
  tls?: TlsOptions;
  /** SASL credential: an ensemble that enforces SASL refuses the closeSession of an unauthenticated connection. */
  sasl?: DigestMd5Credentials;
}

interface Security {
  tls?: PreparedTls;
  sasl?: () => SaslMechanism;
}

export interface EndSessionResult {
  /** 'closed': this call's closeSession ended it; 'alreadyEnded': no server had it alive. */
  outcome: 'closed' | 'alreadyEnded';
  /** Servers that answered "expired" for the session: none of them serves it any more. */
  confirmedBy: string[];
  /** Servers that could not be reached; a holder that can still reach one may keep a connection there. */
  unreachable: string[];
  /** Session handshakes made (each one replaces the holder's connection on that server). */
  attaches: number;
}

/** Session timeout asked for while attached; the session is being ended, so it only bounds our own hold. */
const ATTACH_SESSION_TIMEOUT_MS = 10_000;
const MAX_FRAME = 1 << 20;

/**
 * What one session handshake said. 'dropped': the server accepted TCP and closed before
 * answering; on the holder's own server that is the holder's reconnect replacing ours
 * (CLIENT_RECONNECT works both ways).
 */
type Attach = { kind: 'alive'; conn: Connection } | { kind: 'expired' } | { kind: 'dropped'; error: Error } | { kind: 'unreachable'; error: Error };

async function attach(host: string, port: number, sessionId: bigint, password: Buffer, connectTimeoutMs: number, security: Security): Promise<Attach> {
  let tcp = false;
  let opened: Awaited<ReturnType<typeof Connection.open>>;
  try {
    opened = await Connection.open({
      host,
      port,
      connectTimeoutMs,
      maxIncomingBytes: MAX_FRAME,
      onTcpConnected: () => {
        tcp = true;
      },
      request: { protocolVersion: 0, lastZxidSeen: 0n, timeOut: ATTACH_SESSION_TIMEOUT_MS, sessionId, passwd: password, readOnly: false },
      tls: security.tls,
      sasl: security.sasl,
    });
  } catch (e) {
    const error = e as Error;
    // A refused credential is refused by every server: nothing here can end the session.
    if (error instanceof AuthFailedError || error instanceof SessionClosedRequireSaslAuthError) throw error;
    return tcp && error instanceof ConnectionLossError ? { kind: 'dropped', error } : { kind: 'unreachable', error };
  }
  const { conn, response } = opened;
  // The server answers a gone session (or a wrong password) with timeOut 0 and then closes.
  if (response.timeOut <= 0) {
    conn.close(new ConnectionLossError(undefined, 'session expired'));
    return { kind: 'expired' };
  }
  return { kind: 'alive', conn };
}

/**
 * Holds the attached connection for SETTLE_MS before closing through it. A holder whose client
 * lives and was connected here reconnects within milliseconds and replaces us: we learn where it
 * is ('dropped') and close through another server instead, which makes this server close the
 * holder's connection itself. Closing at once would race that reconnect, and the loser can be
 * a connection that survives the close (ZooKeeper can then lose track of it: a closing
 * connection removes the session's entry from the server's table whoever holds it).
 */
const SETTLE_MS = 150;

/** Sends closeSession after the settle and waits for its reply or the connection's end; the next attach decides. */
function closeAfterSettle(conn: Connection, timeoutMs: number): Promise<'sent' | 'dropped' | 'refused'> {
  return new Promise((resolve) => {
    let sent = false;
    let refused = false;
    let replyTimer: NodeJS.Timeout | undefined;
    const settleTimer = setTimeout(() => {
      sent = true;
      replyTimer = setTimeout(() => {
        conn.close(new OperationTimeoutError(undefined, `no reply to closeSession from ${conn.server} within ${timeoutMs} ms`));
      }, timeoutMs);
      conn.send({
        xid: 1,
        type: OpCode.closeSession,
        frame: buildFrame(OpCode.closeSession, undefined, 16),
        onReply: (header) => {
          // An ensemble that enforces authentication refuses the close of an unauthenticated connection.
          refused = header.err === ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH;
          conn.close(new ConnectionLossError(undefined, 'closed after closeSession'));
        },
        onLoss: () => undefined,
      });
    }, SETTLE_MS);
    conn.start(
      {
        onNotification: () => undefined,
        onSpecialReply: () => undefined,
        onZxid: () => undefined,
        onClose: () => {
          clearTimeout(settleTimer);
          clearTimeout(replyTimer);
          resolve(refused ? 'refused' : sent ? 'sent' : 'dropped');
        },
      },
      ATTACH_SESSION_TIMEOUT_MS * (2 / 3),
    );
  });
}

/**
 * Ends the session `sessionId` (with its `password`) on the ensemble in `connectString`, and
 * makes sure no server keeps a connection that still serves it. Resolves once at least one server
 * confirmed the end and every reachable server was visited; rejects with OperationTimeoutError
 * when that does not happen within `timeoutMs`, or ConnectionLossError when no server could be
 * reached at all.
 */
export async function endSession(connectString: string, sessionId: bigint, password: Buffer, options: EndSessionOptions = {}): Promise<EndSessionResult> {
  const { servers } = parseConnectString(connectString);
  if (typeof sessionId !== 'bigint' || sessionId === 0n) throw new InvalidArgumentError('sessionId', 'a non-zero session id (bigint) is needed');
  if (!Buffer.isBuffer(password) || password.length === 0) throw new InvalidArgumentError('password', 'the session password (a non-empty Buffer) is needed');
  const timeoutMs = options.timeoutMs ?? 15_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
  if (!(timeoutMs > 0)) throw new InvalidArgumentError('timeoutMs', `a positive number of milliseconds, got ${timeoutMs}`);
  if (!(connectTimeoutMs > 0)) throw new InvalidArgumentError('connectTimeoutMs', `a positive number of milliseconds, got ${connectTimeoutMs}`);
  const security: Security = {};
  if (options.tls) security.tls = new PreparedTls(options.tls, 'options.tls');
  if (options.sasl) security.sasl = digestMd5Factory(options.sasl);
  const deadline = Date.now() + timeoutMs;
  const hex = `0x${BigInt.asUintN(64, sessionId).toString(16)}`;
  const result: EndSessionResult = { outcome: 'alreadyEnded', confirmedBy: [], unreachable: [], attaches: 0 };
  const errors: string[] = [];
  const names = servers.map(({ host, port }) => `${host}:${port}`);

  const remaining = (): number => {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new OperationTimeoutError(undefined, `session ${hex} not confirmed ended by every reachable server within ${timeoutMs} ms (confirmed by: ${result.confirmedBy.join(', ') || 'none'}; last errors: ${errors.slice(-3).join('; ') || 'none'})`);
    }
    return left;
  };
  const attachTo = async (i: number): Promise<Attach> => {
    const left = remaining();
    result.attaches++;
    const a = await attach(servers[i]!.host, servers[i]!.port, sessionId, password, Math.min(connectTimeoutMs, left), security);
    if (a.kind === 'dropped' || a.kind === 'unreachable') errors.push(`${names[i]}: ${a.error.message}`);
    return a;
  };
  const closeThrough = async (conn: Connection, i: number): Promise<'sent' | 'dropped'> => {
    const r = await closeAfterSettle(conn, Math.max(1, Math.min(connectTimeoutMs, deadline - Date.now())));
    if (r === 'refused') {
      throw new SessionClosedRequireSaslAuthError(undefined, `${names[i]} enforces authentication and refused the close of session ${hex}: give endSession the ensemble's TLS or SASL credential`);
    }
    if (r === 'sent') result.outcome = 'closed';
    else errors.push(`${names[i]}: replaced by another connection on the session before the close`);
    return r;
  };

  // 1. Close it, preferring a server that does not drop our handshake: a drop means the holder is
  //    reconnecting there, and closing through another server makes that server close the
  //    holder's connection itself.
  let first = -1;
  const unreachableAtFirst = new Set<number>();
  while (first < 0) {
    let reached = false;
    for (let i = 0; i < servers.length && first < 0; i++) {
      const a = await attachTo(i);
      if (a.kind === 'unreachable') {
        unreachableAtFirst.add(i);
        continue;
      }
      unreachableAtFirst.delete(i);
      reached = true;
      if (a.kind === 'dropped') continue;
      if (a.kind === 'alive') {
        if ((await closeThrough(a.conn, i)) === 'dropped') continue;
      } else result.confirmedBy.push(names[i]!);
      first = i;
    }
    if (!reached) throw new ConnectionLossError(undefined, `no server of ${connectString} could be reached to end session ${hex}: ${errors.join('; ')}`);
    if (first < 0) await sleep(Math.min(50, remaining()));
  }

  // 2. Every server must answer "expired"; each such attach also replaced whatever connection the
  //    holder still had there. A server where the session is alive (the close lost to a racing
  //    reconnect) gets another close; one that keeps dropping us is retried until the deadline.
  for (let k = 0; k < servers.length; k++) {
    const i = (first + k) % servers.length;
    if (result.confirmedBy.includes(names[i]!)) continue;
    // Not tried again: a server that timed out once would cost another connect timeout.
    if (unreachableAtFirst.has(i)) {
      result.unreachable.push(names[i]!);
      continue;
    }
    for (;;) {
      const a = await attachTo(i);
      if (a.kind === 'expired') {
        result.confirmedBy.push(names[i]!);
        break;
      }
      if (a.kind === 'unreachable') {
        result.unreachable.push(names[i]!);
        break;
      }
      if (a.kind === 'alive') await closeThrough(a.conn, i);
      else await sleep(Math.min(20, remaining()));
    }
  }
  return result;
}
