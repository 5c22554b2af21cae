/**
 * The lab's network: one bridge per lab in the root namespace, and per node a network namespace
 * joined to it by a veth pair, with one address of the lab's /24 (198.18.0.0/15 only) and no
 * default route, so nothing a node sends can leave the machine. Each namespace has the lab's own
 * iptables chains, jumped to from INPUT and OUTPUT, which hold the lab's network faults
 * (netfaults.ts).
 *
 * Names carry the lab id: `zkw<id>br` (bridge), `zkw<id>n<k>` (veth end on the bridge),
 * `zkw-<id>-n<k>` (namespace), `zkw-<id>-in`/`-out` (chains); Linux interface names have 15
 * characters at most, hence the 8-character ids.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { LabEnvironmentError, LabError, inNetns, inNetnsSync, netnsPath, run, runSync } from './host.ts';

/** Inside every node namespace the veth end is called eth0, like a host's first interface. */
export const NODE_IFACE = 'eth0';

export interface LabNames {
  bridge: string;
  hostVeth(index: number): string;
  netns(index: number): string;
  chains: { input: string; output: string };
}

export function labNames(id: string): LabNames {
  return {
    bridge: `zkw${id}br`,
    hostVeth: (index) => `zkw${id}n${index}`,
    netns: (index) => `zkw-${id}-n${index}`,
    chains: { input: `zkw-${id}-in`, output: `zkw-${id}-out` },
  };
}

/** Every IPv4 /24 of 198.18.0.0/15 with an address on this machine's root namespace. */
export async function subnetsInUse(): Promise<Set<string>> {
  const r = await run('ip', ['-o', '-4', 'addr', 'show']);
  const out = new Set<string>();
  for (const m of r.stdout.matchAll(/inet (198\.1[89]\.\d+)\.\d+\//g)) out.add(m[1]!);
  return out;
}

function asEnvironment(capability: string, err: unknown): Error {
  const msg = (err as Error).message;
  // "Operation not permitted" / "not supported": the kernel or the container will not let us.
  if (/not permitted|not supported|Permission denied|Unknown device type|No such file|can't initialize|Protocol not available/i.test(msg)) {
    return new LabEnvironmentError(capability, msg);
  }
  return err as Error;
}

export async function createBridge(bridge: string, hostIp: string): Promise<void> {
  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  } catch (e) {
    throw asEnvironment('a Linux bridge (ip link add … type bridge)', e);
  }
  await run('ip', ['addr', 'add', `${hostIp}/24`, 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);
}

export interface NodeNetwork {
  netns: string;
  hostVeth: string;
  ip: string;
}

/** A namespace with lo and eth0 up, eth0 on the bridge with the node's address, and the lab's chains. */
export async function createNodeNetwork(n: NodeNetwork, bridge: string, chains: LabNames['chains']): Promise<void> {
  try {
    await run('ip', ['netns', 'add', n.netns]);
  } catch (e) {
    throw asEnvironment('network namespaces (ip netns add)', e);
  }
  try {
    await run('ip', ['link', 'add', n.hostVeth, 'type', 'veth', 'peer', 'name', NODE_IFACE, 'netns', n.netns]);
  } catch (e) {
    throw asEnvironment('veth pairs (ip link add … type veth)', e);
  }
  await run('ip', ['link', 'set', n.hostVeth, 'master', bridge, 'up']);
  await inNetns(n.netns, 'ip', ['link', 'set', 'lo', 'up']);
  await inNetns(n.netns, 'ip', ['addr', 'add', `${n.ip}/24`, 'dev', NODE_IFACE]);
  await inNetns(n.netns, 'ip', ['link', 'set', NODE_IFACE, 'up']);
  try {
    await inNetns(n.netns, 'iptables-restore', ['-w', '5', '--noflush'], {
      input: [
        '*filter',
        `:${chains.input} - [0:0]`,
        `:${chains.output} - [0:0]`,
        `-A INPUT -j ${chains.input}`,
        `-A OUTPUT -j ${chains.output}`,
        // Connection tracking must follow every connection from its first packet, or a one-way
        // cut injected later would take whichever side spoke first for the opener. A conntrack
        // match anywhere in the namespace turns tracking on; this one changes nothing else.
        `-A INPUT -m conntrack --ctstate NEW,ESTABLISHED,RELATED,INVALID,UNTRACKED -m comment --comment "zkw track connections" -j ACCEPT`,
        'COMMIT',
        '',
      ].join('\n'),
    });
  } catch (e) {
    throw asEnvironment('iptables in a network namespace', e);
  }
}

/** Removes a namespace (with its veth end, whose peer goes too, and its iptables rules). Idempotent. */
export async function deleteNetns(netns: string): Promise<void> {
  await run('ip', ['netns', 'del', netns], { allowFailure: true });
}

export async function deleteLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', name], { allowFailure: true });
}

export function deleteNetnsSync(netns: string): void {
  runSync('ip', ['netns', 'del', netns]);
}

export function deleteLinkSync(name: string): void {
  runSync('ip', ['link', 'del', name]);
}

export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFailure: true });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export async function listLinks(): Promise<string[]> {
  const r = await run('ip', ['-o', 'link', 'show'], { allowFailure: true });
  const out: string[] = [];
  for (const m of r.stdout.matchAll(/^\d+: ([^:@\s]+)[@:]/gm)) out.push(m[1]!);
  return out;
}

/** Pids of the processes in a namespace (any process that entered it, whatever its cgroup). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns], { allowFailure: true });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

export function netnsPidsSync(netns: string): number[] {
  return runSync('ip', ['netns', 'pids', netns]).stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Nothing listens on ip:port inside the namespace (a stopped server's port can be bound again). */
export async function portFreeIn(netns: string, ip: string, port: number): Promise<boolean> {
  // A namespace already removed holds no socket.
  if (!existsSync(netnsPath(netns))) return true;
  const r = await inNetns(netns, 'ss', ['-Hltn', 'src', `${ip}:${port}`], { allowFailure: true });
  return r.code === 0 && r.stdout.trim() === '';
}

export function chainRulesSync(netns: string, chain: string): string {
  return inNetnsSync(netns, 'iptables', ['-w', '5', '-S', chain]).stdout;
}

/**
 * The root namespace reaches a node: a TCP connection to a port nothing listens on is refused at
 * once (the node's kernel answers), which proves the bridge, the veth and the address.
 */
export async function checkReachable(ip: string, timeoutMs = 5000): Promise<void> {
  const outcome = await new Promise<string>((resolve) => {
    const sock = connect({ host: ip, port: 9 });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve('timeout');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve('connected');
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? 'error');
    });
  });
  if (outcome !== 'ECONNREFUSED' && outcome !== 'connected') {
    throw new LabError(
      `node ${ip} is not reachable from the root namespace through the lab's bridge (${outcome}); is bridged traffic dropped by the root namespace's iptables FORWARD chain?`,
    );
  }
}
