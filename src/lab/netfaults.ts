/**
 * Network faults between lab nodes, as iptables rules in the lab's own chains inside the nodes'
 * namespaces. Each rule carries a comment naming its fault (`zkw id=… kind=… …`), so what is
 * injected is read back from the kernel itself, healing one fault deletes exactly its rules, and
 * healing everything flushes only the lab's chains. Rules match only the node's eth0, so traffic
 * inside a node (a service to its own ZooKeeper server) is never cut.
 *
 * Faults act on TCP connections, which is what the lab's services speak:
 * - `cut` both ways: every packet between two nodes is dropped (with a port: only connections to
 *   that port, on either side).
 * - `cut` one way, A→B: A cannot open or use connections to B (packets A sends in the direction
 *   of a connection A opened are dropped), while connections B opens to A still work — "A cannot
 *   reach B". A plain one-way packet filter would break TCP both ways and name the wrong fault.
 * - `deaf`: the node receives, its replies are dropped (everything it sends on connections others
 *   opened, except the SYN-ACK, so a client connects and then waits for an answer that never
 *   comes — the gray failure). Optionally one local port only, or some peers only.
 * - `isolate`: a node loses every peer (and the root namespace, unless `keepHost`).
 */
import { randomBytes } from 'node:crypto';
import { LabUsageError, inNetns } from './host.ts';
import { NODE_IFACE, type LabNames } from './network.ts';

export type NetFaultSpec =
  | { kind: 'cut'; a: string; b: string; oneWay?: boolean; port?: number }
  | { kind: 'deaf'; node: string; port?: number; peers?: string[] }
  | { kind: 'isolate'; node: string; keepHost?: boolean };

export type NetFault = NetFaultSpec & { id: string; injectedAt: number };

/** What the fault module needs to know of a node. */
export interface NetNode {
  name: string;
  ip: string;
  netns: string;
}

interface Rule {
  netns: string;
  chain: string;
  spec: string;
}

export function describeFault(f: NetFaultSpec): string {
  switch (f.kind) {
    case 'cut':
      return `cut ${f.a} ${f.oneWay ? '→' : '↔'} ${f.b}${f.port !== undefined ? ` port ${f.port}` : ''}`;
    case 'deaf':
      return `${f.node} deaf${f.port !== undefined ? ` on port ${f.port}` : ''}${f.peers?.length ? ` to ${f.peers.join(', ')}` : ''}`;
    case 'isolate':
      return `${f.node} isolated${f.keepHost ? ' (host still reaches it)' : ''}`;
  }
}

function validPort(port: number | undefined): void {
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new LabUsageError(`port ${port} is not a TCP port (1-65535)`);
}

/** The comment every rule of a fault carries: the fault itself, readable back from `iptables -S`. */
export function faultComment(f: NetFault): string {
  const parts = [`zkw`, `id=${f.id}`, `at=${f.injectedAt}`, `kind=${f.kind}`];
  if (f.kind === 'cut') parts.push(`a=${f.a}`, `b=${f.b}`, ...(f.oneWay ? ['oneway=1'] : []));
  else parts.push(`node=${f.node}`);
  if (f.kind !== 'isolate' && f.port !== undefined) parts.push(`port=${f.port}`);
  if (f.kind === 'deaf' && f.peers?.length) parts.push(`peers=${f.peers.join(',')}`);
  if (f.kind === 'isolate' && f.keepHost) parts.push('keephost=1');
  return parts.join(' ');
}

