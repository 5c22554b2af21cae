/**
 * Fenced writes: a leader's ZooKeeper writes travel as one `multi` whose first op is a `check`
 * on the leader's own election znode (it exists, with the version the term began with). The
 * ZooKeeper leader applies the transaction only if the check holds at that point of its single
 * history, so a write from a deposed leader (its znode gone with its session, deleted by a
 * guard, or changed) is refused by ZooKeeper itself, however late it arrives: it fails with
 * FencedError and nothing of it lands.
 *
 * What this cannot fence: writes to systems other than ZooKeeper. For those, pass the term's
 * epoch along and have the receiver refuse epochs lower than the highest it has seen.
 */
import {
  MultiError,
  SessionExpiredError,
  ErrorCode,
  type CreateMode,
  type Data,
  type Op,
  type OpResult,
  type Stat,
  type TimeoutOption,
  type ZooKeeperClient,
} from '../zk/index.ts';
import { FencedError } from './errors.ts';

/** What a fenced write checks: the term's election znode and the version it must still have. */
export interface FenceToken {
  /** Full path of the leader's election znode. */
  znode: string;
  version: number;
  /** The term's epoch (fencing token for other systems); carried into errors. */
  epoch: number;
}

/** Where a fenced write gets its current token; null means "not leading now". */
export interface FenceSource {
  readonly client: ZooKeeperClient;
  readonly term: FenceToken | null;
}

/**
 * Runs `ops` as one transaction guarded by `token`. Resolves with the results of `ops` (the
 * check's own result left out). A failed guard gives FencedError; a failure of one of `ops`
 * gives MultiError with the index into `ops`. ConnectionLossError stays ambiguous as always:
 * the write may have been applied, but only if the guard held, i.e. while the term was valid.
 */
export async function fencedMulti(client: ZooKeeperClient, token: FenceToken, ops: readonly Op[], options: TimeoutOption = {}): Promise<OpResult[]> {
  const guard: Op = { op: 'check', path: token.znode, version: token.version };
  try {
    const results = await client.multi([guard, ...ops], options);
    return results.slice(1);
  } catch (e) {
    if (e instanceof MultiError) {
      if (e.index === 0) {
        const gone = e.code === ErrorCode.NO_NODE;
        throw new FencedError(
          gone ? 'znodeGone' : 'znodeChanged',
          token.epoch,
          gone ? `${token.znode} no longer exists` : `${token.znode} is no longer at version ${token.version} (${e.cause.message})`,
        );
      }
      throw new MultiError(e.index - 1, e.cause, e.results.slice(1));
    }
    if (e instanceof SessionExpiredError) {
      // A request on an ended session never reaches the data tree.
      throw new FencedError('sessionExpired', token.epoch, e.message);
    }
    throw e;
  }
}

/**
 * A leader's writer: every call takes the source's current term (refusing at once when there
 * is none) and sends the write guarded by it. Bind it to an Election:
 * `const w = new FencedWriter(election); await w.setData('/app/config', data);`
 */
export class FencedWriter {
  private readonly source: FenceSource;
  constructor(source: FenceSource) {
    this.source = source;
  }

  private token(): FenceToken {
    const t = this.source.term;
    if (!t) throw new FencedError('notLeader', null, 'this candidate does not lead now');
    return t;
  }

  async multi(ops: readonly Op[], options: TimeoutOption = {}): Promise<OpResult[]> {
    // The term first: a source that holds no session now (a guard between sessions) has no client either.
    const token = this.token();
    return fencedMulti(this.source.client, token, ops, options);
  }

  async setData(path: string, data: Data, version = -1, options: TimeoutOption = {}): Promise<Stat> {
    const [r] = await this.multi([{ op: 'setData', path, data: data ?? null, version }], options);
    if (r?.op !== 'setData') throw new Error(`fenced setData ${path}: unexpected result ${JSON.stringify(r)}`);
    return r.stat;
  }

  async create(path: string, data: Data, mode: CreateMode = 'persistent', options: TimeoutOption = {}): Promise<string> {
    const [r] = await this.multi([{ op: 'create', path, data: data ?? null, mode }], options);
    if (r?.op !== 'create') throw new Error(`fenced create ${path}: unexpected result ${JSON.stringify(r)}`);
    return r.path;
  }

  async delete(path: string, version = -1, options: TimeoutOption = {}): Promise<void> {
    await this.multi([{ op: 'delete', path, version }], options);
  }
}
