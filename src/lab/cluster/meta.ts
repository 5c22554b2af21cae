/**
 * The reference cluster's `meta`: the seed's metadata service in miniature, one OS process per
 * node, started by the lab inside its node (namespace, cgroup) with its files on the node's disk.
 *
 * - It registers as a member (`/zbs/meta/__mj_cluster/IP:10100`) and joins the election
 *   (src/recipes); as leader it serves the chunks' writes on `IP:10100`.
 * - A write is accepted the way a real metadata service accepts a state change: appended to the
 *   meta's data file on its own disk — **on the request path**, so a hung disk hangs the requests
 *   — then journalled in ZooKeeper by a fenced multi (check of the leader's election znode +
 *   create of `/zbs/meta/journal/<key>`), then acknowledged with the term's epoch.
 * - The fence is the term the request was accepted in, kept with the request: a leader deposed
 *   while its request hung on the disk sends the journal write, late, *through ZooKeeper*, whose
 *   `check` refuses it (FencedError znodeGone), on whatever session the meta holds by then.
 * - Its ZooKeeper client runs on the main thread and never touches the disk ('async' data
 *   writes), so a hung disk leaves its session alive — the seed's dead leader. With 'sync' data
 *   writes the main thread itself blocks in the write, heartbeats too (a wholly wedged process).
 * - Without the guard a session that expires is followed by a new candidacy (a new session), as a
 *   real service restarts its client. With the guard (`guard` set) the Guard owns the candidacy's
 *   sessions (health gate, watchdog channel from `zkwarden guard run`, deposition) and a separate
 *   service session holds the membership.
 * - A data file that fails (EIO) stops the meta (fail-stop: a service must not go on after its
 *   disk lost writes).
 */
import { mkdirSync, openSync, write, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Guard, diskProbe, endpointProbe } from '../../guard/index.ts';
import { Election, FencedError, MemberExistsError, fencedMulti, registerMember, type Term } from '../../recipes/index.ts';
import type { ZooKeeperClient } from '../../zk/index.ts';
import { LOG_FILES, PATHS, configFromEnv, type MetaConfig } from './config.ts';
import { GlogFile } from './glog.ts';
import { openSession } from './zk-session.ts';
import { Lines, eventWriter, parseJsonLine, type MetaReply, type MetaRequest } from './wire.ts';

const cfg = configFromEnv() as MetaConfig;
const emit = eventWriter();
const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
mkdirSync(join(cfg.dir, 'data'), { recursive: true });
const log = new GlogFile(join(cfg.dir, LOG_FILES.meta));
const dataFd = openSync(join(cfg.dir, 'data', 'meta.db'), 'a');
const endpoint = `${cfg.ip}:${cfg.port}`;
const timeoutMs = cfg.timings.sessionTimeoutMs;

function fatal(message: string): never {
  log.error('meta_server.cc:97', `${message}; exiting`);
  log.flushSync();
  emit({ ev: 'fatal', message });
  process.exit(1);
}

/** Appends one record to the data file: on the pool (the request waits, the process runs on) or on the main thread. */
function appendData(line: string): Promise<void> {
  const buf = Buffer.from(line);
  if (cfg.dataWrites === 'sync') {
    writeSync(dataFd, buf);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => write(dataFd, buf, (err) => (err ? reject(err) : resolve())));
}

// ---------------------------------------------------------------------------------------------
// Leadership: the recipes alone, or the Guard.

/** The term a write is accepted in now (null: not leading), the session to send ZooKeeper writes on. */
let currentTerm: () => Term | null = () => null;
let currentClient: () => ZooKeeperClient | null = () => null;

function onElected({ term, resumed }: { term: Term; resumed: boolean }): void {
  log.info('meta_election.cc:211', `became leader epoch ${hex(term.epoch)} (${term.znode})${resumed ? ' (resumed after reconnect)' : ''}`);
  emit({ ev: 'elected', epoch: term.epoch, znode: term.znode, resumed });
}

function onDeposed({ term, reason }: { term: Term; reason: string }): void {
  log.warn('meta_election.cc:233', `no longer leader of epoch ${hex(term.epoch)}: ${reason}`);
  emit({ ev: 'deposed', epoch: term.epoch, reason });
}

