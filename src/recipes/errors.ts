/**
 * Typed errors of the recipes. A caller branches on the class (`err instanceof FencedError`) and,
 * for fencing, on `reason`, which says whether ZooKeeper itself refused the write or the
 * recipe refused to send it.
 */
import { hex, sessionHex } from '../zk/index.ts';

/** Why a leader's write was refused. */
export type FenceReason =
  /** Refused locally: this candidate does not lead now (never did, suspended, deposed). */
  | 'notLeader'
  /** Refused by ZooKeeper: the term's election znode no longer exists (session ended, resigned, deleted). */
  | 'znodeGone'
  /** Refused by ZooKeeper: the term's election znode has a different version (someone fenced it). */
  | 'znodeChanged'
  /** Refused by ZooKeeper: the session the write was sent on has expired or was closed. */
  | 'sessionExpired';

/** A write guarded by a leadership term was refused; nothing of it was applied. */
export class FencedError extends Error {
  readonly reason: FenceReason;
  /** The epoch of the term the write claimed, when there was one. */
  readonly epoch: number | null;
  constructor(reason: FenceReason, epoch: number | null, detail: string) {
    super(`fenced (${reason}${epoch === null ? '' : `, epoch ${hex(epoch)}`}): ${detail}`);
    this.name = 'FencedError';
    this.reason = reason;
    this.epoch = epoch;
  }
}

/** The candidacy is over (session expired, client closed, or left) while someone waited for leadership. */
export class CandidacyEndedError extends Error {
  readonly state: string;
  constructor(state: string, detail = '') {
    super(`the candidacy has ended (state ${state})${detail ? `: ${detail}` : ''}`);
    this.name = 'CandidacyEndedError';
    this.state = state;
  }
}

/** awaitLeadership (or another recipe wait) gave up after its timeout. */
export class RecipeTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what}: not within ${timeoutMs} ms`);
    this.name = 'RecipeTimeoutError';
  }
}

/** A member endpoint is already registered by another live session. */
export class MemberExistsError extends Error {
  readonly path: string;
  readonly ownerSessionId: bigint;
  constructor(path: string, ownerSessionId: bigint) {
    super(`${path} is already registered by session ${sessionHex(ownerSessionId)}`);
    this.name = 'MemberExistsError';
    this.path = path;
    this.ownerSessionId = ownerSessionId;
  }
}

/** A recipe misused (bad option, join twice, act on an ended candidacy). */
export class RecipeUsageError extends Error {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    this.name = 'RecipeUsageError';
    this.argument = argument;
  }
}
