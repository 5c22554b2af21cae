/** Shared pieces of the recipe tests: candidates in their own sessions, an observer of every leader view. */
import { createClient, type ClientOptions, type ZooKeeperClient } from '../../src/zk/index.ts';
import { Election, type DeposeReason, type ElectionOptions, type Term } from '../../src/recipes/index.ts';

export { until } from '../until.ts';

/** The state a deposed leader is in when 'deposed' reaches its listeners (docs/recipes.md). */
function stateAfterDeposal(reason: DeposeReason): string {
  if (reason === 'suspended') return 'suspended';
  if (reason === 'expired') return 'lost';
  return reason === 'closed' || reason === 'left' ? 'left' : 'candidate';
}

export type View = { at: number; who: string; ev: 'elected' | 'deposed'; epoch: number; resumed?: boolean; reason?: DeposeReason };

/**
 * Records every elected/deposed of every candidate, in the order they happen (one process,
 * one event loop: a total order), and checks at each event that at most one candidate leads.
 */
export class LeaderObserver {
  readonly views: View[] = [];
  readonly leaders = new Set<string>();
  /** Events whose listener saw a state other than the one the event announces. */
  readonly inconsistent: string[] = [];
  /** Set when two candidates were leaders at once. */
  violation: string | null = null;
  maxConcurrent = 0;

  watch(who: string, e: Election): void {
    e.on('elected', ({ term, resumed }) => {
      this.views.push({ at: Date.now(), who, ev: 'elected', epoch: term.epoch, resumed });
      // Leadership changes before its event: a listener sees the state the event announces.
      if (!e.isLeader() || e.term !== term) this.inconsistent.push(`${who} elected while ${e.state}`);
      // A claim ZooKeeper ordered before the external close may be reported after it began;
      // such a candidate is not counted (its session is going), and it learns 'lost' next.
      if (term.epoch <= (this.deposedUpTo.get(who) ?? -Infinity)) {
        this.lateViews++;
        return;
      }
      this.leaders.add(who);
      this.maxConcurrent = Math.max(this.maxConcurrent, this.leaders.size);
      if (this.leaders.size > 1 && !this.violation) this.violation = `two leaders at once: ${[...this.leaders].join(', ')}`;
    });
    e.on('deposed', ({ term, reason }) => {
      this.views.push({ at: Date.now(), who, ev: 'deposed', epoch: term.epoch, reason });
      if (e.isLeader() || e.term !== null || e.state !== stateAfterDeposal(reason)) this.inconsistent.push(`${who} deposed (${reason}) while ${e.state}`);
      this.leaders.delete(who);
    });
  }

  /** The process of `who` is gone (killed): it acts no more, whatever its objects think. */
  dead(who: string): void {
    this.leaders.delete(who);
  }

  /** Per candidate, the highest epoch an outside agent has ended (Infinity: its whole session). */
  readonly deposedUpTo = new Map<string, number>();
  /** 'elected' views reported for terms an outside agent had already ended. */
  lateViews = 0;

  /**
   * An outside agent (what a guard does to a wedged leader) is ending `who`'s terms up to
   * `epoch`: deleting or bumping its election znode, or closing its session. From this moment
   * ZooKeeper no longer backs those terms, and the successor may be elected before `who` itself
   * learns (no client can learn that instantly): exactly the window fencing covers. Such terms
   * are not counted as leaders; later terms of `who` are.
   */
  deposeFromOutside(who: string, epoch = Infinity): void {
    this.deposedUpTo.set(who, Math.max(epoch, this.deposedUpTo.get(who) ?? -Infinity));
    this.leaders.delete(who);
  }

  /** Someone else is closing `who`'s session: every term of it is over. */
  sessionEnding(who: string): void {
    this.deposeFromOutside(who, Infinity);
  }

  elections(who?: string): View[] {
    return this.views.filter((v) => v.ev === 'elected' && (who === undefined || v.who === who));
  }
}

export interface Candidate {
  name: string;
  client: ZooKeeperClient;
  election: Election;
}

export class Pool {
  readonly clients: ZooKeeperClient[] = [];
  readonly connectString: string;
  readonly clientDefaults: ClientOptions;
  constructor(connectString: string, clientDefaults: ClientOptions) {
    this.connectString = connectString;
    this.clientDefaults = clientDefaults;
  }

  async client(opts: ClientOptions = {}, connectString = this.connectString): Promise<ZooKeeperClient> {
    const c = createClient(connectString, { ...this.clientDefaults, ...opts });
    this.clients.push(c);
    await c.connect();
    return c;
  }

  async candidate(
    name: string,
    path: string,
    observer?: LeaderObserver,
    opts: ClientOptions = {},
    connectString?: string,
    electionOpts: Partial<ElectionOptions> = {},
  ): Promise<Candidate> {
    const client = await this.client(opts, connectString);
    const election = new Election(client, { path, candidate: { endpoint: `${name}:10100`, name }, ...electionOpts });
    observer?.watch(name, election);
    await election.join();
    return { name, client, election };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close({ timeoutMs: 500 }).catch(() => undefined)));
  }
}

export function nextElected(e: Election, timeoutMs = 30_000): Promise<{ term: Term; resumed: boolean }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no elected event')), timeoutMs);
    e.once('elected', (info) => {
      clearTimeout(t);
      resolve(info);
    });
  });
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
