/**
 * Who is who: addresses → nodes, ZooKeeper myids → nodes, ports and endpoints → roles. Learned
 * from the bundle itself (folder names that are addresses, ZooKeeper's own listen addresses and
 * [myid:N] fields, zoo.cfg files, `Follower sid: N : info : host` lines, membership paths such
 * as `/zbs/meta/__mj_cluster/10.1.88.101:10100`) and from bundle.json when present.
 */
import type { BundlePlan } from './bundle.ts';
import type { DataTrail } from './datatrail.ts';
import type { StoryDetector } from './story.ts';
import type { Entry } from './types.ts';

const IP = String.raw`(\d{1,3}(?:\.\d{1,3}){3})`;
const SELF_ADDR = [
  new RegExp(String.raw`^binding to port /?${IP}:\d+`),
  new RegExp(String.raw`^clientPortAddress is /?${IP}:\d+`),
  new RegExp(String.raw`my election bind port: /?${IP}:\d+`),
];
const THREAD_ADDR = [new RegExp(String.raw`^QuorumPeer\[myid=\d+\](?:\(plain=|/)${IP}:\d+`), new RegExp(String.raw`^NIOServerCxn\.Factory:/?${IP}:2181`)];
const MEMBER_PATH = new RegExp(String.raw`/([A-Za-z][\w-]*)/(?:__\w*cluster|cluster|members)/${IP}:(\d{2,5})`, 'g');
const FOLLOWER_INFO = new RegExp(String.raw`^Follower sid: (\d+) : info : \[?${IP}`);

export const DEFAULT_PORT_ROLES: Record<string, string> = {
  '2181': 'zookeeper (client port)',
  '2888': 'zookeeper (quorum port)',
  '3888': 'zookeeper (election port)',
};

export interface Endpoint {
  address: string;
  node?: string;
  role?: string;
  /** The endpoint held its service's election at some point of the bundle. */
  leader?: boolean;
}

export class Topology {
  readonly addressNode = new Map<string, string>();
  readonly myidNode = new Map<number, string>();
  readonly sidHost = new Map<number, string>();
  readonly endpointRole = new Map<string, string>();
  readonly portRole = new Map<string, string>();
  /** IP:PORT → node, when the port tells (services sharing one address, a port per node). */
  readonly endpointNode = new Map<string, string>();
  /** Addresses more than one node uses (loopback, NAT): never mapped to a node by address alone. */
  readonly sharedAddresses = new Set<string>(['127.0.0.1', '0.0.0.0', 'localhost']);
  /** Endpoints that held an election (ZooKeeper's data or their own "became leader" lines). */
  readonly leaderEndpoints = new Set<string>();
  /** Facts that contradict each other: reported, never guessed between. */
  readonly conflicts: string[] = [];
  /** Where each fact came from, for the report. */
  readonly sources: string[] = [];
  private readonly selfDone = new Set<string>();
  private readonly addressWhy = new Map<string, string>();

