// The out-of-process watchdog (`zkwarden guard run`) against a real 3-server ensemble, the
// other defences off where it matters:
// - a service in bash speaks the line protocol over the inherited socket; its session is held
//   alive elsewhere (as the seed's meta's was); when it reports ill past the deadline, the
//   watchdog ends the session from outside, confirms the znode gone, kills it; its outputs and
//   /proc never show the credentials;
// - a guarded Node service: a 1 s SIGSTOP fails nothing over; a longer one does (the session is
//   ended by the watchdog, before ZooKeeper would expire it); so does a main thread blocked for
//   good with its in-process gate on (it cannot run);
// - what a session id exposes: ZooKeeper derives the password from it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { Election, readLeader } from '../../src/recipes/index.ts';
import { DEFAULT_TIMING } from '../../src/guard/index.ts';
import { CLI, Proc, guardRun, nextElected, serviceArgs, serviceHost, until, watchdogStatus } from './helpers.ts';

let ens: Ensemble;
const clients: ZooKeeperClient[] = [];
const procs: Proc[] = [];
const dirs: string[] = [];
const BASH_SERVICE = join(import.meta.dirname, 'fixtures', 'bash-service.sh');
/** Names unique to this run: control sockets are abstract and machine-wide (per network namespace). */
const tag = `${process.pid}`;

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250 });
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => undefined);
  await ens?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function client(sessionTimeoutMs = 4000): Promise<ZooKeeperClient> {
  const c = createClient(ens.connectString, { sessionTimeoutMs });
  clients.push(c);
  await c.connect();
  return c;
}

/** The fixture service under `zkwarden guard run`, leading; and a second candidate in this process. */
async function guardedLeader(path: string, name: string, n: number): Promise<{ svc: Proc; pid: number; e2: Election }> {
  const host = serviceHost(ens.server(1).host, n);
  const svc = guardRun(
    ['--servers', ens.connectString, '--path', path, '--name', name],
    [process.execPath, ...serviceArgs({ connectString: ens.connectString, path, name: 'node1', node: 'node1', host, port: 10100, watchdog: 'env' })],
  );
  procs.push(svc);
  const ready = await svc.line('the service to lead', (l) => l.ev === 'ready', 60_000);
  assert.equal(ready.leader, true);
  const e2 = new Election(await client(), { path, candidate: { endpoint: 'node2:10100', name: 'node2' } });
  await e2.join();
  return { svc, pid: ready.pid as number, e2 };
}

/** ZooKeeper 3.8's ZooKeeperServer.generatePasswd: java.util.Random(id ^ 0xB3415C00).nextBytes(16). */
function zookeeperPassword(sessionId: bigint): Buffer {
  const mask = (1n << 48n) - 1n;
  let seed = (BigInt.asUintN(64, sessionId ^ 0xb3415c00n) ^ 0x5deece66dn) & mask;
  const next32 = (): number => {
    seed = (seed * 0x5deece66dn + 0xbn) & mask;
    return Number(BigInt.asIntN(32, seed >> 16n));
  };
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16;) {
    let rnd = next32();
    for (let n = Math.min(16 - i, 4); n-- > 0; rnd >>= 8) out[i++] = rnd & 0xff;
  }
  return out;
}

/** Every spelling of a session's credentials that could leak. */
function spellings(sessionId: bigint, password: Buffer): string[] {
  const u = BigInt.asUintN(64, sessionId);
  return [u.toString(16), u.toString(16).padStart(16, '0'), u.toString(10), password.toString('hex'), password.toString('base64')];
}

function procText(pid: number): string {
  const read = (f: string): string => {
    try {
      return readFileSync(`/proc/${pid}/${f}`).toString('latin1');
    } catch {
      return '';
    }
  };
  return read('cmdline') + '\n' + read('environ');
}

