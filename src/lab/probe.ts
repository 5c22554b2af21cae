/**
 * Real TCP connections between lab nodes, to check what a network fault blocks: an echo server
 * on one node, a client on another, each a small Node program running inside its node (so its
 * packets carry the node's address and cross the node's iptables chains).
 *
 * A check waits for facts, never for time: an echo received (open), a refusal (refused), or a
 * packet counted by the lab's own DROP rules while the client is still not connected (dropped)
 * or connected and heard but not answered (deaf). Every wait is bounded.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './host.ts';
import type { Node } from './node.ts';
import type { LabProcess } from './process.ts';

const ECHO_SERVER = `
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const srv = net.createServer((s) => {
  const peer = s.remoteAddress + ':' + s.remotePort;
  say({ event: 'accepted', peer });
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      say({ event: 'line', peer, line });
      s.write(line + '\\n');
    }
  });
  s.on('error', () => {});
});
srv.on('error', (e) => { say({ event: 'error', code: e.code }); process.exit(1); });
srv.listen({ host: ip, port: Number(port) }, () => say({ event: 'listening' }));
`;

const CLIENT = `
const net = require('node:net');
const [ip, port, line] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const s = net.connect({ host: ip, port: Number(port) });
s.setEncoding('utf8');
s.on('connect', () => { say({ event: 'connected', local: s.localAddress + ':' + s.localPort }); s.write(line + '\\n'); });
s.on('data', (d) => say({ event: 'echo', data: d.trim() }));
s.on('error', (e) => say({ event: 'error', code: e.code }));
s.on('close', () => { say({ event: 'closed' }); process.exit(0); });
`;

export interface ProbeEvent {
  event: string;
  [k: string]: unknown;
}

/** A process on a node that reports JSON events on stdout. */
class Reporter {
  readonly process: LabProcess;
  readonly events: ProbeEvent[] = [];
  private wake: (() => void) | null = null;

  constructor(node: Node, script: string, args: string[]) {
    this.process = node.spawn(process.execPath, ['-e', script, ...args], { output: 'pipe' });
    const rl = createInterface({ input: this.process.child!.stdout! });
    rl.on('line', (l) => {
      try {
        this.events.push(JSON.parse(l) as ProbeEvent);
      } catch {
        this.events.push({ event: 'output', text: l });
      }
      this.wake?.();
    });
  }

  /** Resolves at the next event, or after `ms` at the latest. */
  async nextEvent(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.wake = null;
  }

  has(event: string): ProbeEvent | undefined {
    return this.events.find((e) => e.event === event);
  }

  async close(): Promise<void> {
    await this.process.kill().catch(() => undefined);
  }
}

/** An echo server listening on a node's address. */
export class EchoServer extends Reporter {
  readonly node: Node;
  readonly port: number;

  private constructor(node: Node, port: number) {
    super(node, ECHO_SERVER, [node.ip, String(port)]);
    this.node = node;
    this.port = port;
  }

  static async start(node: Node, port: number, timeoutMs = 30_000): Promise<EchoServer> {
    const s = new EchoServer(node, port);
    const deadline = Date.now() + timeoutMs;
    while (!s.has('listening')) {
      const err = s.has('error');
      if (err || s.process.hasExited || Date.now() > deadline) {
        await s.close();
        throw new LabError(
          `${node.name}: echo server on ${node.ip}:${port} did not start (${String(err?.code ?? (s.process.hasExited ? 'exited' : 'timeout'))})`,
        );
      }
      await sleep(5);
    }
    return s;
  }

  /** Peers (ip:port) it accepted connections from. */
  accepted(): string[] {
    return this.events.filter((e) => e.event === 'accepted').map((e) => String(e.peer));
  }

  received(line: string): boolean {
    return this.events.some((e) => e.event === 'line' && e.line === line);
  }
}

export type Reach = 'open' | 'refused' | 'dropped' | 'deaf';

export interface ReachResult {
  outcome: Reach;
  /** The client's own address when it connected: the source the server saw. */
  local?: string;
  /** Packets the lab's rules dropped while the check ran (any flow). */
  dropped: number;
}

let probeSeq = 0;

/**
 * The client socket's own account, from `ss -tin` in its namespace: a SYN sent again means no
 * SYN-ACK came within the retransmission timeout; data sent again means no ACK came. On a
 * bridge between namespaces of one machine either happens only when packets are dropped.
 */
async function retransmitted(from: Node, dst: string, local: string | undefined): Promise<boolean> {
  const filter = local ? ['src', local, 'dst', dst] : ['state', 'syn-sent', 'dst', dst];
  const r = await from.exec('ss', ['-tinH', ...filter], { allowFailure: true });
  for (const m of r.stdout.matchAll(/retrans:\d+\/(\d+)/g)) if (Number(m[1]) > 0) return true;
  return false;
}

/**
 * Connects from `from` to `to`:`port` and says what happened; an EchoServer must listen there
 * (the check sends a line and waits for its echo). 'dropped' and 'deaf' need two facts: the
 * client's socket retransmitted (this flow was not answered), and the lab's DROP rules counted
 * packets meanwhile (the lab's rules did it). `droppedNow` reads those counters.
 */
export async function checkReach(
  from: Node,
  to: Node,
  port: number,
  droppedNow: () => Promise<number>,
  server: EchoServer,
  timeoutMs = 20_000,
): Promise<ReachResult> {
  const line = `probe-${process.pid}-${++probeSeq}`;
  const dst = `${to.ip}:${port}`;
  const before = await droppedNow();
  const client = new Reporter(from, CLIENT, [to.ip, String(port), line]);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const connected = client.has('connected');
      const local = connected ? String(connected.local) : undefined;
      if (client.has('echo')) return { outcome: 'open', local, dropped: (await droppedNow()) - before };
      const err = client.has('error');
      if (err?.code === 'ECONNREFUSED') return { outcome: 'refused', dropped: (await droppedNow()) - before };
      if (err) throw new LabError(`${from.name} → ${to.name}:${port}: connection failed with ${String(err.code)}`);
      if (!connected || server.received(line)) {
        const unanswered = await retransmitted(from, dst, local);
        const dropped = unanswered ? (await droppedNow()) - before : 0;
        // Re-read after the slow reads: an echo or a connection that arrived meanwhile wins.
        if (unanswered && dropped > 0 && !client.has('echo')) {
          if (!connected && !client.has('connected')) return { outcome: 'dropped', dropped };
          if (connected) return { outcome: 'deaf', local, dropped };
        }
      }
      if (Date.now() > deadline) {
        throw new LabError(
          `${from.name} → ${to.name}:${port}: no answer, no refusal and no drop by the lab's rules within ${timeoutMs} ms (events: ${client.events.map((e) => e.event).join(', ') || 'none'})`,
        );
      }
      // The client's events wake us at once; the socket's state is looked at every 100 ms (a
      // retransmission takes 200 ms at the least).
      await client.nextEvent(100);
    }
  } finally {
    await client.close();
  }
}
