/**
 * The ensemble audit on data written by a real ZooKeeper 3.8 ensemble: lagging for a member
 * stopped mid-workload, consistent once it has caught up (offline and online), and diverged at
 * the right zxid, naming the znodes, for a member whose log the test altered with valid
 * checksums (a transaction changed, a transaction removed).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { auditOffline } from '../../../src/forensics/zkdata/audit.ts';
import { renderAudit } from '../../../src/forensics/report/audit.ts';
import { openDataDir } from '../../../src/forensics/zkdata/datadir.ts';
import { auditOnline, renderOnline } from '../../../src/forensics/zkdata/online.ts';
import { readTxnLog } from '../../../src/forensics/zkdata/txnlog.ts';
import { OpCode } from '../../../src/zk/txn.ts';
import { runCli } from '../../cli/run-cli.ts';
import { connect, rewriteLog, workload } from './helpers.ts';

async function quiesce(ens: Ensemble, ids: number[]): Promise<number> {
  for (let i = 0; i < 150; i++) {
    const z = await Promise.all(ids.map(async (id) => (await ens.srvr(id))?.zxid));
    if (z.every((x) => x !== undefined && x === z[0])) return z[0]!;
    await sleep(100);
  }
  assert.fail('servers did not reach the same zxid');
}

describe('the ensemble audit', () => {
  let ens: Ensemble;
  let tmp: string;
  let lagging: number;
  const dirs = (base?: string): string[] => ens.servers.map((s) => (base ? join(base, `zk${s.id}`, 'data') : s.dataDir));

  /** Copies every member's directory (data and server log) so a test can alter one. */
  function copyMembers(label: string): string {
    const base = join(tmp, label);
    for (const s of ens.servers) cpSync(s.dir, join(base, `zk${s.id}`), { recursive: true });
    return base;
  }

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'zkdata-audit-'));
    ens = await Ensemble.start({ size: 3, tickTime: 300, snapCount: 60, fourLetterWords: ['*'], preAllocSizeKb: 16, extendedTypesEnabled: true });
  });
  after(async () => {
    await ens?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('says lagging for a member stopped mid-workload', async () => {
    const leader = await ens.leaderId();
    lagging = (await ens.followerIds())[0]!;
    await workload(ens.address(leader), 'a', 40);
    await ens.stop(lagging);
    await workload(ens.address(leader), 'b', 40);
    const running = ens.servers.map((s) => s.id).filter((id) => id !== lagging);
    await quiesce(ens, running);

    // Live: the stopped member cannot be read; the others agree.
    const online = await auditOnline(
      ens.servers.map((s) => ens.address(s.id)),
      { names: ens.servers.map((s) => `zk${s.id}`) },
    );
    assert.equal(online.members.find((m) => m.name === `zk${lagging}`)!.status, 'unreachable', renderOnline(online));
    assert.equal(online.diffCount, 0, renderOnline(online));

    for (const id of running) await ens.stop(id);
    const r = await auditOffline(dirs().map((dir) => ({ dir })));
    const text = renderAudit(r);
    assert.equal(r.class, 'lagging', text);
    assert.match(r.verdict, new RegExp(`^LAGGING: zk${lagging} at 0x`));
    assert.equal(r.members.find((m) => m.name === `zk${lagging}`)!.status, 'lagging');
    assert.ok(r.members.find((m) => m.name === `zk${lagging}`)!.behindBy > 40, text);
    assert.deepEqual(
      r.members
        .filter((m) => m.status === 'consistent')
        .map((m) => m.name)
        .sort(),
      running.map((id) => `zk${id}`).sort(),
    );
    assert.equal(r.conflictCount, 0, text);
    assert.equal(r.diffCount, 0, text);
    assert.ok(r.txnsCompared > 40);
  });

  it('says consistent once the member has caught up, offline and online', async () => {
    // Started together: a server alone cannot serve until a quorum is back.
    await Promise.all(ens.servers.map((s) => ens.startServer(s.id, { waitMs: 60_000 })));
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    await workload(ens.address(lagging), 'c', 15);

    // Live reads while a client keeps writing are not a state at one zxid: not comparable.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      const c = await connect(ens.address(1));
      for (let i = 0; writing; i++, written++) await c.create(`/c/busy${i}`);
      await c.close();
    })();
    // The writer is under way: its creates are moving the zxid.
    for (const end = Date.now() + 30_000; written < 20; await sleep(20)) if (Date.now() > end) assert.fail('the writer made no progress');
    const busy = await auditOnline(ens.servers.map((s) => ens.address(s.id)));
    writing = false;
    await writer;
    assert.equal(busy.class, 'not-comparable', renderOnline(busy));
    assert.match(busy.verdict, /^NOT COMPARABLE: the live trees were read at different zxids/);

    const before = await quiesce(
      ens,
      ens.servers.map((s) => s.id),
    );

    const online = await auditOnline(ens.servers.map((s) => ens.address(s.id)));
    assert.equal(online.class, 'consistent', renderOnline(online));
    // The audit's own sessions are transactions: the trees are read after their createSession.
    const readAt = online.members[0]!.zxidBefore!;
    assert.ok(readAt > before);
    assert.ok(
      online.members.every((m) => m.zxidBefore === readAt && m.stable),
      renderOnline(online),
    );
    assert.match(online.verdict, /^CONSISTENT: all 3 servers at 0x/);
    const zxid = await quiesce(
      ens,
      ens.servers.map((s) => s.id),
    );

    for (const s of ens.servers) await ens.stop(s.id);
    const r = await auditOffline(dirs().map((dir) => ({ dir })));
    const text = renderAudit(r);
    assert.equal(r.class, 'consistent', text);
    assert.match(r.verdict, /^CONSISTENT: all 3 members at 0x/);
    assert.equal(r.comparedAt, zxid);
    assert.ok(
      r.members.every((m) => m.status === 'consistent' && m.lastZxid === zxid),
      text,
    );
    assert.ok(r.nodesCompared > 50);
    const cli = runCli(['audit', ...dirs()]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^CONSISTENT: all 3 members/);
  });

  /** A transaction of `type` in member `id`'s newest epoch, with its log file; snapshots taken after it are removed from the copy. */
  async function pickTxn(base: string, id: number, type: number): Promise<{ file: string; zxid: number; path: string }> {
    const dd = openDataDir(join(base, `zk${id}`, 'data'));
    for (const log of [...dd.logs].reverse()) {
      const { entries } = await readTxnLog(log.path);
      const e = entries.filter((x) => x.header.type === type && x.record && 'path' in x.record && x.record.path.startsWith('/c/')).at(-2);
      if (!e) continue;
      // Make the replay go through the altered log: snapshots at or after it would already hold the original.
      for (const s of dd.snapshots) if (s.zxid >= e.header.zxid) unlinkSync(s.path);
      return { file: log.path, zxid: e.header.zxid, path: (e.record as { path: string }).path };
    }
    assert.fail(`no transaction of type ${type} in zk${id}'s logs`);
  }

  it('says diverged at the zxid of a changed transaction, naming the znode', async () => {
    const base = copyMembers('changed');
    const odd = lagging;
    const t = await pickTxn(base, odd, OpCode.setData);
    await rewriteLog(t.file, (entries) =>
      entries.map((e) => {
        if (e.header.zxid !== t.zxid) return e.payload;
        const p = Buffer.from(e.payload);
        // The data ("v2-<i>") sits right before the version int; change its first byte.
        const at = p.indexOf(Buffer.from('v2-'));
        assert.ok(at > 0);
        p[at] = 'X'.charCodeAt(0);
        return p;
      }),
    );
    const r = await auditOffline(dirs(base).map((dir) => ({ dir })));
    const text = renderAudit(r);
    assert.equal(r.class, 'diverged', text);
    assert.equal(r.firstDivergence!.zxid, t.zxid, text);
    assert.equal(r.conflicts[0]!.kind, 'changed');
    assert.deepEqual(r.conflicts[0]!.odd, [`zk${odd}`]);
    assert.deepEqual(
      r.members.filter((m) => m.status === 'diverged').map((m) => m.name),
      [`zk${odd}`],
    );
    const f = r.findings.find((x) => x.paths.includes(t.path));
    assert.ok(f, `a finding names ${t.path}:\n${text}`);
    assert.match(f.kind, /data/);
    assert.match(r.verdict, new RegExp(`^DIVERGED: zk${odd} part from the others at 0x${t.zxid.toString(16)}`));

    // The command: the verdict on top, exit 1 for a divergence; JSON carries the same report.
    const cli = runCli(['audit', ...dirs(base)]);
    assert.equal(cli.status, 1, cli.stderr);
    assert.equal(cli.stdout.split('\n')[0], r.verdict);
    const json = runCli(['audit', '--json', ...dirs(base)]);
    assert.equal(json.status, 1, json.stderr);
    const parsed = JSON.parse(json.stdout) as { class: string; firstDivergence: { zxid: number } };
    assert.equal(parsed.class, 'diverged');
    assert.equal(parsed.firstDivergence.zxid, t.zxid);
    // A log given as a snapshot is bad input, named with its offset.
    const bad = runCli(['snapshot', 'dump', t.file]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /at offset 0: expected the snapshot magic .*this is a transaction log/);
    const tree = runCli(['tree', join(base, `zk${odd}`, 'data'), '--at', `0x${t.zxid.toString(16)}`, '--json']);
    assert.equal(tree.status, 0, tree.stderr);
    const tj = JSON.parse(tree.stdout) as { zxid: string; nodes: { path: string }[] };
    assert.equal(tj.zxid, `0x${t.zxid.toString(16)}`);
    assert.ok(tj.nodes.some((n) => n.path === t.path));
  });

  it('does not call a failed multi logged in its processed form a divergence', async () => {
    // ZooKeeper can log the same failed multi two ways (the proposal, or the copy processTxn
    // already retyped into errors, original bytes kept); both have no effect on the tree.
    const base = copyMembers('processed-multi');
    const odd = lagging;
    const dd = openDataDir(join(base, `zk${odd}`, 'data'));
    let rewritten = 0;
    for (const log of dd.logs) {
      const { entries } = await readTxnLog(log.path);
      const failed = entries.find((e) => e.record?.kind === 'multi' && e.record.txns.some((t) => t.type === -1) && e.record.txns.some((t) => t.type !== -1));
      if (!failed) continue;
      await rewriteLog(log.path, (all) =>
        all.map((e) => {
          if (e.header.zxid !== failed.header.zxid) return e.payload;
          const p = Buffer.from(e.payload);
          // TxnHeader is 32 bytes; then MultiTxn: count, then per op: int type, buffer.
          let at = 32;
          const count = p.readInt32BE(at);
          at += 4;
          for (let i = 0; i < count; i++) {
            p.writeInt32BE(-1, at);
            const len = p.readInt32BE(at + 4);
            at += 8 + len;
          }
          return p;
        }),
      );
      rewritten++;
      break;
    }
    assert.equal(rewritten, 1, 'the workload left a failed multi in the logs');
    const r = await auditOffline(dirs(base).map((dir) => ({ dir })));
    assert.equal(r.class, 'consistent', renderAudit(r));
    assert.equal(r.conflictCount, 0);
  });

  it('says diverged at the zxid of a removed transaction, naming the znodes', async () => {
    const base = copyMembers('removed');
    const odd = ens.servers.map((s) => s.id).find((id) => id !== lagging)!;
    const t = await pickTxn(base, odd, OpCode.create2);
    await rewriteLog(t.file, (entries) => entries.filter((e) => e.header.zxid !== t.zxid).map((e) => e.payload));
    const r = await auditOffline(dirs(base).map((dir) => ({ dir })));
    const text = renderAudit(r);
    assert.equal(r.class, 'diverged', text);
    assert.equal(r.firstDivergence!.zxid, t.zxid, text);
    assert.equal(r.conflicts[0]!.kind, 'missing');
    assert.deepEqual(r.conflicts[0]!.odd, [`zk${odd}`]);
    const f = r.findings.find((x) => x.paths.includes(t.path));
    assert.ok(f, `a finding names ${t.path}:\n${text}`);
    assert.match(f.kind, new RegExp(`missing on zk${odd}`));
    // The parent's child counters differ too, and the hole in the log is named as ZOOKEEPER-3642's data trace.
    assert.ok(
      r.findings.some((x) => x.paths.includes(t.path.slice(0, t.path.lastIndexOf('/')))),
      text,
    );
    assert.ok(
      r.signatures.some((s) => s.id === 'ZOOKEEPER-3642' && s.member === `zk${odd}`),
      text,
    );
  });
});
