/**
 * ZooKeeper's SASL request on the wire (OpCode.sasl = 102), and the exchange that runs right after
 * the session handshake, before any other request.
 *
 * Records (zookeeper.jute): GetSASLRequest { buffer token } goes out behind an ordinary
 * RequestHeader (an ordinary xid: ClientCnxn sends it with sendPacket); SetSASLResponse { buffer
 * token } comes back behind a ReplyHeader. The server (ZooKeeperServer.processSasl) answers the
 * token directly, outside the request pipeline; on a failed evaluation it replies AUTHFAILED, or
 * SESSIONCLOSEDREQUIRESASLAUTH when SASL is enforced, and closes the connection.
 *
 * Why before anything else: with enforced authentication (zookeeper.enforce.auth.enabled /
 * sessionRequireClientSASLAuth) the server checks every request other than auth and sasl,
 * pings and setWatches included, and answers an unauthenticated one by closing the connection.
 * The Java client holds its outgoing queue until SASL completes for the same reason.
 *
 * Pure: frames in, frames out. The connection layer writes what `start` and `onReply` return.
 */
import { JuteWriter, JuteDecodeError } from './jute.ts';
import { OpCode, writeRequestHeader } from './protocol.ts';
import { decodeServerMessage } from './decoder.ts';
import { AuthFailedError, ErrorCode, ProtocolError, SessionClosedRequireSaslAuthError } from './errors.ts';
import { SaslMechanismError, type SaslMechanism } from './sasl.ts';

/** Tokens are small (DIGEST-MD5: a few hundred bytes); anything near this is not a SASL token. */
const MAX_TOKEN_BYTES = 64 * 1024;

/** A whole frame (length prefix included) carrying GetSASLRequest. */
export function encodeSaslRequest(xid: number, token: Buffer): Buffer {
  const w = new JuteWriter(16 + token.length);
  w.writeInt(0);
  writeRequestHeader(w, xid, OpCode.sasl);
  w.writeBuffer(token);
  w.patchInt(0, w.length - 4);
  return w.toBuffer();
}

export interface SaslReply {
  xid: number;
  err: number;
  /** null when the server sent none (a failure reply, or a mechanism with nothing more to say). */
  token: Buffer | null;
}

/** ReplyHeader + SetSASLResponse from a frame without its length prefix. */
export function decodeSaslReply(frame: Buffer): SaslReply {
  const { xid, err, body } = decodeServerMessage(frame);
  // A failure reply may carry an empty SetSASLResponse or nothing at all.
  const token = body.remaining > 0 ? body.readBuffer('SetSASLResponse.token', MAX_TOKEN_BYTES) : null;
  return { xid, err, token };
}

export type SaslStep = { send: Buffer; done: false } | { send: null; done: true };

/**
 * One SASL authentication over one connection. `start` gives the first frame; each reply frame
 * given to `onReply` yields the next frame to send, or done. Throws AuthFailedError (bad
 * credential, or a server that could not prove it knows it), SessionClosedRequireSaslAuthError
 * (the server requires SASL and refused this one), or ProtocolError (not a SASL reply).
 */
export class SaslExchange {
  private xid: number;
  private state: 'idle' | 'waiting' | 'done' | 'failed' = 'idle';

  constructor(
    private readonly mechanism: SaslMechanism,
    private readonly server: string,
    firstXid = 1,
  ) {
    this.xid = firstXid;
  }

  /** The next xid the connection may use for ordinary requests. */
  get nextXid(): number {
    return this.xid;
  }

  start(): Buffer {
    if (this.state !== 'idle') throw new Error('SaslExchange.start called twice');
    this.state = 'waiting';
    return encodeSaslRequest(this.xid, this.mechanism.initialResponse());
  }

  onReply(frame: Buffer): SaslStep {
    if (this.state !== 'waiting') throw new ProtocolError(this.server, `unexpected frame during SASL (exchange ${this.state})`);
    try {
      return this.step(frame);
    } catch (e) {
      this.state = 'failed';
      throw e;
    }
  }

  private step(frame: Buffer): SaslStep {
    let reply: SaslReply;
    try {
      reply = decodeSaslReply(frame);
    } catch (e) {
      throw new ProtocolError(this.server, `bad SASL reply: ${e instanceof JuteDecodeError ? e.message : String(e)}`);
    }
    if (reply.xid !== this.xid) throw new ProtocolError(this.server, `SASL reply xid ${reply.xid}, expected ${this.xid}`);
    this.xid++;
    if (reply.err === ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH) {
      throw new SessionClosedRequireSaslAuthError(undefined, `${this.server} refused the SASL credential (${this.mechanism.name})`);
    }
    if (reply.err !== 0) throw new AuthFailedError(undefined, `sasl ${this.mechanism.name}: ${this.server} refused the credential (code ${reply.err})`);
    let next: Buffer | null;
    try {
      next = this.mechanism.evaluateChallenge(reply.token ?? Buffer.alloc(0));
    } catch (e) {
      if (e instanceof SaslMechanismError) throw new AuthFailedError(undefined, `sasl: ${this.server}: ${e.message}`);
      throw e;
    }
    if (next !== null) return { send: encodeSaslRequest(this.xid, next), done: false };
    if (!this.mechanism.isComplete) throw new AuthFailedError(undefined, `sasl ${this.mechanism.name}: ${this.server} ended the exchange before it completed`);
    this.state = 'done';
    return { send: null, done: true };
  }
}
