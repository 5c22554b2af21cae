/**
 * Removing a lab, from its record alone: what a lab's own close() does, what `zkwarden lab clean`
 * and the start of every run do for labs whose owner died (a failed run, SIGINT, SIGKILL), and
 * what a test checks afterwards (`leftovers`).
 *
 * The order matters. Processes are killed first; one stuck on a stalled FUSE disk is not gone
 * after kill -9 (it sits in D), so the node disks are released next (abort of the FUSE
 * connection, then a lazy unmount), which lets those die; only then do the cgroups (which refuse
 * rmdir while a process remains), namespaces, veths and the bridge go. A lab's record is removed
 * last and only when nothing of it is left, so a clean-up that could not finish is retried by the
 * next one.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuCgroup } from './cgroup.ts';
import { mountsUnder, releaseMountsUnder, releaseMountsUnderSync } from './disk.ts';
import { deleteLink, deleteLinkSync, deleteNetns, deleteNetnsSync, labNames, listLinks, listNetns, netnsPids, netnsPidsSync } from './network.ts';
import { identityAlive, pidAlive, signalPid } from './proc.ts';
import {
  labDir,
  listLabIds,
  ownerAlive,
  readRecord,
  releaseId,
  releaseOrphanClaims,
  releaseSubnet,
  removeStaleNewRecords,
  subnetClaims,
  type LabRecord,
} from './registry.ts';

export interface CleanupReport {
  lab: string;
  /** Processes killed (node processes, the owner of a detached lab). */
  killed: number[];
  /** Mount points released. */
  released: string[];
  removed: string[];
  /** What could not be removed, each naming the resource; empty when the lab is gone. */
  leftovers: string[];
}

function cgroupsOf(record: LabRecord): CpuCgroup[] {
  return [...record.nodes.map((n) => new CpuCgroup(n.cgroup)), new CpuCgroup(record.cgroupRoot)];
}

async function labPids(record: LabRecord): Promise<number[]> {
  const pids = new Set<number>();
  for (const cg of cgroupsOf(record)) for (const pid of cg.pids()) pids.add(pid);
  for (const n of record.nodes) for (const pid of await netnsPids(n.netns)) pids.add(pid);
  return [...pids].filter((p) => p !== process.pid);
}

/** Everything of the lab that still exists on this machine. */
export async function leftovers(record: LabRecord): Promise<string[]> {
  const out: string[] = [];
  const names = labNames(record.id);
  for (const pid of await labPids(record)) if (pidAlive(pid)) out.push(`process ${pid}`);
  for (const m of mountsUnder(record.baseDir)) out.push(`mount ${m.mountpoint} (${m.fstype})`);
  const netns = new Set(await listNetns());
  for (const n of record.nodes) if (netns.has(n.netns)) out.push(`network namespace ${n.netns}`);
  const links = new Set(await listLinks());
  for (const l of [names.bridge, ...record.nodes.map((n) => n.hostVeth)]) if (links.has(l)) out.push(`link ${l}`);
  for (const cg of cgroupsOf(record)) if (cg.exists()) out.push(`cgroup ${cg.path}`);
  return out;
}

/**
 * Removes every resource of a lab. `ownerToo` also kills the recorded owner (a detached lab's
 * keeper); a live foreign owner is otherwise never touched.
 */
export async function teardown(record: LabRecord, opts: { ownerToo?: boolean; waitMs?: number } = {}): Promise<CleanupReport> {
  const report: CleanupReport = { lab: record.id, killed: [], released: [], removed: [], leftovers: [] };
  if (opts.ownerToo && record.owner.pid !== process.pid && identityAlive(record.owner)) {
    signalPid(record.owner.pid, 'SIGKILL');
    report.killed.push(record.owner.pid);
  }
  // 1. Processes: kill -9 (a stopped one dies too; one in D only once its disk is released).
  const pids = await labPids(record);
  for (const pid of pids) if (signalPid(pid, 'SIGKILL')) report.killed.push(pid);
  // 2. Disks: release every mount under the lab's files, stalled or not, daemon alive or not.
  const disks = await releaseMountsUnder(record.baseDir);
  report.released.push(...disks.released);
  // 3. Wait for the processes to be gone (bounded: a process that will not die is reported).
  const deadline = Date.now() + (opts.waitMs ?? 15_000);
  for (;;) {
    const alive = (await labPids(record)).filter(pidAlive);
    for (const pid of alive) signalPid(pid, 'SIGKILL');
    if (alive.length === 0 || Date.now() > deadline) break;
    await sleep(20);
  }
  // A release that did not finish (a loaded machine, a daemon slow to die) gets a second try now
  // that the lab's processes are gone.
  if (disks.failed.length > 0) {
    const again = await releaseMountsUnder(record.baseDir);
    report.released.push(...again.released);
    disks.failed = again.failed;
  }
  // 4. cgroups (children first), namespaces, veths, bridge.
  for (const cg of cgroupsOf(record)) {
    const existed = cg.exists();
    if (existed && cg.remove()) report.removed.push(`cgroup ${cg.path}`);
  }
  for (const n of record.nodes) {
    await deleteNetns(n.netns);
    await deleteLink(n.hostVeth);
  }
  await deleteLink(labNames(record.id).bridge);
  // 5. Files, unless kept, and never through a mount still there.
  report.leftovers = [...disks.failed, ...(await leftovers(record))];
  if (!record.keepFiles && report.leftovers.length === 0) rmSync(record.baseDir, { recursive: true, force: true });
  if (report.leftovers.length === 0) {
    releaseSubnet(record.subnet, record.id);
    releaseSubnetsOf(record.id);
    releaseId(record.id);
    report.removed.push(`state ${labDir(record.id)}`);
  }
  return report;
}