export function parseComment(text: string): NetFault | null {
  const kv = new Map<string, string>();
  const words = text.trim().split(/\s+/);
  if (words[0] !== 'zkw') return null;
  for (const w of words.slice(1)) {
    const i = w.indexOf('=');
    if (i > 0) kv.set(w.slice(0, i), w.slice(i + 1));
  }
  const id = kv.get('id');
  const kind = kv.get('kind');
  const injectedAt = Number(kv.get('at') ?? 0);
  const port = kv.has('port') ? Number(kv.get('port')) : undefined;
  if (!id) return null;
  if (kind === 'cut' && kv.has('a') && kv.has('b')) {
    return { id, injectedAt, kind, a: kv.get('a')!, b: kv.get('b')!, ...(kv.has('oneway') ? { oneWay: true } : {}), ...(port !== undefined ? { port } : {}) };
  }
  if (kind === 'deaf' && kv.has('node')) {
    return {
      id,
      injectedAt,
      kind,
      node: kv.get('node')!,
      ...(port !== undefined ? { port } : {}),
      ...(kv.has('peers') ? { peers: kv.get('peers')!.split(',') } : {}),
    };
  }
  if (kind === 'isolate' && kv.has('node')) return { id, injectedAt, kind, node: kv.get('node')!, ...(kv.has('keephost') ? { keepHost: true } : {}) };
  return null;
}

export class NetFaults {
  private readonly nodes: NetNode[];
  private readonly chains: LabNames['chains'];
  private readonly hostIp: string;

  constructor(nodes: NetNode[], chains: LabNames['chains'], hostIp: string) {
    this.nodes = nodes;
    this.chains = chains;
    this.hostIp = hostIp;
  }

