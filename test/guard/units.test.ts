// The guard's parts that need no ZooKeeper: the timing model's checks, the line protocol, the
// ring log against a sink that cannot take lines, a process's state from /proc, and the health
// gate's rules (a hung check fails by age and resigns after the grace; one late tick does not;
// a healthy answer heals at once).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_TIMING,
  GuardConfigError,
  HealthGate,
  LineSplitter,
  ProcWatch,
  ProtocolError,
  RingLog,
  checkNegotiatedTimeout,
  formatMessage,
  parseLine,
  resolveTiming,
  timingBounds,
  type GateState,
  type Probe,
} from '../../src/guard/index.ts';
import { until } from '../until.ts';

describe('timing model', () => {
  it('the defaults hold every relation and fail over in about 3 s', () => {
    const t = resolveTiming();
    assert.deepEqual(t, { ...DEFAULT_TIMING });
    const b = timingBounds(t);
    assert.ok(b.watchdogActsMs < b.naturalExpiryMs, JSON.stringify(b));
    assert.ok(b.watchdogActsMs <= 2500, 'the watchdog acts within 2.5 s, leaving time for endSession and the hand-over');
    assert.ok(b.ridesOutPauseMs >= 1000, 'a 1 s pause fails nothing over');
    assert.ok(b.ridesOutDiskOpMs >= 1500, 'a system call of three 500 ms disk requests is progress, not a stall');
    assert.ok(b.inProcessResignMs <= 2800, JSON.stringify(b));
  });

  it('a timing that breaks the model is refused with the field and the relation', () => {
    const refused = (partial: Parameters<typeof resolveTiming>[0], field: string, words: RegExp): void => {
      assert.throws(
        () => resolveTiming(partial),
        (e: unknown) => e instanceof GuardConfigError && e.option === `timing.${field}` && words.test(e.message),
        `${JSON.stringify(partial)} should fail on ${field}`,
      );
    };
    refused({ probeIntervalMs: 0 }, 'probeIntervalMs', /positive integer/);
    refused({ graceMs: 1.5 }, 'graceMs', /positive integer/);
    refused({ probeTimeoutMs: 150 }, 'probeTimeoutMs', /exceed probeIntervalMs/);
    assert.throws(
      () => new HealthGate({ probes: [{ name: 'p', timeoutMs: 100, check: async () => true }], timing: resolveTiming() }),
      (e: unknown) => e instanceof GuardConfigError && e.option === "probes['p'].timeoutMs",
    );
    refused({ graceMs: 100 }, 'graceMs', /one late tick/);
    refused({ watchdogDeadlineMs: 600 }, 'watchdogDeadlineMs', /resigns before its watchdog/);
    refused({ heartbeatIntervalMs: 800 }, 'heartbeatIntervalMs', /three missed beats/);
    refused({ sessionTimeoutMs: 2000 }, 'sessionTimeoutMs', /expire on its own/);
    assert.throws(
      () => checkNegotiatedTimeout(resolveTiming(), 2000),
      (e: unknown) => e instanceof GuardConfigError && /granted a session timeout of 2000/.test(e.message),
    );
    checkNegotiatedTimeout(resolveTiming(), 4000);
  });
});