/**
 * Registers this meta as a member. After a crash or a reboot the previous incarnation's member
 * znode stays until its session ends (a session timeout later): retried until then, in the
 * background, while the meta already stands in the election.
 */
async function register(client: ZooKeeperClient): Promise<void> {
  let logged = false;
  for (;;) {
    try {
      await registerMember(client, endpoint, { role: 'meta', node: cfg.node });
      if (logged) log.info('meta_members.cc:52', `registered as member ${PATHS.members}/${endpoint}`);
      return;
    } catch (e) {
      if (client.state === 'expired' || client.state === 'closed') return;
      if (!logged) {
        log.warn(
          'meta_members.cc:47',
          `member ${PATHS.members}/${endpoint}: ${(e as Error).message}; retrying${e instanceof MemberExistsError ? ' until that session ends' : ''}`,
        );
        logged = true;
      }
      await sleep(500);
    }
  }
}

const zkFailure = (e: Error): void => log.warn('meta_zk.cc:64', `cannot connect to ZooKeeper ${cfg.connectString}: ${e.message}`);

/** Without the guard: one session for membership and candidacy; a new one when it expires. */
async function candidacy(): Promise<void> {
  const client = await openSession(cfg.connectString, timeoutMs, zkFailure);
  const session = hex(client.sessionId);
  // The runner's explicit remedy (an operator ending the session from outside) needs these; they
  // go only to the runner's pipe, never to a log.
  emit({ ev: 'session', id: client.sessionId.toString(16), password: client.sessionPassword.toString('hex') });
  const election = new Election(client, { candidate: { endpoint, name: cfg.node, metadata: { node: cfg.node, role: 'meta' } } });
  election.on('elected', onElected);
  election.on('deposed', onDeposed);
  election.on('warning', (e) => log.warn('meta_election.cc:250', `election: ${e.message}`));
  client.on('expired', () => {
    log.warn('meta_zk.cc:88', `ZooKeeper session ${session} expired; starting a new session`);
    void candidacy();
  });
  currentTerm = () => election.term;
  currentClient = () => client;
  void register(client);
  try {
    await election.join();
  } catch (e) {
    log.warn('meta_election.cc:260', `joining the election with session ${session} failed: ${(e as Error).message}`);
    return;
  }
  log.info('meta_election.cc:190', `joined election as ${election.znodePath} session ${session}`);
}

/** With the guard: the Guard stands, resigns and stands again; a service session holds the membership. */
async function guarded(g: NonNullable<MetaConfig['guard']>): Promise<void> {
  const service = await openSession(cfg.connectString, cfg.timings.clientSessionTimeoutMs, zkFailure);
  void register(service);
  const guard = new Guard({
    connectString: cfg.connectString,
    election: { candidate: { endpoint, name: cfg.node, metadata: { node: cfg.node, role: 'meta' } } },
    client: { shuffleServers: false },
    probes: [
      diskProbe({ dir: join(cfg.dir, 'data') }),
      endpointProbe({ host: cfg.ip, port: cfg.port, send: '{"id":0,"op":"ping"}\n', expect: (r) => (r.includes('"ok":true') ? true : undefined) }),
    ],
    watchdog: g.defences.watchdog ? 'env' : null,
    deposition: g.defences.deposition ? { nodes: cfg.nodes, ...(g.deposition ?? {}) } : null,
    timing: { sessionTimeoutMs: timeoutMs, ...(g.timing ?? {}) },
    defences: { gate: g.defences.gate, deposition: g.defences.deposition },
  });
  guard.on('elected', onElected);
  guard.on('deposed', onDeposed);
  guard.on('warning', (e) => log.warn('meta_guard.cc:40', `guard: ${e.message}`));
  guard.on('decision', (d) => {
    if (d.kind === 'stood') log.info('meta_election.cc:190', `joined election as ${String(d.detail.znode)} session ${hex(guard.client.sessionId)}`);
    else if (d.kind === 'resign') log.warn('meta_guard.cc:52', `unhealthy, resigning: ${String(d.detail.failures)}`);
    else if (d.kind === 'deposition' && d.detail.deposed)
      log.warn('meta_guard.cc:61', `deposed the leader on its clients' evidence: ${JSON.stringify(d.detail)}`);
    emit({ ev: 'state', state: `guard:${d.kind}` });
  });
  currentTerm = () => guard.term;
  currentClient = () => (guard.state === 'standing' ? guard.client : service);
  await guard.start();
}

