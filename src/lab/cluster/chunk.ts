/**
 * The reference cluster's `chunk`: the seed's data-path service in miniature. It asks ZooKeeper
 * who leads the metas (LeaderDiscovery), and sends the leader one write at a time over a held
 * connection, each with a timeout (10 s in the seed), logging failures the way the seed's chunks
 * did:
 *
 *   W0625 05:43:50.012274  3986 zbs_client.cc:641] [Retry IO ON ERROR]: [IOCTX]: VEXTENT_WRITE seq: …
 *   Traceback:
 *   [ETimedOut]: ProtoAsyncClient meet timeout: expect timeout ms: 10000 elapsed ms: 10098 socket: A-->B
 *
 * After `chunkSessionExpireMs` without an answer it goes to "Session expired" and stops serving
 * (it keeps trying, so it serves again once a leader answers). Every write the leader
 * acknowledged is reported to the runner (`ack`) for the lost-write check. Before each write it
 * appends the extent to its own disk, as a data-path service does: a chunk whose disk hangs stops.
 * With `witness` it publishes a suspicion of a leader that does not answer (the guard's
 * deposition) and withdraws it when a leader answers.
 */
import { mkdirSync, openSync, write } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SuspicionWitness } from '../../guard/index.ts';
import { DEFAULT_ELECTION_PATH, LeaderDiscovery, type LeaderInfo } from '../../recipes/index.ts';
import { LOG_FILES, configFromEnv, type ChunkConfig } from './config.ts';
import { GlogFile } from './glog.ts';
import { openSession } from './zk-session.ts';
import { Lines, eventWriter, parseJsonLine, type MetaReply } from './wire.ts';

const cfg = configFromEnv() as ChunkConfig;
const emit = eventWriter();
const t = cfg.timings;
const hex = (n: number): string => `0x${n.toString(16)}`;
mkdirSync(cfg.dir, { recursive: true });
const log = new GlogFile(join(cfg.dir, LOG_FILES.chunk));
const extentFd = openSync(join(cfg.dir, 'extents.log'), 'a');

function appendExtent(line: string): Promise<void> {
  return new Promise((resolve, reject) => write(extentFd, line, (err) => (err ? reject(err) : resolve())));
}

type Outcome = { ok: true; epoch: number } | { ok: false; code: string; detail: string };

/** One held connection to a meta endpoint, requests matched to replies by id. */
class MetaConnection {
  readonly endpoint: string;
  private sock: Socket | null = null;
  private connecting: Promise<void> | null = null;
  private readonly pending = new Map<number, (o: Outcome) => void>();
  local = `${cfg.ip}:0`;

  constructor(endpoint: string) {
    this.endpoint = endpoint;
  }

  /** Sends a write; resolves with the reply, or a failure (timeout, refused, reset, leader changed). */
  request(id: number, key: string, timeoutMs: number, abort: AbortSignal): Promise<Outcome> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        abort.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        resolve(o);
      };
      const started = performance.now();
      const timer = setTimeout(() => {
        finish({
          ok: false,
          code: 'ETimedOut',
          detail: `ProtoAsyncClient meet timeout: expect timeout ms: ${timeoutMs} elapsed ms: ${Math.round(performance.now() - started)}`,
        });
      }, timeoutMs);
      const onAbort = (): void =>
        finish({
          ok: false,
          code: 'ELeaderChanged',
          detail: `ProtoAsyncClient request abandoned: the meta leader changed, elapsed ms: ${Math.round(performance.now() - started)}`,
        });
      abort.addEventListener('abort', onAbort);
      this.pending.set(id, finish);
      this.open()
        .then(() => this.sock?.write(`${JSON.stringify({ id, op: 'write', key })}\n`))
        .catch((e: NodeJS.ErrnoException) =>
          finish({
            ok: false,
            code: e.code === 'ECONNREFUSED' ? 'EConnRefused' : 'ESocket',
            detail: `ProtoAsyncClient connect failed: ${e.code ?? e.message}`,
          }),
        );
    });
  }

  private open(): Promise<void> {
    if (this.sock && !this.sock.destroyed && !this.connecting) return Promise.resolve();
    if (this.connecting) return this.connecting;
    const [host, port] = this.endpoint.split(':') as [string, string];
    this.connecting = new Promise<void>((resolve, reject) => {
      const s = connect({ host, port: Number(port), localAddress: cfg.ip });
      this.sock = s;
      const lines = new Lines((line) => {
        const r = parseJsonLine<MetaReply>(line);
        if (!r) return;
        const f = this.pending.get(r.id);
        if (!f) return;
        f(
          r.ok && typeof r.epoch === 'number'
            ? { ok: true, epoch: r.epoch }
            : { ok: false, code: r.error ?? 'EUnknown', detail: `meta answered ${r.error ?? 'an error'}` },
        );
      });
      s.on('connect', () => {
        this.local = `${s.localAddress}:${s.localPort}`;
        this.connecting = null;
        resolve();
      });
      s.on('data', (d: Buffer) => lines.push(d));
      s.on('error', (e) => {
        this.connecting = null;
        reject(e);
      });
      s.on('close', () => {
        this.connecting = null;
        for (const f of [...this.pending.values()]) f({ ok: false, code: 'EConnReset', detail: 'ProtoAsyncClient connection closed by peer' });
      });
    });
    return this.connecting;
  }

  close(): void {
    this.sock?.destroy();
  }
}

let leader: LeaderInfo | null = null;
let leaderChanged = new AbortController();
let witness: SuspicionWitness | null = null;
const currentWitness = (): SuspicionWitness | null => witness;
let highestEpoch = 0;