  constructor(plan: BundlePlan) {
    for (const [p, r] of Object.entries(DEFAULT_PORT_ROLES)) this.portRole.set(p, r);
    for (const n of plan.nodes) {
      if (/^\d{1,3}(\.\d{1,3}){3}$/.test(n)) this.setAddress(n, n, 'folder name');
      const m = /(\d{1,3})[._-](\d{1,3})[._-](\d{1,3})[._-](\d{1,3})/.exec(n);
      if (m && !/^\d{1,3}(\.\d{1,3}){3}$/.test(n)) this.setAddress(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`, n, 'folder name');
    }
    for (const [n, c] of Object.entries(plan.config.nodes ?? {})) {
      for (const a of c.addresses ?? []) this.setAddress(a, n, 'bundle.json');
      for (const ep of c.endpoints ?? []) this.setEndpoint(ep, n, 'bundle.json');
      if (c.myid !== undefined) this.myidNode.set(c.myid, n);
    }
    for (const [p, r] of Object.entries(plan.config.ports ?? {})) this.portRole.set(p, r);
    for (const [node, id] of plan.myids) this.myidNode.set(id, node);
    for (const [sid, host] of plan.zkServers) this.sidHost.set(sid, host);
  }

  private setAddress(ip: string, node: string, why: string): void {
    if (this.sharedAddresses.has(ip)) return;
    const had = this.addressNode.get(ip);
    if (had === node) return;
    if (had !== undefined) {
      // Two nodes on one address: a shared (NAT, loopback) address; ports must tell them apart.
      this.conflicts.push(`${ip} is claimed by ${had} (${this.addressWhy.get(ip)}) and ${node} (${why}): treated as a shared address`);
      this.addressNode.delete(ip);
      this.sharedAddresses.add(ip);
      return;
    }
    this.addressNode.set(ip, node);
    this.addressWhy.set(ip, why);
    this.sources.push(`${ip} → ${node} (${why})`);
  }

  private setEndpoint(ep: string, node: string, why: string): void {
    const had = this.endpointNode.get(ep);
    if (had === node) return;
    if (had !== undefined) {
      this.conflicts.push(`${ep} is claimed by ${had} and by ${node} (${why}): left unassigned`);
      this.endpointNode.set(ep, '');
      return;
    }
    this.endpointNode.set(ep, node);
    this.sources.push(`${ep} → ${node} (${why})`);
  }

  /**
   * What the whole bundle said, once read: endpoints services listen on, sessions they named
   * and the znodes those sessions own in ZooKeeper's data, which endpoint held an election.
   */
  learn(story: StoryDetector, trail: DataTrail | null): void {
    for (const [ep, claims] of story.listens) {
      if (claims.length > 1) {
        this.conflicts.push(`${ep}: "listening" lines on ${claims.map((c) => `${c.node} (${c.ev.file}:${c.ev.line})`).join(' and ')}: left unassigned`);
        this.endpointNode.set(ep, '');
        continue;
      }
      const c = claims[0]!;
      this.setEndpoint(ep, c.node, `${c.node} ${c.service} listens there, ${c.ev.file}:${c.ev.line}`);
    }
    if (trail) {
      for (const m of trail.members) {
        if (!this.endpointRole.has(m.endpoint)) {
          this.endpointRole.set(m.endpoint, m.role);
          this.sources.push(`${m.endpoint} is a "${m.role}" member (ephemeral ${m.path}, session ${m.session}, in ZooKeeper's data)`);
        }
        if (!this.portRole.has(m.endpoint.split(':').pop()!)) this.portRole.set(m.endpoint.split(':').pop()!, m.role);
        const owner = story.sessionNode.get(m.session);
        if (owner)
          this.setEndpoint(
            m.endpoint,
            owner.node,
            `its member znode's session ${m.session} is named by ${owner.node} ${owner.service}, ${owner.ev.file}:${owner.ev.line}`,
          );
      }
      for (const c of trail.candidates) {
        const owner = story.sessionNode.get(c.session);
        if (c.endpoint && owner)
          this.setEndpoint(
            c.endpoint,
            owner.node,
            `its election znode's session ${c.session} is named by ${owner.node} ${owner.service}, ${owner.ev.file}:${owner.ev.line}`,
          );
      }
      for (const t of trail.terms) {
        if (!t.endpoint) continue;
        if (!this.leaderEndpoints.has(t.endpoint))
          this.sources.push(`${t.endpoint} held the ${t.role} election (${t.electionPath}, epoch 0x${t.epoch.toString(16)}, in ZooKeeper's data)`);
        this.leaderEndpoints.add(t.endpoint);
        if (!this.endpointRole.has(t.endpoint)) this.endpointRole.set(t.endpoint, t.role);
      }
    }
    for (const l of story.leaderLines) {
      // "became leader" on a node with one listening endpoint of that service names it.
      const eps = [...story.listens].filter(([, cs]) => cs.length === 1 && cs[0]!.node === l.node && cs[0]!.service === l.service).map(([ep]) => ep);
      if (eps.length === 1) this.leaderEndpoints.add(eps[0]!);
    }
  }