describe('line protocol', () => {
  it('parses what it formats, for every message', () => {
    const msgs = [
      { type: 'hello', version: 1, pid: 4242, name: 'meta' },
      { type: 'session', session: { id: 0x100001cc7870000n, password: Buffer.from('00112233445566778899aabbccddeeff', 'hex') } },
      { type: 'session', session: null },
      { type: 'znode', path: '/zbs/meta/__mj_j/0000000003' },
      { type: 'state', state: { kind: 'leader', epoch: 0x100000006n } },
      { type: 'state', state: { kind: 'waiting' } },
      { type: 'heartbeat', seq: 17, healthy: true, reason: null },
      { type: 'heartbeat', seq: 18, healthy: false, reason: 'disk /data: fsync no answer for 1200 ms' },
      { type: 'bye' },
      { type: 'status' },
    ] as const;
    for (const m of msgs) {
      const line = formatMessage(m);
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
      assert.deepEqual(parseLine(line.slice(0, -1), 1), m);
    }
  });

  it('bad lines name the line and the field, and never quote credentials', () => {
    const bad = (text: string, field: string): void => {
      assert.throws(
        () => parseLine(text, 7),
        (e: unknown) => e instanceof ProtocolError && e.line === 7 && e.field === field,
        text,
      );
    };
    bad('HELLO 2 100', 'version');
    bad('HELLO 1 0', 'pid');
    bad('SESSION 1000zz 00ff', 'sessionId');
    bad('SESSION 0 00ff', 'sessionId');
    bad('SESSION 100001cc7870000 abc', 'password');
    bad('HEARTBEAT x ok', 'seq');
    bad('HEARTBEAT 1 meh', 'health');
    bad('STATE boss', 'state');
    bad('ZNODE relative', 'path');
    bad('DANCE', 'command');
    bad(`HEARTBEAT 1 ill ${'x'.repeat(2000)}`, 'line');
    try {
      parseLine('SESSION 100001cc7870000 00112233445566778899aabbccddeeffx', 1);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(!(e as Error).message.includes('00112233') && !(e as Error).message.includes('100001cc'), (e as Error).message);
    }
  });

  it('splits a stream at newlines and skips an overlong line without buffering it', () => {
    const lines: [string, number][] = [];
    const overlong: number[] = [];
    const s = new LineSplitter(
      (t, n) => void lines.push([t, n]),
      (n) => void overlong.push(n),
    );
    s.push('HEARTBEAT 1 ok\nHEART');
    s.push('BEAT 2 ok\n');
    s.push('x'.repeat(3000));
    s.push('y'.repeat(3000));
    s.push('\nBYE\n');
    assert.deepEqual(lines, [
      ['HEARTBEAT 1 ok', 1],
      ['HEARTBEAT 2 ok', 2],
      ['BYE', 4],
    ]);
    assert.deepEqual(overlong, [3]);
  });
});

describe('ring log', () => {
  it('never blocks the logger when the sink takes nothing: the newest lines stay, the dropped are counted', async () => {
    // A pipe nobody reads: once its buffer is full, every write would block.
    const reader = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const fd = (reader.stdin as unknown as { _handle: { fd: number } })._handle.fd;
    const log = new RingLog({ fd, capacity: 100 });
    const line = 'x'.repeat(1000);
    const t0 = performance.now();
    for (let i = 0; i < 5000; i++) log.log('filler', { i, line });
    const elapsed = performance.now() - t0;
    assert.ok(log.dropped > 0, 'lines were dropped, not queued without bound');
    assert.ok(log.pending <= 100);
    assert.ok(log.recent().at(-1)?.includes('i=4999'), 'the newest line is kept');
    // 5 MB into a 64 KiB pipe: had any write blocked the logger, this loop would never end.
    assert.ok(elapsed < 10_000);
    reader.kill('SIGKILL');
  });

  it('lines reach a file in order; a write error counts the lines as dropped and says so later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkw-ring-'));
    const file = join(dir, 'log');
    const fd = openSync(file, 'a');
    const log = new RingLog({ fd, source: 'watchdog[t]' });
    for (let i = 0; i < 10; i++) log.log('event', { i });
    assert.equal(await log.drain(5000), true);
    const text = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(text.length, 10);
    assert.ok(text.every((l, i) => l.includes(`watchdog[t] event i=${i}`)));
    closeSync(fd);
    const full = openSync('/dev/full', 'w');
    const bad = new RingLog({ fd: full });
    bad.log('lost', {});
    await until('the failed write to be counted', () => bad.writeErrors > 0 && bad.dropped === 1, 5000);
    bad.close();
    closeSync(full);
  });
});