  private node(name: string): NetNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new LabUsageError(`no node '${name}' in this lab (nodes: ${this.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }

  /** The rules that make up a fault, per namespace. */
  private rules(f: NetFault): Rule[] {
    const c = `-m comment --comment "${faultComment(f)}"`;
    const out = (n: NetNode, match: string): Rule => ({
      netns: n.netns,
      chain: this.chains.output,
      spec: [`-o ${NODE_IFACE}`, match, c, '-j DROP'].filter(Boolean).join(' '),
    });
    const inp = (n: NetNode, match: string): Rule => ({
      netns: n.netns,
      chain: this.chains.input,
      spec: [`-i ${NODE_IFACE}`, match, c, '-j DROP'].filter(Boolean).join(' '),
    });
    switch (f.kind) {
      case 'cut': {
        const a = this.node(f.a);
        const b = this.node(f.b);
        if (a === b) throw new LabUsageError(`cannot cut ${f.a} from itself`);
        validPort(f.port);
        // Connections `from` opens to `to` (optionally to one port) stop; both sides drop, so the
        // drop counters tell on which side a packet was stopped.
        const opened = (from: NetNode, to: NetNode): Rule[] => {
          const port = f.port !== undefined ? `-p tcp -m tcp --dport ${f.port} ` : '';
          return [out(from, `-d ${to.ip}/32 ${port}-m conntrack --ctdir ORIGINAL`), inp(to, `-s ${from.ip}/32 ${port}-m conntrack --ctdir ORIGINAL`)];
        };
        if (f.oneWay) return opened(a, b);
        if (f.port !== undefined) return [...opened(a, b), ...opened(b, a)];
        return [out(a, `-d ${b.ip}/32`), inp(a, `-s ${b.ip}/32`), out(b, `-d ${a.ip}/32`), inp(b, `-s ${a.ip}/32`)];
      }
      case 'deaf': {
        const n = this.node(f.node);
        validPort(f.port);
        const peers = (f.peers ?? []).map((p) => this.node(p));
        const sport = f.port !== undefined ? ` --sport ${f.port}` : '';
        const reply = (dest: string): Rule => out(n, `${dest}-p tcp -m tcp${sport} ! --tcp-flags SYN SYN -m conntrack --ctdir REPLY`);
        return peers.length ? peers.map((p) => reply(`-d ${p.ip}/32 `)) : [reply('')];
      }
      case 'isolate': {
        const n = this.node(f.node);
        if (f.keepHost) return [out(n, `! -d ${this.hostIp}/32`), inp(n, `! -s ${this.hostIp}/32`)];
        return [out(n, ''), inp(n, '')];
      }
    }
  }

  /** Installs a fault; returns it with its id. All its rules or none. */
  async inject(spec: NetFaultSpec): Promise<NetFault> {
    const fault: NetFault = { ...spec, id: `f${randomBytes(3).toString('hex')}`, injectedAt: Date.now() };
    const rules = this.rules(fault);
    const byNs = groupBy(rules);
    const done: string[] = [];
    try {
      for (const [netns, rs] of byNs) {
        await restore(
          netns,
          rs.map((r) => `-A ${r.chain} ${r.spec}`),
        );
        done.push(netns);
      }
    } catch (e) {
      for (const netns of done)
        await restore(
          netns,
          byNs.get(netns)!.map((r) => `-D ${r.chain} ${r.spec}`),
        ).catch(() => undefined);
      throw e;
    }
    return fault;
  }

  /** Every rule in the lab's chains of every node, with its packet counter. */
  async listRules(): Promise<{ node: string; chain: string; spec: string; packets: number; fault: NetFault | null }[]> {
    const out: { node: string; chain: string; spec: string; packets: number; fault: NetFault | null }[] = [];
    await Promise.all(
      this.nodes.map(async (n) => {
        for (const chain of [this.chains.input, this.chains.output]) {
          const r = await inNetns(n.netns, 'iptables', ['-w', '5', '-S', chain, '-v']);
          for (const line of r.stdout.split('\n')) {
            if (!line.startsWith(`-A ${chain} `)) continue;
            const counter = / -c (\d+) (\d+)/.exec(line);
            const spec = line.slice(`-A ${chain} `.length).replace(/ -c \d+ \d+/, '');
            const c = /--comment "([^"]*)"/.exec(line) ?? /--comment (\S+)/.exec(line);
            out.push({ node: n.name, chain, spec, packets: Number(counter?.[1] ?? 0), fault: c ? parseComment(c[1]!) : null });
          }
        }
      }),
    );
    return out;
  }

  /** The faults in force, read back from the kernel, oldest first. */
  async list(): Promise<NetFault[]> {
    const byId = new Map<string, NetFault>();
    for (const r of await this.listRules()) if (r.fault && !byId.has(r.fault.id)) byId.set(r.fault.id, r.fault);
    return [...byId.values()].sort((x, y) => x.injectedAt - y.injectedAt || x.id.localeCompare(y.id));
  }

  /** Packets the lab's rules have dropped, for one fault or all. */
  async dropped(faultId?: string): Promise<number> {
    let n = 0;
    for (const r of await this.listRules()) if (r.fault && (faultId === undefined || r.fault.id === faultId)) n += r.packets;
    return n;
  }

  /** Removes one fault's rules (by id), or every rule of the lab's chains. Returns the faults healed. */
  async heal(faultId?: string): Promise<NetFault[]> {
    const rules = await this.listRules();
    const healed = new Map<string, NetFault>();
    if (faultId === undefined) {
      for (const r of rules) if (r.fault) healed.set(r.fault.id, r.fault);
      await Promise.all(this.nodes.map((n) => restore(n.netns, [`-F ${this.chains.input}`, `-F ${this.chains.output}`])));
      return [...healed.values()];
    }
    const mine = rules.filter((r) => r.fault?.id === faultId);
    if (mine.length === 0)
      throw new LabUsageError(
        `no network fault '${faultId}' in this lab (in force: ${[...new Set(rules.map((r) => r.fault?.id).filter(Boolean))].join(', ') || 'none'})`,
      );
    const byNs = new Map<string, string[]>();
    for (const r of mine) {
      const netns = this.node(r.node).netns;
      byNs.set(netns, [...(byNs.get(netns) ?? []), `-D ${r.chain} ${r.spec}`]);
      healed.set(r.fault!.id, r.fault!);
    }
    for (const [netns, lines] of byNs) await restore(netns, lines);
    return [...healed.values()];
  }
}

function groupBy(rules: Rule[]): Map<string, Rule[]> {
  const m = new Map<string, Rule[]>();
  for (const r of rules) m.set(r.netns, [...(m.get(r.netns) ?? []), r]);
  return m;
}

/** One iptables-restore per namespace: a fault's rules there go in (or out) together. */
async function restore(netns: string, lines: string[]): Promise<void> {
  await inNetns(netns, 'iptables-restore', ['-w', '5', '--noflush'], { input: ['*filter', ...lines, 'COMMIT', ''].join('\n') });
}
