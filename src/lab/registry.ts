/**
 * Where labs are recorded: one directory per lab under /run/zkwarden/labs/<id>/ (never on a lab
 * disk, so it stays readable when a disk hangs), holding what the lab created and which process
 * owns it. Clean-up reads these records, so a lab whose runner was SIGKILLed is still found and
 * removed, and a lab whose owner lives is never touched.
 *
 * A /24 of 198.18.0.0/15 is claimed with an atomic mkdir under subnets/, so two labs started at
 * the same moment never share addresses.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EnsembleState } from './ensemble.ts';
import { LabError, LabUsageError } from './host.ts';
import { identityAlive, pidAlive, type ProcessIdentity } from './proc.ts';

/** Overridable so the registry's own tests can use a scratch directory. */
export function registryRoot(): string {
  return process.env.ZKWARDEN_LAB_STATE ?? '/run/zkwarden';
}

export function labsDir(): string {
  return join(registryRoot(), 'labs');
}

/**
 * Subnet claims are machine-wide (two labs must never share addresses, wherever their records
 * are); ZKWARDEN_LAB_SUBNETS keeps them there when ZKWARDEN_LAB_STATE moves the records.
 */
function subnetsDir(): string {
  return process.env.ZKWARDEN_LAB_SUBNETS ?? join(registryRoot(), 'subnets');
}

/** Lab ids become part of interface names (≤ 15 characters): short, lowercase, alphanumeric. */
export const LAB_ID_PATTERN = /^[a-z0-9]{1,8}$/;

export function newLabId(): string {
  // Starts with a letter so it never reads as a number in a name.
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return letters[randomBytes(1)[0]! % 26]! + randomBytes(4).toString('hex').slice(0, 5);
}

export interface NodeRecord {
  name: string;
  index: number;
  ip: string;
  netns: string;
  /** The veth end in the root namespace, on the bridge. */
  hostVeth: string;
  cgroup: string;
  disk: DiskRecord;
}

export interface DiskRecord {
  kind: 'plain' | 'faultfs';
  /** Where the node's files live (the faultfs mount point, or the plain directory). */
  root: string;
  /** The backing directory under a faultfs. */
  backing: string;
  /** faultfs' control socket and daemon, when mounted. */
  controlSocket?: string;
  daemonPid?: number;
}

export interface LabRecord {
  version: 1;
  id: string;
  owner: ProcessIdentity;
  /** True when the owner is a keeper process standing in for a CLI lab. */
  detached: boolean;
  createdAt: string;
  /** First three octets, e.g. '198.18.88'. */
  subnet: string;
  hostIp: string;
  bridge: string;
  chains: { input: string; output: string };
  cgroupRoot: string;
  baseDir: string;
  keepFiles: boolean;
  nodes: NodeRecord[];
  ensemble?: EnsembleState;
}

export function labDir(id: string): string {
  return join(labsDir(), id);
}

function recordFile(id: string): string {
  return join(labDir(id), 'lab.json');
}

