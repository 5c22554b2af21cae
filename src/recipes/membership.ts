/**
 * Membership: each live instance holds one ephemeral znode named after its endpoint
 * (`/zbs/meta/__mj_cluster/10.1.88.101:10100`) carrying JSON metadata; the znode lives exactly
 * as long as the instance's session. Anyone can list the members and follow changes.
 */
import { EventEmitter } from 'node:events';
import { WatchedRead } from './watched-read.ts';
import { NoNodeError, NodeExistsError, type ACL, type WatchEvent, type ZooKeeperClient } from '../zk/index.ts';
import { MemberExistsError, RecipeUsageError } from './errors.ts';
import { DEFAULT_MEMBERS_PATH, checkRecipePath, decodePayload, encodePayload, ensurePath } from './layout.ts';

export interface Member {
  /** The znode name: the endpoint as registered. */
  endpoint: string;
  metadata: Record<string, unknown>;
  /** The member's session (ephemeralOwner). */
  sessionId: bigint;
  /** When it registered (ctime, ZooKeeper's clock). */
  since: number;
  znode: string;
}

export interface MembershipOptions {
  /** Default `/zbs/meta/__mj_cluster`. */
  path?: string;
  requestTimeoutMs?: number;
  /** ACL of the member znode and of the members path if created here (default open); see acl.ts. */
  acl?: readonly ACL[];
}

function membersPath(o: MembershipOptions): string {
  const path = o.path ?? DEFAULT_MEMBERS_PATH;
  checkRecipePath(path, 'path');
  return path;
}

function checkEndpoint(endpoint: string): void {
  if (typeof endpoint !== 'string' || endpoint === '' || endpoint.includes('/') || endpoint === '.' || endpoint === '..') {
    throw new RecipeUsageError('endpoint', `"${endpoint}" cannot be a znode name (non-empty, no /)`);
  }
}

/**
 * Registers this session as a member. If the endpoint's znode already exists and belongs to
 * this session (a retried registration), it is kept; if another live session holds it,
 * MemberExistsError (two instances claiming one endpoint is a configuration error worth
 * surfacing, not papering over).
 */
export async function registerMember(
  client: ZooKeeperClient,
  endpoint: string,
  metadata: Record<string, unknown> = {},
  opts: MembershipOptions = {},
): Promise<Member> {
  const path = membersPath(opts);
  checkEndpoint(endpoint);
  const timeoutMs = opts.requestTimeoutMs;
  await ensurePath(client, path, timeoutMs, opts.acl);
  const znode = `${path}/${endpoint}`;
  try {
    const { stat } = await client.create(znode, encodePayload(metadata), { mode: 'ephemeral', timeoutMs, acl: opts.acl });
    return { endpoint, metadata, sessionId: stat.ephemeralOwner, since: stat.ctime, znode };
  } catch (e) {
    if (!(e instanceof NodeExistsError)) throw e;
  }
  const { data, stat } = await client.getData(znode, { timeoutMs });
  if (stat.ephemeralOwner !== client.sessionId) throw new MemberExistsError(znode, stat.ephemeralOwner);
  return { endpoint, metadata: decodePayload(data), sessionId: stat.ephemeralOwner, since: stat.ctime, znode };
}

/** Removes this session's member znode (a no-op if it is gone). */
export async function unregisterMember(client: ZooKeeperClient, endpoint: string, opts: MembershipOptions = {}): Promise<void> {
  const path = membersPath(opts);
  checkEndpoint(endpoint);
  try {
    await client.delete(`${path}/${endpoint}`, -1, { timeoutMs: opts.requestTimeoutMs });
  } catch (e) {
    if (!(e instanceof NoNodeError)) throw e;
  }
}

/** The members now, sorted by endpoint. With `watch`, a child watch on the members path (or an exists watch until it exists). */
export async function listMembers(client: ZooKeeperClient, opts: MembershipOptions = {}, watch?: (e: WatchEvent) => void): Promise<Member[]> {
  const path = membersPath(opts);
  const timeoutMs = opts.requestTimeoutMs;
  let children: string[];
  try {
    children = (await client.getChildren(path, { watch, timeoutMs })).children;
  } catch (e) {
    if (!(e instanceof NoNodeError)) throw e;
    if (watch && (await client.exists(path, { watch, timeoutMs })) !== null) return listMembers(client, opts, watch);
    return [];
  }
  const out: Member[] = [];
  // Parallel reads: one round trip for the lot. A member that left in between is skipped.
  const reads = await Promise.all(
    children.map(async (name) => {
      try {
        return { name, ...(await client.getData(`${path}/${name}`, { timeoutMs })) };
      } catch (e) {
        if (e instanceof NoNodeError) return null;
        throw e;
      }
    }),
  );
  for (const r of reads) {
    if (!r) continue;
    out.push({ endpoint: r.name, metadata: decodePayload(r.data), sessionId: r.stat.ephemeralOwner, since: r.stat.ctime, znode: `${path}/${r.name}` });
  }
  return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
}

export interface MembersEvents {
  change: [members: Member[], joined: Member[], left: Member[]];
  warning: [err: Error];
}

/** Follows the member list: `await w.start()`, then `w.members` and 'change' events; `w.stop()`. */
export class MembersWatcher extends EventEmitter<MembersEvents> {
  readonly client: ZooKeeperClient;
  private readonly opts: MembershipOptions;
  private _members: Member[] = [];
  private readonly follower: WatchedRead;

  constructor(client: ZooKeeperClient, opts: MembershipOptions = {}) {
    super();
    membersPath(opts);
    this.client = client;
    this.opts = opts;
    this.follower = new WatchedRead(
      client,
      async (onWatch) => this.accept(await listMembers(this.client, this.opts, onWatch)),
      (err) => this.emit('warning', err),
    );
  }

  get members(): Member[] {
    return this._members;
  }

  async start(): Promise<Member[]> {
    await this.follower.start();
    return this._members;
  }

  stop(): void {
    this.follower.stop();
  }

  refresh(): void {
    this.follower.refresh();
  }

  private accept(now: Member[]): void {
    if (!this.follower.running) return;
    const key = (m: Member): string => `${m.endpoint}@${m.sessionId}`;
    const before = new Set(this._members.map(key));
    const after = new Set(now.map(key));
    const joined = now.filter((m) => !before.has(key(m)));
    const left = this._members.filter((m) => !after.has(key(m)));
    this._members = now;
    if (joined.length > 0 || left.length > 0) this.emit('change', now, joined, left);
  }
}
