/**
 * zkwarden over TLS against zkwarden over plain TCP, in one run, on one server: the same follower
 * of a 3-server ensemble serves both its plain clientPort and its secureClientPort (both through
 * the Netty connection factory, which TLS needs), so the only difference is the TLS layer, on the
 * client (Node's OpenSSL) and on the server (the JDK's TLS under Netty).
 *
 * Requests: for each op and level of outstanding requests, the two clients take turns in slices
 * (the order alternating round by round), so load changes on the machine hit both alike; ops/s,
 * latency percentiles, this process's CPU per request in its own slices, and the three servers'
 * CPU per request. Round by round, the TLS ÷ plain throughput ratio with a bootstrap interval
 * (bench/client/stats.ts). Connects: the time to a session (TCP, TLS handshake, session
 * handshake, and SASL DIGEST-MD5 for the third kind), which is what every reconnect pays.
 *
 *   npm run bench:tls -- [--ops 6000] [--concurrency 1,64] [--rounds 12] [--connects 40] [--no-write]
 *
 * Results go to stdout and, unless --no-write, to docs/benchmarks.md under "## TLS".
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SecureLab } from '../../src/lab/secure.ts';
import type { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ClientOptions, type ZooKeeperClient } from '../../src/zk/index.ts';
import { writeBenchSection } from '../docs-section.ts';
import { medianOf, pairedRatio, percentile } from '../client/stats.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HEADING = '## TLS';
const DATA = Buffer.alloc(128, 0x61);

class UsageError extends Error {}

type Transport = 'plain' | 'TLS';
type Op = 'getData' | 'setData';
const OPS: Op[] = ['getData', 'setData'];

interface Slice {
  opsPerSec: number;
  lats: number[];
  clientCpuUs: number;
  serverCpuUs: number;
  requests: number;
}

function intList(name: string, text: string, min: number, max: number): number[] {
  const out = text.split(',').map((t) => Number(t.trim()));
  if (out.length === 0 || out.some((v) => !Number.isInteger(v) || v < min || v > max))
    throw new UsageError(`--${name}: expected integers from ${min} to ${max}, comma separated, got ${text}`);
  return out;
}

/** utime + stime of a process, in microseconds (clock ticks of 10 ms). */
function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function serversCpuUs(ens: Ensemble): number {
  return ens.servers.reduce((sum, s) => sum + processCpuUs(ens.pid(s.id)!), 0);
}