describe('process state', () => {
  it('reads R/S, T (SIGSTOP) and gone from /proc through a file opened once', async () => {
    const child = spawn('sleep', ['30']);
    const p = new ProcWatch(child.pid!);
    await until('sleep to sleep', () => p.state() === 'S', 5000);
    child.kill('SIGSTOP');
    await until('the stopped state', () => p.state() === 'T', 5000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(p.state(), 'gone');
    assert.equal(new ProcWatch(2 ** 22 + 12345).state(), 'gone');
  });
});

/** A probe the test answers by hand; `hang` leaves its next check unanswered until `release`. */
class HandProbe implements Probe {
  readonly name: string;
  checks = 0;
  hang = false;
  fail = false;
  private waiting: ((ok: boolean) => void)[] = [];
  constructor(name: string) {
    this.name = name;
  }
  check(): Promise<boolean> {
    this.checks++;
    if (this.hang) return new Promise((r) => this.waiting.push(r));
    return Promise.resolve(!this.fail);
  }
  release(): void {
    for (const r of this.waiting.splice(0)) r(true);
  }
  get inFlight(): number {
    return this.waiting.length;
  }
}

function record(gate: HealthGate): GateState[] {
  const states: GateState[] = [];
  gate.on('state', (s) => void states.push(s));
  return states;
}

describe('health gate', () => {
  const timing = { probeIntervalMs: 50, probeTimeoutMs: 200, graceMs: 150 };

  it('a check that never answers fails by its age, once, and resigns after the grace; its late answer heals', async () => {
    const p = new HandProbe('stuck');
    const gate = new HealthGate({ probes: [p], timing, eventLoop: false });
    const states = record(gate);
    await gate.start();
    await gate.whenHealthy(5000);
    p.hang = true;
    const unhealthy = new Promise<string>((r) => gate.once('unhealthy', (f) => r(f.map((x) => `${x.probe}: ${x.detail}`).join())));
    const detail = await unhealthy;
    assert.match(detail, /^stuck: no answer for \d+ ms$/);
    assert.equal(p.inFlight, 1, 'at most one check in flight, however long it hangs');
    assert.deepEqual(states, ['healthy', 'failing', 'unhealthy']);
    p.hang = false;
    p.release();
    await gate.whenHealthy(5000);
    assert.deepEqual(states, ['healthy', 'failing', 'unhealthy', 'healthy']);
    gate.stop();
  });

  it('one stall of the whole process (longer than the probe timeout) is one failing tick, not a resignation', async () => {
    const p = new HandProbe('fine');
    const gate = new HealthGate({ probes: [p], timing, eventLoop: true });
    const states = record(gate);
    await gate.start();
    await gate.whenHealthy(5000);
    // A check in flight across the stall: its age spans the stall too.
    p.hang = true;
    await until('a check in flight', () => p.inFlight === 1, 5000);
    const end = Date.now() + 600;
    while (Date.now() < end) {
      // the event loop is blocked: what a GC pause or SIGSTOP looks like from inside
    }
    // The late tick fails the event loop once; the next one is healthy again although the
    // check that spans the stall is still unanswered: its age counts from the stall's end.
    await until('the gate to judge the ticks after the stall', () => states.length >= 3, 5000);
    assert.equal(p.inFlight, 1, 'the check across the stall is still unanswered');
    p.hang = false;
    p.release();
    assert.deepEqual(states.slice(0, 3), ['healthy', 'failing', 'healthy'], `states: ${states.join(',')}`);
    assert.ok(!states.includes('unhealthy'));
    gate.stop();
  });

  it('a failing answer fails at once; a probe that throws fails with its message', async () => {
    const p = new HandProbe('flaky');
    const thrower: Probe = {
      name: 'thrower',
      check: () => {
        throw new Error('boom');
      },
    };
    const gate = new HealthGate({ probes: [p, thrower], timing, eventLoop: false });
    await gate.start();
    await until('both probes judged', () => gate.state === 'failing' || gate.state === 'unhealthy', 5000);
    assert.deepEqual(gate.failures, [{ probe: 'thrower', detail: 'boom' }]);
    gate.stop();
  });
});