function releaseSubnetsOf(labId: string): void {
  for (const [subnet, holder] of subnetClaims()) if (holder === labId) releaseSubnet(subnet, labId);
}

/**
 * The synchronous last resort of a process that is exiting (nothing can be awaited in an 'exit'
 * handler): kills the lab's processes, releases its disks (abort, detach, kill the daemon), and
 * removes its namespaces, links and cgroups. Whatever could not go (a mount whose daemon was
 * already dead) keeps the lab's record for the next clean-up.
 */
export function teardownSync(record: LabRecord): void {
  const pids = new Set<number>();
  for (const cg of cgroupsOf(record)) for (const pid of cg.pids()) pids.add(pid);
  for (const n of record.nodes) for (const pid of netnsPidsSync(n.netns)) pids.add(pid);
  pids.delete(process.pid);
  for (const pid of pids) signalPid(pid, 'SIGKILL');
  // Stalled disks: abort and detach, so a process killed in D can die.
  releaseMountsUnderSync(record.baseDir);
  // Killed processes take a moment to be reaped; a short bounded spin lets the cgroups go empty.
  const deadline = Date.now() + 2000;
  while ([...pids].some(pidAlive) && Date.now() < deadline) {
    // busy wait: nothing else can run in an exit handler
  }
  for (const cg of cgroupsOf(record)) cg.remove();
  for (const n of record.nodes) {
    deleteNetnsSync(n.netns);
    deleteLinkSync(n.hostVeth);
  }
  deleteLinkSync(labNames(record.id).bridge);
  if (mountsUnder(record.baseDir).length === 0 && [...pids].every((p) => !pidAlive(p))) {
    if (!record.keepFiles) rmSync(record.baseDir, { recursive: true, force: true });
    releaseSubnet(record.subnet, record.id);
    releaseSubnetsOf(record.id);
    releaseId(record.id);
  }
}

export interface CleanResult {
  cleaned: CleanupReport[];
  /** Labs left alone because their owner lives. */
  skipped: { lab: string; ownerPid: number }[];
}

/**
 * Removes the labs whose owner is dead (or every lab with `all`, which also kills live owners:
 * never while others use the machine). Also drops subnet claims whose lab is gone.
 */
export async function cleanLabs(opts: { all?: boolean; only?: string } = {}): Promise<CleanResult> {
  // `only` names one lab to remove whatever its owner (the CLI's `lab down`); `all` removes every lab.
  const result: CleanResult = { cleaned: [], skipped: [] };
  removeStaleNewRecords();
  for (const id of listLabIds()) {
    if (opts.only !== undefined && id !== opts.only) continue;
    const record = readRecord(id);
    if (!record) {
      // A directory without a readable record cannot hold resources we know of.
      if (existsSync(join(labDir(id), 'lab.json')))
        result.cleaned.push({
          lab: id,
          killed: [],
          released: [],
          removed: [],
          leftovers: [`unreadable record ${join(labDir(id), 'lab.json')}: ${safeRead(join(labDir(id), 'lab.json'))}`],
        });
      else {
        releaseId(id);
        result.cleaned.push({ lab: id, killed: [], released: [], removed: [`state ${labDir(id)}`], leftovers: [] });
      }
      continue;
    }
    if (ownerAlive(record) && !opts.all && opts.only === undefined) {
      result.skipped.push({ lab: id, ownerPid: record.owner.pid });
      continue;
    }
    result.cleaned.push(await teardown(record, { ownerToo: opts.all === true || opts.only !== undefined }));
  }
  releaseOrphanClaims();
  return result;
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(0, 80);
  } catch (e) {
    return (e as Error).message;
  }
}