/** Atomic replace, so a reader (or a clean-up after SIGKILL) never sees half a record. */
export function writeRecord(record: LabRecord): void {
  const file = recordFile(record.id);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readRecord(id: string): LabRecord | null {
  try {
    return JSON.parse(readFileSync(recordFile(id), 'utf8')) as LabRecord;
  } catch {
    return null;
  }
}

/** Every lab id with a directory here, recorded fully or not (a runner may die while creating one). */
export function listLabIds(): string[] {
  return entries(labsDir())
    .filter((n) => LAB_ID_PATTERN.test(n))
    .sort();
}

export function ownerAlive(record: Pick<LabRecord, 'owner'>): boolean {
  return identityAlive(record.owner);
}

/** The names in a directory; none when it does not exist. */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Creates `parent/name` holding one file, atomically: made aside as `.new-NAME-PID`, then renamed
 * into place, so nobody ever sees it without its content. False when `parent/name` exists.
 */
function createWithFile(parent: string, name: string, file: string, content: string): boolean {
  mkdirSync(parent, { recursive: true });
  if (existsSync(join(parent, name))) return false;
  const tmp = join(parent, `.new-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeFileSync(join(tmp, file), content);
  try {
    renameSync(tmp, join(parent, name));
    return true;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') return false;
    throw e;
  }
}

/** What createWithFile left half-made when its process died. */
function removeHalfMade(parent: string): void {
  for (const n of entries(parent)) {
    const m = /^\.new-.+-(\d+)$/.exec(n);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(parent, n), { recursive: true, force: true });
  }
}

/**
 * Records a new lab, claiming its id: the directory appears with its record already inside, so
 * there is never a lab directory without an owner to check.
 */
export function createRecord(record: LabRecord): void {
  const id = record.id;
  if (!LAB_ID_PATTERN.test(id)) throw new LabUsageError(`lab id '${id}' must be 1-8 lowercase letters or digits (it becomes part of interface names)`);
  if (!createWithFile(labsDir(), id, 'lab.json', JSON.stringify(record, null, 2) + '\n')) {
    throw new LabUsageError(`a lab with id '${id}' already exists (${labDir(id)}); pick another id, or remove it if its owner is gone: zkwarden lab clean`);
  }
}

/** Half-made records of runners that died while creating a lab. */
export function removeStaleNewRecords(): void {
  removeHalfMade(labsDir());
}

export function releaseId(id: string): void {
  rmSync(labDir(id), { recursive: true, force: true });
}

/** The /24s of 198.18.0.0/15 in the order a lab tries them. */
function candidateSubnets(): string[] {
  const out: string[] = [];
  for (const second of [18, 19]) for (let third = 0; third < 256; third++) out.push(`198.${second}.${third}`);
  return out;
}

/** A subnet the lab may use: inside 198.18.0.0/15, written as its first three octets. */
export function parseSubnet(text: string): string {
  const m = /^198\.(18|19)\.(\d{1,3})(?:\.0\/24)?$/.exec(text.trim());
  if (!m || Number(m[2]) > 255) throw new LabUsageError(`subnet '${text}' is not a /24 inside 198.18.0.0/15 (expected e.g. 198.18.88 or 198.18.88.0/24)`);
  return `198.${m[1]}.${Number(m[2])}`;
}

/** Records which lab holds which subnet; `inUse` lists subnets taken by addresses on this machine. */
export function claimSubnet(labId: string, inUse: Set<string>, preferred?: string): string {
  // A claim always names its lab and where its record is.
  const tryClaim = (subnet: string): boolean => !inUse.has(subnet) && createWithFile(subnetsDir(), subnet, 'lab', `${labId} ${labDir(labId)}\n`);
  if (preferred !== undefined) {
    if (tryClaim(preferred)) return preferred;
    throw new LabUsageError(`subnet ${preferred}.0/24 is in use (${subnetHolder(preferred) ?? 'by an address on this machine'}); choose another with --subnet`);
  }
  // Random order: labs started together do not all contend for the first free one.
  const all = candidateSubnets();
  for (let i = all.length - 1; i > 0; i--) {
    const j = randomBytes(2).readUInt16BE(0) % (i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  for (const subnet of all) if (tryClaim(subnet)) return subnet;
  throw new LabError('no free /24 left in 198.18.0.0/15');
}

function subnetHolder(subnet: string): string | null {
  try {
    return `by lab ${readClaim(subnet)?.lab ?? '?'}`;
  } catch {
    return null;
  }
}

function readClaim(subnet: string): { lab: string; record: string | null } | null {
  try {
    const [lab, record] = readFileSync(join(subnetsDir(), subnet, 'lab'), 'utf8')
      .trim()
      .split(' ');
    return lab ? { lab, record: record ?? null } : null;
  } catch {
    return null;
  }
}

/** Subnet claims and the lab holding each. */
export function subnetClaims(): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const subnet of entries(subnetsDir())) if (!subnet.startsWith('.')) out.set(subnet, readClaim(subnet)?.lab ?? null);
  return out;
}

/** Releases claims whose lab record is gone (wherever that record lived), and half-made claims of dead runners. */
export function releaseOrphanClaims(): void {
  removeHalfMade(subnetsDir());
  for (const name of entries(subnetsDir())) {
    const claim = name.startsWith('.') ? null : readClaim(name);
    if (claim?.record && !existsSync(claim.record)) rmSync(join(subnetsDir(), name), { recursive: true, force: true });
  }
}

export function releaseSubnet(subnet: string, labId: string): void {
  if (readClaim(subnet)?.lab !== labId) return;
  rmSync(join(subnetsDir(), subnet), { recursive: true, force: true });
}
