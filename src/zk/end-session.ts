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
 *
 * Servers that do not answer are told apart by how (connection.ts, OpenFailure), because the guard
 * calls this at the worst moments, an election among them: ZooKeeper accepts TCP while it is not
 * serving (a server in LOOKING closes a connection as soon as its ConnectRequest arrives:
 * NIOServerCnxn.readConnectRequest, "ZooKeeperServer not running"; a follower revalidating the
 * session with a leader that just died holds it until it notices and closes every connection,
 * Learner.shutdown). Such a server is retried within the deadline: it serves again once the
 * election is over, and may hold a connection for the session. A server where nothing listens
 * (refused: no process) holds no connection and, once restarted, learns the close from the leader:
 * it is reported unreachable without waiting. One that gives no TCP answer at all (partitioned,
 * black-holed) may be alive on the holder's side: it is retried until the deadline, and only then
 * reported unreachable.
 */
import { Connection, buildFrame, type OpenFailure } from './connection.ts';
import { ConnectionLossError, ErrorCode, InvalidArgumentError, OperationTimeoutError, SessionClosedRequireSaslAuthError } from './errors.ts';
import { PreparedTls, type TlsOptions } from './transport.ts';
import { digestMd5Factory, type DigestMd5Credentials, type SaslMechanism } from './sasl.ts';
import { OpCode } from './protocol.ts';
import { parseConnectString } from './paths.ts';
import { sessionHex } from './records.ts';
import { checkMillis } from './args.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EndSessionOptions {
  /** The whole call, every attach and close included. Default 15 000 ms. */
  timeoutMs?: number;
  /** One server's TCP connect and session handshake. Default 3 000 ms. */
  connectTimeoutMs?: number;
  /** TLS to the servers' secureClientPort, as for the client. */
  tls?: TlsOptions;
  /**
   * SASL credential. An ensemble that enforces authentication refuses the closeSession of an
   * unauthenticated connection (endSession then rejects with SessionClosedRequireSaslAuthError).
   */
  sasl?: DigestMd5Credentials;
}

/** How every attach of one call connects. */
interface Security {
  tls?: PreparedTls;
  sasl?: () => SaslMechanism;
}

export interface EndSessionResult {
  /** 'closed': this call's closeSession ended it; 'alreadyEnded': no server had it alive. */
  outcome: 'closed' | 'alreadyEnded';
  /** Servers that answered "expired" for the session: none of them serves it any more. */
  confirmedBy: string[];
  /**
   * Servers not reached: nothing listened there (no server process), or no TCP answer came for
   * the whole call. A holder that can still reach one of the latter may keep a connection there.
   */
  unreachable: string[];
  /** Session handshakes made (each one replaces the holder's connection on that server). */
  attaches: number;
}

/**
 * The deadline passed before every server that answered TCP confirmed the end. `result` says how
 * far it got (`outcome: 'closed'` when a closeSession was sent), `pending` which servers were
 * reached but never served the confirmation (still electing, paused, overloaded).
 */
export class EndSessionTimeoutError extends OperationTimeoutError {
  readonly result: EndSessionResult;
  readonly pending: string[];
  constructor(detail: string, result: EndSessionResult, pending: string[]) {
    super(undefined, detail);
    this.name = 'EndSessionTimeoutError';
    this.result = result;
    this.pending = pending;
  }
}

/** Session timeout asked for while attached; the session is being ended, so it only bounds our own hold. */
const ATTACH_SESSION_TIMEOUT_MS = 10_000;
const MAX_FRAME = 1 << 20;
/** Pause between rounds over servers that are not serving (an election takes hundreds of ms). */
const RETRY_PAUSE_MS = 50;

/**
 * What one session handshake said:
 * - alive: the session lives; we hold a connection on it;
 * - expired: the server does not know the session (ended, or a wrong password);
 * - notServing: TCP came up but no session answer (dropped, silent, refused in the pipeline):
 *   electing, revalidating with a dead leader, paused; on the holder's own server a drop is also
 *   the holder's reconnect replacing ours (CLIENT_RECONNECT works both ways);
 * - down: nothing listens (TCP refused);
 * - unanswered: no TCP answer within the connect timeout.
 */