async function slice(ens: Ensemble, c: ZooKeeperClient, op: Op, requests: number, outstanding: number, paths: string[]): Promise<Slice> {
  const lats: number[] = [];
  let next = 0;
  const s0 = serversCpuUs(ens);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: outstanding }, async () => {
      for (let i = next++; i < requests; i = next++) {
        const path = paths[i % paths.length]!;
        const t = performance.now();
        if (op === 'getData') await c.getData(path);
        else await c.setData(path, DATA);
        lats.push(performance.now() - t);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return {
    opsPerSec: (requests / ms) * 1000,
    lats,
    clientCpuUs: (cpu.user + cpu.system) / requests,
    serverCpuUs: (serversCpuUs(ens) - s0) / requests,
    requests,
  };
}

const fmt = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ops: { type: 'string', default: '6000' },
        concurrency: { type: 'string', default: '1,64' },
        rounds: { type: 'string', default: '12' },
        connects: { type: 'string', default: '40' },
        'no-write': { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  const [ops] = intList('ops', values.ops, 10, 10_000_000);
  const levels = intList('concurrency', values.concurrency, 1, 1024);
  const [rounds] = intList('rounds', values.rounds, 1, 10_000);
  const [connects] = intList('connects', values.connects, 1, 10_000);
  const perSlice = Math.max(1, Math.floor(ops! / rounds!));
  const load0 = loadavg()[0]!;

  const lab = SecureLab.create({ tls: true, saslUsers: ['bench'], clientCertificates: ['bench'], enforce: [] });
  const ens = await lab.startEnsemble({ size: 3, tickTime: 2000, fastStartup: false, snapCount: 10_000_000, extraConfig: { forceSync: 'no' } });
  const clients: ZooKeeperClient[] = [];
  try {
    const follower = ens.server((await ens.followerIds())[0]!);
    const tls = lab.clientTls('bench');
    const address: Record<Transport, string> = { plain: `${follower.host}:${follower.clientPort}`, TLS: `${follower.host}:${lab.tlsPort}` };
    const open = async (t: Transport, extra: ClientOptions = {}): Promise<ZooKeeperClient> => {
      const c = createClient(address[t], { sessionTimeoutMs: 30_000, requestTimeoutMs: 30_000, ...(t === 'TLS' ? { tls } : {}), ...extra });
      await c.connect({ timeoutMs: 30_000 });
      return c;
    };
    const byTransport: Record<Transport, ZooKeeperClient> = { plain: await open('plain'), TLS: await open('TLS') };
    clients.push(byTransport.plain, byTransport.TLS);
    const paths = Array.from({ length: 64 }, (_, i) => `/bench-tls-${i}`);
    for (const p of paths) await byTransport.plain.create(p, DATA);
    // Warm both paths (JIT on both sides, TLS session state) before anything is counted.
    for (const t of ['plain', 'TLS'] as const) for (const op of OPS) await slice(ens, byTransport[t], op, 2000, 16, paths);

    const rows: string[] = [];
    const ratios: string[] = [];
    const cpuRatio: { client: number; servers: number }[] = [];
    let maxLatency = 0;
    for (const op of OPS) {
      for (const outstanding of levels) {
        const got: Record<Transport, Slice[]> = { plain: [], TLS: [] };
        for (let r = 0; r < rounds!; r++) {
          const order: Transport[] = r % 2 === 0 ? ['plain', 'TLS'] : ['TLS', 'plain'];
          for (const t of order) got[t].push(await slice(ens, byTransport[t], op, perSlice, outstanding, paths));
        }
        const cpu = (t: Transport, k: 'clientCpuUs' | 'serverCpuUs'): number => medianOf(got[t].map((x) => x[k]));
        cpuRatio.push({ client: cpu('TLS', 'clientCpuUs') / cpu('plain', 'clientCpuUs'), servers: cpu('TLS', 'serverCpuUs') / cpu('plain', 'serverCpuUs') });
        for (const t of ['plain', 'TLS'] as const) {
          const s = got[t];
          const lats = Float64Array.from(s.flatMap((x) => x.lats)).sort();
          maxLatency = Math.max(maxLatency, lats[lats.length - 1] ?? 0);
          rows.push(
            `| ${op} | ${outstanding} | ${t} | ${fmt(medianOf(s.map((x) => x.opsPerSec)))} | ${fmt(percentile(lats, 0.5), 2)} | ${fmt(percentile(lats, 0.99), 2)} | ${fmt(lats[lats.length - 1] ?? NaN, 1)} | ${fmt(medianOf(s.map((x) => x.clientCpuUs)), 1)} | ${fmt(medianOf(s.map((x) => x.serverCpuUs)))} |`,
          );
        }
        const ratio = pairedRatio([got.TLS.map((x) => x.opsPerSec)], [got.plain.map((x) => x.opsPerSec)]);
        ratios.push(`| ${op} | ${outstanding} | ${ratio.median.toFixed(3)} | ${ratio.low.toFixed(3)}–${ratio.high.toFixed(3)} | ${ratio.rounds} |`);
        process.stderr.write(`bench:tls: ${op} at ${outstanding} outstanding done\n`);
      }
    }

    // Connects: a new session each time, in turn, closed right after.
    const kinds: { name: string; transport: Transport; extra: ClientOptions }[] = [
      { name: 'plain', transport: 'plain', extra: {} },
      { name: 'TLS (client certificate)', transport: 'TLS', extra: {} },
      { name: 'TLS + SASL DIGEST-MD5', transport: 'TLS', extra: { sasl: lab.saslCredentials('bench') } },
    ];
    const connectMs: number[][] = kinds.map(() => []);
    for (let i = 0; i < connects!; i++) {
      for (let k = 0; k < kinds.length; k++) {
        const kind = kinds[(k + i) % kinds.length]!;
        const t = performance.now();
        const c = await open(kind.transport, kind.extra);
        connectMs[kinds.indexOf(kind)]!.push(performance.now() - t);
        await c.close();
      }
    }
    const connectRows = kinds.map((k, i) => {
      const v = Float64Array.from(connectMs[i]!).sort();
      return `| ${k.name} | ${fmt(percentile(v, 0.5), 2)} | ${fmt(percentile(v, 0.9), 2)} | ${v.length} |`;
    });

    const load1 = loadavg()[0]!;
    const date = new Date().toISOString().slice(0, 10);
    const command = `npm run bench:tls -- --ops ${values.ops} --concurrency ${values.concurrency} --rounds ${values.rounds} --connects ${values.connects}`;
    const section = [
      HEADING,
      '',
      `\`${command}\` (bench/tls/run.ts), ${date}.`,
      '',
      `zkwarden over TLS against zkwarden over plain TCP, in one run, on one follower of a 3-server ensemble (ZooKeeper 3.8.0 with the Netty connection factory on both its plain clientPort and its secureClientPort, TLSv1.2 with ECDSA P-256 certificates and a client certificate, tickTime 2000, full JIT, forceSync=no). Per op and outstanding level, ${fmt(ops!)} requests per client in ${rounds} slices of ${fmt(perSlice)}, the two clients alternating which goes first; 128-byte values over 64 znodes. ops/s = a slice's requests / its wall time, median over slices (one stalled request, see below, does not decide it; max ms shows it); client CPU = this process's CPU time per request in its own slices (median over slices); servers CPU = the three JVMs' CPU time per request in those slices (10 ms ticks). Machine: 2 cores, Node ${process.version}; clients and servers share the cores (1-minute load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end).`,
      '',
      '| op | outstanding | transport | ops/s | p50 ms | p99 ms | max ms | client CPU µs/op | servers CPU µs/op |',
      '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      ...(maxLatency > 5000
        ? [
            `The largest latency, ${fmt(maxLatency / 1000, 1)} s, is a reply that came only after the client's next packet, its ping (a third of the session timeout later). On this busy machine that happens about once a minute of requests through a follower, on either transport, with the NIO and the Netty factory alike, and (plain writes) with node-zookeeper-client too: it is not TLS's, nor zkwarden's alone.`,
            '',
          ]
        : []),
      `What TLS costs here is CPU: per request, ${fmt(Math.min(...cpuRatio.map((r) => r.client)), 2)}–${fmt(Math.max(...cpuRatio.map((r) => r.client)), 2)} × plain in this process and ${fmt(Math.min(...cpuRatio.map((r) => r.servers)), 2)}–${fmt(Math.max(...cpuRatio.map((r) => r.servers)), 2)} × in the servers; on two shared cores that CPU is throughput. A session costs a TLS handshake with the JDK (the p50s below); SASL adds its two round trips.`,
      '',
      'Round by round (each round both clients ran one slice moments apart): TLS ÷ plain throughput, median of the rounds with a bootstrap 95 % interval; an interval holding 1.000 means this run does not tell them apart.',
      '',
      '| op | outstanding | TLS ÷ plain, per round: median | 95 % interval | rounds |',
      '| --- | ---: | ---: | --- | ---: |',
      ...ratios,
      '',
      `Time to a session (connect() until the session is usable, then closed; ${connects} of each, interleaved), against the same follower:`,
      '',
      '| connection | p50 ms | p90 ms | connects |',
      '| --- | ---: | ---: | ---: |',
      ...connectRows,
      '',
    ].join('\n');
    process.stdout.write(section);
    if (!values['no-write']) writeBenchSection(join(root, 'docs', 'benchmarks.md'), HEADING, section);
  } finally {
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 2000 }).catch(() => undefined)));
    await ens.close();
    lab.close();
  }
}

main().catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`bench:tls: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`bench:tls: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