/**
 * A ZooKeeper session and the leader discovery on it. A session that expires (a ZooKeeper outage
 * longer than its timeout) is replaced, as a real client library does; the highest epoch seen
 * carries over, so the new discovery never goes back to an older leader.
 */
async function follow(): Promise<void> {
  const zk = await openSession(cfg.connectString, t.clientSessionTimeoutMs, (e) =>
    log.warn('chunk_zk.cc:41', `cannot connect to ZooKeeper ${cfg.connectString}: ${e.message}`),
  );
  const discovery = new LeaderDiscovery(zk, { minEpoch: highestEpoch });
  zk.on('expired', () => {
    log.warn('chunk_zk.cc:77', 'ZooKeeper session expired; starting a new one');
    discovery.stop();
    witness = null;
    void follow();
  });
  witness = cfg.witness ? new SuspicionWitness(zk, { node: cfg.node, electionPath: DEFAULT_ELECTION_PATH, requestTimeoutMs: t.chunkTimeoutMs }) : null;
  discovery.on('change', (l) => {
    leader = l;
    if (l) highestEpoch = Math.max(highestEpoch, l.epoch);
    leaderChanged.abort();
    leaderChanged = new AbortController();
    log.info('chunk_meta.cc:120', l ? `meta leader is ${l.endpoint} (epoch ${hex(l.epoch)}${l.claimed ? '' : ', not claimed yet'})` : 'no meta leader');
    emit({ ev: 'leader', endpoint: l?.endpoint ?? null, epoch: l?.epoch ?? null });
  });
  discovery.on('warning', (e) => log.warn('chunk_meta.cc:131', `discovery: ${e.message}`));
  await discovery.start();
}

await follow();

log.info('chunk_server.cc:44', `zbs-chunkd starting (pid ${process.pid}) on ${cfg.ip}; ZooKeeper ${cfg.connectString}`);
emit({ ev: 'hello', pid: process.pid, service: 'chunk', node: cfg.node });
emit({ ev: 'ready' });

const connections = new Map<string, MetaConnection>();
function connectionTo(endpoint: string): MetaConnection {
  let c = connections.get(endpoint);
  if (!c) {
    for (const [ep, other] of connections) {
      other.close();
      connections.delete(ep);
    }
    c = new MetaConnection(endpoint);
    connections.set(endpoint, c);
  }
  return c;
}

type State = 'serving' | 'retrying' | 'expired';
let state = 'retrying' as State;
let lastAnswer = performance.now();
let lastOkLog = 0;
let okSinceLog = 0;
let logNextOk = true;
let seq = 0;

function setState(s: State): void {
  if (s === state) return;
  state = s;
  emit({ ev: 'state', state: s });
}

for (;;) {
  const l = leader as LeaderInfo | null;
  if (!l || !l.claimed) {
    await sleep(t.chunkIntervalMs);
    continue;
  }
  seq++;
  const key = `${cfg.node}-${String(seq).padStart(7, '0')}`;
  try {
    await appendExtent(`${Date.now()} ${key}\n`);
  } catch (e) {
    log.error('chunk_extent.cc:210', `extent write failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const conn = connectionTo(l.endpoint);
  const started = performance.now();
  const outcome = await conn.request(seq, key, t.chunkTimeoutMs, leaderChanged.signal);
  const ms = Math.round(performance.now() - started);
  const at = Date.now();
  if (outcome.ok) {
    lastAnswer = performance.now();
    emit({ ev: 'ack', key, epoch: outcome.epoch, endpoint: l.endpoint });
    emit({ ev: 'request', key, ok: true, endpoint: l.endpoint, epoch: outcome.epoch, ms });
    okSinceLog++;
    if (logNextOk || at - lastOkLog >= 1000) {
      log.info(
        'zbs_client.cc:612',
        `VEXTENT_WRITE ok seq: ${seq}, ${okSinceLog} served since the last line, epoch ${hex(outcome.epoch)} (${ms} ms) socket: ${conn.local}-->${l.endpoint}`,
      );
      lastOkLog = at;
      okSinceLog = 0;
      logNextOk = false;
    }
    if (state === 'expired') log.info('chunk_session.cc:95', `session with meta leader ${l.endpoint} re-established`);
    setState('serving');
    const w = currentWitness();
    if (w && w.suspecting !== null) {
      void w.clear().then(
        () => emit({ ev: 'suspect', epoch: null }),
        () => undefined,
      );
    }
  } else {
    emit({ ev: 'request', key, ok: false, endpoint: l.endpoint, ms, error: outcome.code });
    logNextOk = true;
    log.warn(
      'zbs_client.cc:641',
      `[Retry IO ON ERROR]: [IOCTX]: VEXTENT_WRITE seq: ${seq}, key: ${key}, in_progress: 1, retry_times: 0 st:\nTraceback:\n[${outcome.code}]: ${outcome.detail} socket: ${conn.local}-->${l.endpoint}`,
    );
    const unreachable = outcome.code === 'ETimedOut' || outcome.code === 'EConnRefused' || outcome.code === 'EConnReset' || outcome.code === 'ESocket';
    const w = currentWitness();
    if (w && unreachable && l.epoch !== w.suspecting) {
      const epoch = l.epoch;
      void w.suspect(epoch, outcome.code).then(
        () => emit({ ev: 'suspect', epoch }),
        () => undefined,
      );
    }
    if (state !== 'expired' && performance.now() - lastAnswer >= t.chunkSessionExpireMs) {
      log.warn(
        'chunk_session.cc:88',
        `[Session expired]: no answer from meta leader ${l.endpoint} for ${Math.round(performance.now() - lastAnswer)} ms; stop serving I/O`,
      );
      setState('expired');
    } else if (state === 'serving') setState('retrying');
  }
  await sleep(t.chunkIntervalMs);
}