type Attach =
  | { kind: 'alive'; conn: Connection }
  | { kind: 'expired' }
  | { kind: 'notServing'; error: Error }
  | { kind: 'down'; error: Error }
  | { kind: 'unanswered'; error: Error };

function attachKind(failure: OpenFailure): 'notServing' | 'down' | 'unanswered' {
  if (failure === 'refused') return 'down';
  if (failure === 'unanswered') return 'unanswered';
  return 'notServing';
}

async function attach(host: string, port: number, sessionId: bigint, password: Buffer, connectTimeoutMs: number, security: Security): Promise<Attach> {
  const opened = await Connection.open({
    host,
    port,
    connectTimeoutMs,
    maxIncomingBytes: MAX_FRAME,
    request: { protocolVersion: 0, lastZxidSeen: 0n, timeOut: ATTACH_SESSION_TIMEOUT_MS, sessionId, passwd: password, readOnly: false },
    tls: security.tls,
    sasl: security.sasl,
  });
  // A refused credential is refused by every server: nothing here can end the session.
  if (!opened.ok && opened.failure === 'unauthenticated') throw opened.error;
  if (!opened.ok) return { kind: attachKind(opened.failure), error: opened.error };
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
    const readTimeoutMs = Math.floor((ATTACH_SESSION_TIMEOUT_MS * 2) / 3);
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
      { readTimeoutMs, pingIntervalMs: Math.floor(readTimeoutMs / 2) },
    );
  });
}

/**
 * Ends the session `sessionId` (with its `password`) on the ensemble in `connectString`, and
 * makes sure no server keeps a connection that still serves it. Resolves once the session was
 * closed (or found ended) and every server confirmed it or is unreachable (see
 * EndSessionResult.unreachable). Rejects with ConnectionLossError when no server answered TCP in
 * a whole round, and with EndSessionTimeoutError (an OperationTimeoutError) when servers that
 * answered TCP had not all confirmed within `timeoutMs`.
 */