  /** Learn from one timeline entry; cheap screens first, it runs on every line. */
  observe(e: Entry): void {
    if (e.myid && e.service === 'zookeeper' && !e.node.startsWith('_')) {
      const id = Number(e.myid);
      if (id > 0 && !this.myidNode.has(id)) {
        this.myidNode.set(id, e.node);
        this.sources.push(`ZooKeeper myid ${id} → ${e.node} ([myid:${id}] in ${e.file})`);
      }
      if (!this.selfDone.has(e.node)) {
        const msg = e.msg;
        if (msg.startsWith('binding to port') || msg.startsWith('clientPortAddress') || msg.indexOf('election bind port') >= 0) {
          for (const re of SELF_ADDR) {
            const m = re.exec(msg);
            if (m) this.self(e, m[1]!);
          }
        }
        this.selfFromThread(e);
      }
      if (e.msg.startsWith('Follower sid: ')) {
        const m = FOLLOWER_INFO.exec(e.msg);
        if (m) this.sidHost.set(Number(m[1]), m[2]!);
      }
    } else if (e.service === 'zookeeper' && !this.selfDone.has(e.node) && !e.node.startsWith('_')) {
      this.selfFromThread(e);
    }
    this.scanMembership(e.text);
  }

  private selfFromThread(e: Entry): void {
    const th = e.thread;
    if (!th || !(th.startsWith('QuorumPeer[') || th.startsWith('NIOServerCxn'))) return;
    for (const re of THREAD_ADDR) {
      const m = re.exec(th);
      if (m) this.self(e, m[1]!);
    }
  }

  scanMembership(text: string): void {
    if (text.indexOf('cluster/') < 0 && text.indexOf('members/') < 0) return;
    MEMBER_PATH.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = MEMBER_PATH.exec(text)) !== null) {
      const ep = `${m[2]}:${m[3]}`;
      if (!this.endpointRole.has(ep)) {
        this.endpointRole.set(ep, m[1]!);
        this.sources.push(`${ep} is a "${m[1]}" member (membership path ${m[0]})`);
      }
      if (!this.portRole.has(m[3]!)) this.portRole.set(m[3]!, m[1]!);
    }
  }

  private self(e: Entry, ip: string): void {
    if (ip.startsWith('0.') || ip === '127.0.0.1') return;
    this.selfDone.add(e.node);
    this.setAddress(ip, e.node, `ZooKeeper's own address in ${e.file}:${e.line}`);
  }

  /** Resolve once everything is read: sid hosts → nodes. */
  settle(): void {
    for (const [sid, host] of this.sidHost) {
      const n = this.addressNode.get(host);
      if (n && !this.myidNode.has(sid)) this.myidNode.set(sid, n);
      const byId = this.myidNode.get(sid);
      if (byId) this.setAddress(host, byId, `ZooKeeper server ${sid}`);
    }
  }

  nodeOfAddress(ip: string): string | undefined {
    const a = ip.replace(/^\//, '');
    return this.sharedAddresses.has(a) ? undefined : this.addressNode.get(a);
  }

  endpoint(addr: string): Endpoint {
    const a = addr.replace(/^\//, '');
    const i = a.lastIndexOf(':');
    const ip = i > 0 ? a.slice(0, i) : a;
    const port = i > 0 ? a.slice(i + 1) : '';
    const ep: Endpoint = { address: a };
    const byPort = this.endpointNode.get(a);
    const node = byPort !== undefined ? byPort : this.sharedAddresses.has(ip) ? undefined : this.addressNode.get(ip);
    if (node) ep.node = node;
    const role = this.endpointRole.get(a) ?? this.portRole.get(port);
    if (role) ep.role = role;
    if (this.leaderEndpoints.has(a)) ep.leader = true;
    return ep;
  }

  describe(addr: string): string {
    const ep = this.endpoint(addr);
    const parts = [ep.node ? `${ep.node}'s` : undefined, ep.role && ep.leader ? `${ep.role} leader` : ep.role].filter(Boolean);
    return parts.length ? `${parts.join(' ')} ${ep.address}` : ep.address;
  }
}
