// 20 candidates, each in its own session, join and leave at random for a bounded time (leave,
// crash by closing the session, resign, or have their session closed by a second holder, the
// way a guard would). An observer records every leader view of every candidate and of a
// discovery watcher; leaders keep appending fenced records. Never two leaders at once,
// discovery never goes back, and ZooKeeper's record of fenced writes is ordered by epoch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { endSession } from '../../src/zk/index.ts';
import { LeaderDiscovery, type LeaderInfo } from '../../src/recipes/index.ts';
import { LeaderObserver, Pool, until, type Candidate } from './helpers.ts';

let ens: Ensemble;
let pool: Pool;
const CANDIDATES = 20;
const CHURN_MS = 20_000;

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250 });
  pool = new Pool(ens.connectString, { sessionTimeoutMs: 3000 });
});

after(async () => {
  await pool?.closeAll();
  await ens?.close();
});

type Action = 'join' | 'leave' | 'crash' | 'resign' | 'closedByOther';

describe('election under churn', () => {
  it(`${CANDIDATES} candidates joining and leaving at random for ${CHURN_MS / 1000} s never make two leaders`, async (t) => {
    const path = '/churn/__mj_j';
    const logPath = '/churn/log';
    const admin = await pool.client();
    await admin.create('/churn');
    await admin.create(logPath);
    const obs = new LeaderObserver();
    const disc = new LeaderDiscovery(await pool.client(), { path });
    const discViews: (LeaderInfo | null)[] = [];
    disc.on('change', (v) => void discViews.push(v));
    await disc.start();

    const slots: { cand: Candidate | null; busy: boolean; gen: number }[] = Array.from({ length: CANDIDATES }, () => ({ cand: null, busy: false, gen: 0 }));
    const counts: Record<Action, number> = { join: 0, leave: 0, crash: 0, resign: 0, closedByOther: 0 };
    const writes: { epoch: number; path: string }[] = [];
    const failures: string[] = [];

    const act = async (i: number): Promise<void> => {
      const slot = slots[i];
      if (slot.busy) return;
      slot.busy = true;
      try {
        const c = slot.cand;
        if (!c || c.election.state === 'lost' || c.election.state === 'left') {
          slot.gen++;
          slot.cand = await pool.candidate(`s${i}g${slot.gen}`, path, obs);
          counts.join++;
          return;
        }
        const r = Math.random();
        if (r < 0.35) {
          counts.leave++;
          await c.election.leave();
          await c.client.close();
          slot.cand = null;
        } else if (r < 0.65) {
          // A crash: the process is gone (acts no more), its session ends with the close.
          counts.crash++;
          obs.dead(c.name);
          slot.cand = null;
          await c.client.close();
        } else if (r < 0.85) {
          counts.resign++;
          await c.election.resign();
        } else {
          // A second holder of the session closes it (what a guard does to a wedged leader).
          counts.closedByOther++;
          obs.sessionEnding(c.name);
          await endSession(ens.connectString, c.client.sessionId, c.client.sessionPassword, { timeoutMs: 20_000 });
          await until(`${c.name} to learn its session ended`, () => c.election.state === 'lost', 25_000);
          slot.cand = null;
          await c.client.close();
        }
      } catch (e) {
        failures.push(`slot ${i}: ${(e as Error).stack ?? String(e)}`);
      } finally {
        slot.busy = false;
      }
    };

    // Leaders act: each appends fenced records while it believes it leads.
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await Promise.all(
          slots.map(async (s) => {
            const c = s.cand;
            const term = c?.election.term;
            if (!c || !term) return;
            try {
              const p = await c.election.writer().create(`${logPath}/w-`, String(term.epoch), 'persistent_sequential');
              writes.push({ epoch: term.epoch, path: p });
            } catch {
              // Fenced, or the session went: nothing landed (checked against ZooKeeper below).
            }
          }),
        );
        await sleep(20);
      }
    })();

    const deadline = Date.now() + CHURN_MS;
    const inflight = new Set<Promise<void>>();
    while (Date.now() < deadline) {
      // A third of the actions hit the leader, so terms change often.
      const leaderSlot = slots.findIndex((s) => s.cand?.election.isLeader());
      const p = act(leaderSlot >= 0 && Math.random() < 0.33 ? leaderSlot : Math.floor(Math.random() * CANDIDATES));
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      await sleep(20 + Math.random() * 60);
    }
    await Promise.all(inflight);
    writing = false;
    await writer;

    // Quiet again: exactly one live candidate leads and discovery names it.
    const live = slots.map((s) => s.cand).filter((c): c is Candidate => c !== null && c.election.state !== 'lost' && c.election.state !== 'left');
    if (live.length === 0) slots[0].cand = await pool.candidate('final', path, obs);
    const alive = slots.map((s) => s.cand).filter((c): c is Candidate => c !== null && c.election.state !== 'left' && c.election.state !== 'lost');
    await until('one leader after the churn', () => alive.filter((c) => c.election.isLeader()).length === 1);
    const leader = alive.find((c) => c.election.isLeader());
    await until('discovery to agree', () => disc.leader?.epoch === leader?.election.term?.epoch && disc.leader?.claimed === true);

    const terms = new Set(obs.elections().map((v) => v.epoch)).size;
    t.diagnostic(
      `${Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ${terms} terms, ${obs.views.length} leader views, ${discViews.length} discovery views, ${writes.length} fenced writes`,
    );
    assert.deepEqual(failures, []);
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    assert.equal(obs.maxConcurrent, 1);
    assert.ok(terms >= 20, `the churn changed leaders (${terms} terms)`);
    let highest = 0;
    for (const v of discViews) {
      if (!v) continue;
      assert.ok(v.epoch >= highest, 'discovery never goes back');
      highest = v.epoch;
    }
    // Epochs of elected views grow from term to term.
    const electedEpochs = obs
      .elections()
      .filter((v) => !v.resumed)
      .map((v) => v.epoch);
    assert.deepEqual(
      electedEpochs,
      [...electedEpochs].sort((a, b) => a - b),
    );
    // ZooKeeper's record of the fenced writes: each acknowledged one is there, in epoch order.
    const { children } = await admin.getChildren(logPath);
    const logged: number[] = [];
    for (const n of children.sort()) logged.push(Number((await admin.getData(`${logPath}/${n}`)).data.toString()));
    // A write in flight when its client was closed may have landed unacknowledged; never the reverse.
    const names = new Set(children.map((n) => `${logPath}/${n}`));
    assert.ok(
      writes.every((w) => names.has(w.path)),
      'every acknowledged write is in ZooKeeper',
    );
    assert.ok(logged.length >= writes.length);
    assert.deepEqual(
      logged,
      [...logged].sort((a, b) => a - b),
      'fenced writes never interleave terms',
    );
    disc.stop();
  });
});