describe('watchdog', () => {
  it('a bash service over the inherited socket: ill past the deadline while its session lives elsewhere → session ended from outside, znode gone, killed; credentials never shown', async (t) => {
    const path = '/w1/__mj_j';
    const name = `bash-${tag}`;
    const holder = await client();
    const e1 = new Election(holder, { path, candidate: { endpoint: 'bash:10100', name: 'bash' } });
    await e1.join();
    assert.equal(e1.isLeader(), true);
    const e2 = new Election(await client(), { path, candidate: { endpoint: 'node2:10100', name: 'node2' } });
    await e2.join();

    const dir = mkdtempSync(join(tmpdir(), 'zkw-wd-'));
    dirs.push(dir);
    const logFile = join(dir, 'watchdog.log');
    const wd = guardRun(['--servers', ens.connectString, '--path', path, '--name', name, '--log', logFile], ['bash', BASH_SERVICE]);
    procs.push(wd);
    const secrets = spellings(holder.sessionId, holder.sessionPassword);
    wd.send(`${secrets[1]} ${secrets[3]}`);
    await wd.line('the watchdog to acknowledge the session', (l) => l.raw === 'ack: OK SESSION', 30_000);
    const control = `@zkwarden-guard/${name}`;
    await until('the watchdog to count beats', async () => (await watchdogStatus(control)).beats >= 3, 10_000);
    const s0 = await watchdogStatus(control);
    assert.equal(s0.state, 'watching');
    assert.deepEqual(s0.session, { registered: true, label: '#1' });
    assert.equal(s0.serviceState, 'candidate');
    assert.equal(s0.healthy, true);
    const procWhileWatching = procText(wd.pid);
    // `zkwarden guard status`, human and JSON, from another process.
    const human = new Proc(process.execPath, ['--import', 'tsx', CLI, 'guard', 'status', '--name', name]);
    assert.equal((await human.exited).code, 0, human.stderr.join('\n'));
    const text = human.lines.map((l) => String(l.raw)).join('\n');
    assert.match(text, new RegExp(`^watchdog ${name}: watching \\(deadline 2000 ms\\)`));
    assert.match(text, /session {6}registered \(#1\), candidate/);
    const json = new Proc(process.execPath, ['--import', 'tsx', CLI, 'guard', 'status', '--name', name, '--json']);
    assert.equal((await json.exited).code, 0);
    const parsed = JSON.parse(json.lines.map((l) => (typeof l.raw === 'string' ? l.raw : JSON.stringify(l))).join('\n')) as { session: unknown; state: string };
    assert.deepEqual(parsed.session, { registered: true, label: '#1' });
    const statusOutputs = text + JSON.stringify(parsed);

    // The service says it cannot work; its session stays alive (the holder keeps pinging).
    const elected = nextElected(e2);
    const illAt = performance.now();
    wd.send('ill disk /data: fsync no answer');
    const { term } = await elected;
    t.diagnostic(`ill beats → successor elected: ${(performance.now() - illAt).toFixed(0)} ms (deadline ${DEFAULT_TIMING.watchdogDeadlineMs} ms)`);
    await until('the holder to learn its session was ended', () => holder.state === 'expired', 20_000);
    assert.equal(e1.state, 'lost');
    assert.ok(term.epoch > 0);
    const end = await wd.exited;
    assert.equal(end.code, 1, `guard run exits 1 after an intervention: ${wd.stderr.join('\n')}`);
    const log = readFileSync(logFile, 'utf8');
    for (const want of [
      /watchdog\.intervene reason=ill illMs=\d+ illReason="disk \/data: fsync no answer"/,
      /watchdog\.sessionEnded session=#1 outcome=closed/,
      /watchdog\.znodeGone session=#1/,
      /watchdog\.kill pid=\d+ signal=SIGKILL/,
      /watchdog\.exited pid=\d+ code=null signal=SIGKILL/,
    ]) {
      assert.match(log, want);
    }
    // Nothing it wrote, printed or was started with names the session.
    const outputs = [log, wd.stderr.join('\n'), JSON.stringify(wd.lines), procWhileWatching, JSON.stringify(s0), statusOutputs].join('\n');
    for (const s of secrets) assert.ok(!outputs.includes(s), `the watchdog's outputs must not contain ${s.slice(0, 4)}…`);
    await e2.leave();
  });

  it('a guarded Node service: a 1 s SIGSTOP fails nothing over; a longer one does, by the watchdog, before the session would expire', async (t) => {
    const path = '/w2/__mj_j';
    const name = `meta-${tag}`;
    const admin = await client();
    const { svc, pid, e2 } = await guardedLeader(path, name, 1);
    const control = `@zkwarden-guard/${name}`;
    const s0 = await watchdogStatus(control);
    const leader = await readLeader(admin, { path });
    assert.ok(leader);
    assert.equal(s0.serviceState, `leader 0x${leader.epoch.toString(16)}`);
    assert.deepEqual(s0.session, { registered: true, label: '#1' });

    // 1 s frozen: shorter than the deadline. The fault lasts 1 s by design.
    process.kill(pid, 'SIGSTOP');
    await sleep(1000);
    process.kill(pid, 'SIGCONT');
    // Facts after the pause: the watchdog has counted fresh beats (so no silence is pending),
    // the service answers a round trip on its stdin, and nothing moved.
    await until('fresh beats after the pause', async () => (await watchdogStatus(control)).beats >= s0.beats + 5, 10_000);
    const s1 = await watchdogStatus(control);
    const flushFrom = svc.lines.length;
    svc.send('flush');
    await svc.line('the service to answer', (l) => l.ev === 'flushed', 10_000, flushFrom);
    t.diagnostic(`1 s SIGSTOP: longest silence the watchdog saw ${s1.maxSilenceMs} ms (deadline ${s1.deadlineMs} ms), interventions ${s1.interventions}`);
    assert.ok(s1.maxSilenceMs >= 900, `the pause was seen: ${s1.maxSilenceMs} ms`);
    assert.ok(s1.maxSilenceMs < s1.deadlineMs);
    assert.equal(s1.interventions, 0);
    assert.equal(s1.serviceState, s0.serviceState, 'same leader, same epoch');
    assert.equal(svc.lines.filter((l) => l.ev === 'deposed').length, 0);
    assert.equal(svc.lines.filter((l) => l.ev === 'decision' && l.kind === 'resign').length, 0, 'the in-process gate rode the pause out');
    assert.equal((await readLeader(admin, { path }))?.epoch, leader.epoch);
    assert.equal(e2.isLeader(), false);

    // Frozen for good: the watchdog ends the session after its deadline, well before the session timeout.
    const elected = nextElected(e2);
    const stoppedAt = performance.now();
    process.kill(pid, 'SIGSTOP');
    const { term } = await elected;
    const failoverMs = performance.now() - stoppedAt;
    t.diagnostic(
      `SIGSTOP → successor elected: ${failoverMs.toFixed(0)} ms (deadline ${DEFAULT_TIMING.watchdogDeadlineMs} ms, session timeout ${DEFAULT_TIMING.sessionTimeoutMs} ms)`,
    );
    assert.ok(term.epoch > leader.epoch);
    const end = await svc.exited;
    assert.equal(end.code, 1);
    const log = svc.stderr.join('\n');
    assert.match(log, /watchdog\.intervene reason=silent silentMs=\d+ deadlineMs=2000 session=#1/);
    assert.match(log, /watchdog\.sessionEnded session=#1 outcome=closed/, 'the watchdog ended it, not the session timeout');
    assert.match(log, new RegExp(`watchdog\\.kill pid=${pid} signal=SIGKILL`));
    assert.match(log, /watchdog\.exited pid=\d+ code=null signal=SIGKILL/);
    // The watchdog never names the session; its id (public in ZooKeeper as ephemeralOwner) would give the password away.
    for (const s of spellings(leader.sessionId, zookeeperPassword(leader.sessionId))) assert.ok(!log.includes(s));
    await e2.leave();
  });

  it('a service whose main thread is blocked for good (its gate cannot run) is ended by the watchdog', async (t) => {
    const path = '/w3/__mj_j';
    const { svc, e2 } = await guardedLeader(path, `blocked-${tag}`, 3);
    const elected = nextElected(e2);
    const from = svc.lines.length;
    svc.send('block');
    await svc.line('the service to block', (l) => l.ev === 'blocking', 10_000, from);
    const blockedAt = performance.now();
    await elected;
    t.diagnostic(`main thread blocked → successor elected: ${(performance.now() - blockedAt).toFixed(0)} ms`);
    const end = await svc.exited;
    assert.equal(end.code, 1);
    assert.match(svc.stderr.join('\n'), /watchdog\.intervene reason=silent/);
    await e2.leave();
  });

  it('bad input: one line naming the option, exit 2; no watchdog there: exit 3 (a JSON error under --json)', async () => {
    const cases: [string[], number, RegExp][] = [
      [['guard', 'run', '--servers', 'zk1.example:2181', '--', 'true'], 2, /^zkwarden: --servers: 'zk1\.example' is not an IP literal/],
      [
        ['guard', 'run', '--servers', ens.connectString, '--deadline', '250', '--', 'true'],
        2,
        /^zkwarden: --heartbeat-interval: at most a third of the watchdog deadline \(250\)/,
      ],
      [
        ['guard', 'run', '--servers', ens.connectString, '--deadline', '5000', '--session-timeout', '4000', '--', 'true'],
        2,
        /^zkwarden: --session-timeout: must exceed the watchdog deadline/,
      ],
      [
        ['guard', 'run', '--servers', ens.connectString, '--listen', '10.0.0.1:9000', '--', 'true'],
        2,
        /^zkwarden: --listen: the watchdog listens on loopback only/,
      ],
      [
        ['guard', 'run', '--servers', ens.connectString, '--name', `nocmd-${tag}`, '--', '/nonexistent/service'],
        2,
        /^zkwarden: cannot start \/nonexistent\/service: spawn \/nonexistent\/service ENOENT/,
      ],
      [['guard', 'status', '--name', `nobody-${tag}`], 3, /^zkwarden: no watchdog at @zkwarden-guard\/nobody-/],
    ];
    // All at once: each is a CLI start.
    const runs = cases.map(([args]) => new Proc(process.execPath, ['--import', 'tsx', CLI, ...args]));
    const ends = await Promise.all(runs.map((p) => p.exited));
    cases.forEach(([args, code, err], i) => {
      const p = runs[i]!;
      const lines = p.stderr.filter((l) => l.startsWith('zkwarden:'));
      assert.equal(ends[i]!.code, code, `${args.join(' ')}: ${p.stderr.join(' | ')}`);
      assert.equal(lines.length, 1, p.stderr.join(' | '));
      assert.match(lines[0]!, err);
    });
    const j = new Proc(process.execPath, ['--import', 'tsx', CLI, 'guard', 'status', '--name', `nobody-${tag}`, '--json']);
    assert.equal((await j.exited).code, 3);
    assert.match(String(j.lines.map((l) => l.raw ?? JSON.stringify(l)).join('')), /"exitCode": 3/);
  });

  it('what a session id exposes: ZooKeeper derives the session password from the id alone', async () => {
    const c = await client();
    assert.ok(zookeeperPassword(c.sessionId).equals(c.sessionPassword), 'the password is java.util.Random(id ^ 0xB3415C00).nextBytes(16)');
  });
});