export async function endSession(connectString: string, sessionId: bigint, password: Buffer, options: EndSessionOptions = {}): Promise<EndSessionResult> {
  const { servers } = parseConnectString(connectString);
  if (typeof sessionId !== 'bigint' || sessionId === 0n) throw new InvalidArgumentError('sessionId', 'a non-zero session id (bigint) is needed');
  if (!Buffer.isBuffer(password) || password.length === 0) throw new InvalidArgumentError('password', 'the session password (a non-empty Buffer) is needed');
  const timeoutMs = checkMillis(options.timeoutMs ?? 15_000, 'timeoutMs');
  const connectTimeoutMs = checkMillis(options.connectTimeoutMs ?? 3_000, 'connectTimeoutMs');
  const security: Security = {};
  if (options.tls !== undefined) security.tls = new PreparedTls(options.tls, 'options.tls');
  if (options.sasl !== undefined) security.sasl = digestMd5Factory(options.sasl);
  const deadline = Date.now() + timeoutMs;
  const hex = sessionHex(sessionId);
  const result: EndSessionResult = { outcome: 'alreadyEnded', confirmedBy: [], unreachable: [], attaches: 0 };
  const errors: string[] = [];
  const names = servers.map(({ host, port }) => `${host}:${port}`);
  /** Servers that answered TCP at least once during this call. */
  const answeredTcp = new Set<number>();

  const left = (): number => deadline - Date.now();
  const timeout = (pending: number[]): EndSessionTimeoutError =>
    new EndSessionTimeoutError(
      `session ${hex} not confirmed ended by every reachable server within ${timeoutMs} ms (closeSession ${result.outcome === 'closed' ? 'sent' : 'not sent'}; confirmed by: ${result.confirmedBy.join(', ') || 'none'}; not serving: ${pending.map((i) => names[i]).join(', ') || 'none'}; last errors: ${errors.slice(-3).join('; ') || 'none'})`,
      { ...result, confirmedBy: [...result.confirmedBy], unreachable: [...result.unreachable] },
      pending.map((i) => names[i]!),
    );
  const attachTo = async (i: number): Promise<Attach> => {
    result.attaches++;
    const a = await attach(servers[i]!.host, servers[i]!.port, sessionId, password, Math.max(1, Math.min(connectTimeoutMs, left())), security);
    if (a.kind !== 'down' && a.kind !== 'unanswered') answeredTcp.add(i);
    if (a.kind === 'notServing' || a.kind === 'down' || a.kind === 'unanswered') errors.push(`${names[i]}: ${a.error.message}`);
    return a;
  };
  const closeThrough = async (conn: Connection, i: number): Promise<'sent' | 'dropped'> => {
    const r = await closeAfterSettle(conn, Math.max(1, Math.min(connectTimeoutMs, left())));
    if (r === 'refused') {
      throw new SessionClosedRequireSaslAuthError(
        undefined,
        `${names[i]} enforces authentication and refused the close of session ${hex}: give endSession the ensemble's TLS or SASL credential`,
      );
    }
    if (r === 'sent') result.outcome = 'closed';
    else errors.push(`${names[i]}: replaced by another connection on the session before the close`);
    return r;
  };

  // 1. Close it, preferring a server that does not drop our handshake: a drop means the holder is
  //    reconnecting there (or the server is not serving), and closing through another server
  //    makes that server close the holder's connection itself.
  let first = -1;
  while (first < 0) {
    let tcpThisRound = false;
    for (let i = 0; i < servers.length && first < 0; i++) {
      if (left() <= 0) throw timeout(servers.map((_, k) => k).filter((k) => answeredTcp.has(k)));
      const a = await attachTo(i);
      if (a.kind === 'down' || a.kind === 'unanswered') continue;
      tcpThisRound = true;
      if (a.kind === 'notServing') continue;
      if (a.kind === 'alive') {
        if ((await closeThrough(a.conn, i)) === 'dropped') continue;
      } else result.confirmedBy.push(names[i]!);
      first = i;
    }
    if (first >= 0) break;
    if (!tcpThisRound) throw new ConnectionLossError(undefined, `no server of ${connectString} could be reached to end session ${hex}: ${errors.join('; ')}`);
    if (left() <= 0) throw timeout(servers.map((_, k) => k).filter((k) => answeredTcp.has(k)));
    await sleep(Math.min(RETRY_PAUSE_MS, left()));
  }

  // 2. Every server must answer "expired"; each such attach also replaced whatever connection the
  //    holder still had there. A server where the session is alive (the close lost to a racing
  //    reconnect, or to an election) gets another close. Rounds over the servers still pending,
  //    so one that is not serving does not hold up the others.
  let pending = servers.map((_, k) => (first + k) % servers.length).filter((i) => !result.confirmedBy.includes(names[i]!));
  while (pending.length > 0) {
    const next: number[] = [];
    for (const i of pending) {
      if (left() <= 0) {
        next.push(i);
        continue;
      }
      const a = await attachTo(i);
      if (a.kind === 'expired') result.confirmedBy.push(names[i]!);
      else if (a.kind === 'down') result.unreachable.push(names[i]!);
      else {
        if (a.kind === 'alive') await closeThrough(a.conn, i);
        next.push(i);
      }
    }
    pending = next;
    if (pending.length === 0) break;
    if (left() <= 0) {
      const reached = pending.filter((i) => answeredTcp.has(i));
      if (reached.length > 0) throw timeout(reached);
      for (const i of pending) result.unreachable.push(names[i]!);
      break;
    }
    await sleep(Math.min(RETRY_PAUSE_MS, left()));
  }
  return result;
}