// ---------------------------------------------------------------------------------------------
// Serving.

let served = 0;

async function handle(req: MetaRequest, sock: Socket, peer: string): Promise<void> {
  const reply = (r: MetaReply): void => {
    if (!sock.destroyed) sock.write(`${JSON.stringify(r)}\n`);
  };
  if (req.op === 'ping') return reply({ id: req.id, ok: true });
  const term = currentTerm();
  if (!term) return reply({ id: req.id, ok: false, error: 'ENotLeader', leader: null });
  const key = String(req.key ?? '');
  if (!/^[\w-]{1,64}$/.test(key)) return reply({ id: req.id, ok: false, error: 'EBadRequest' });
  const started = performance.now();
  try {
    await appendData(`${Date.now()} ${hex(term.epoch)} ${key}\n`);
  } catch (e) {
    fatal(`data file write failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // The term may have ended while the request waited on the disk: the write goes on with the term
  // it was accepted in, and ZooKeeper's check decides.
  const late = currentTerm()?.epoch !== term.epoch;
  const client = currentClient();
  if (!client) return reply({ id: req.id, ok: false, error: 'ENoSession' });
  const record = JSON.stringify({ epoch: term.epoch, key, meta: cfg.node, at: Date.now() });
  try {
    await fencedMulti(client, term, [{ op: 'create', path: `${PATHS.journal}/${key}`, data: record, mode: 'persistent' }], { timeoutMs });
  } catch (e) {
    const fenced = e instanceof FencedError;
    const why = fenced ? `refused by ZooKeeper's check: ${e.message} (${e.reason})` : `failed: ${(e as Error).message}`;
    if (late || fenced) {
      log.warn('meta_rpc.cc:1131', `[VEXTENT_WRITE]: late write of epoch ${hex(term.epoch)} key ${key} ${why}`);
      emit({ ev: 'lateWrite', key, epoch: term.epoch, outcome: fenced ? 'refused' : 'failed', reason: fenced ? e.reason : (e as Error).message });
    } else {
      log.warn('meta_rpc.cc:1135', `[VEXTENT_WRITE]: journal write of key ${key} ${why}`);
    }
    return reply({ id: req.id, ok: false, error: fenced ? 'EFenced' : 'EJournal' });
  }
  const ms = Math.round(performance.now() - started);
  served++;
  if (late) {
    log.warn('meta_rpc.cc:1131', `[VEXTENT_WRITE]: late write of epoch ${hex(term.epoch)} key ${key} accepted by ZooKeeper`);
    emit({ ev: 'lateWrite', key, epoch: term.epoch, outcome: 'accepted', reason: 'the check held' });
  }
  log.info(
    'meta_rpc.cc:1115',
    `[VEXTENT_WRITE]: [REQUEST]: key: "${key}" from ${peer}, [RESPONSE]: ST:OK epoch ${hex(term.epoch)} journal ${PATHS.journal}/${key} (${ms} ms, #${served})`,
  );
  emit({ ev: 'served', op: 'write', key, epoch: term.epoch, ms });
  reply({ id: req.id, ok: true, epoch: term.epoch });
}

const server = createServer((sock) => {
  const peer = `${sock.remoteAddress}:${sock.remotePort}`;
  const lines = new Lines((line) => {
    const req = parseJsonLine<MetaRequest>(line);
    if (req && typeof req.id === 'number') void handle(req, sock, peer);
  });
  sock.on('data', (d: Buffer) => lines.push(d));
  sock.on('error', () => undefined);
});
await new Promise<void>((resolve, reject) => {
  server.once('error', (e) => reject(e));
  server.listen({ host: cfg.ip, port: cfg.port }, resolve);
}).catch((e: Error) => fatal(`cannot listen on ${endpoint}: ${e.message}`));

log.info(
  'meta_server.cc:58',
  `zbs-metad starting (pid ${process.pid}), listening on ${endpoint}; ZooKeeper ${cfg.connectString}${cfg.guard ? ' (guarded)' : ''}`,
);
emit({ ev: 'hello', pid: process.pid, service: 'meta', node: cfg.node, endpoint });
if (cfg.guard) await guarded(cfg.guard);
else await candidacy();
emit({ ev: 'ready' });
