/**
 * Where the recipes keep their znodes, and the small rules every recipe shares: how candidate
 * znodes are named and ordered, how payloads are encoded, which client errors mean "the
 * connection is in doubt, wait for the session's verdict" rather than "this failed".
 *
 * Default layout (the seed cluster's, see docs/recipes.md):
 *   /zbs/meta/__mj_j                    election: persistent parent; its data is the current term's claim
 *   /zbs/meta/__mj_j/<prefix>0000000042 one ephemeral-sequential znode per candidate (JSON payload)
 *   /zbs/meta/__mj_cluster/IP:PORT      one ephemeral znode per member (JSON payload)
 */
import {
  ClientClosedError,
  ConnectionLossError,
  NodeExistsError,
  OperationTimeoutError,
  SessionExpiredError,
  validatePath,
  type ACL,
  type ZooKeeperClient,
} from '../zk/index.ts';
import { FencedError, RecipeUsageError } from './errors.ts';

export const DEFAULT_ELECTION_PATH = '/zbs/meta/__mj_j';
export const DEFAULT_MEMBERS_PATH = '/zbs/meta/__mj_cluster';
/** Candidate znodes are `<prefix><10-digit sequence>`; the seed's names carry no prefix. */
export const DEFAULT_CANDIDATE_PREFIX = '';

/** A candidate znode name split into its sequence number (the election order). */
export interface CandidateName {
  name: string;
  sequence: number;
}

/**
 * The candidate znodes among `children`, lowest sequence first. Children that are not
 * `<prefix><10 digits>` (other tools' nodes under the same parent) take no part.
 */
export function sortCandidates(children: readonly string[], prefix: string): CandidateName[] {
  const out: CandidateName[] = [];
  for (const name of children) {
    if (name.length !== prefix.length + 10 || !name.startsWith(prefix)) continue;
    const digits = name.slice(prefix.length);
    if (!/^\d{10}$/.test(digits)) continue;
    out.push({ name, sequence: Number(digits) });
  }
  return out.sort((a, b) => a.sequence - b.sequence);
}

export function checkRecipePath(path: string, argument: string): void {
  try {
    validatePath(path, argument);
  } catch (e) {
    // The client's message already names the argument ("invalid path: ..."); keep the reason.
    throw new RecipeUsageError(argument, (e as Error).message.replace(/^invalid [^:]+: /, ''));
  }
  if (path === '/') throw new RecipeUsageError(argument, 'the root cannot be a recipe path');
}

export function checkPrefix(prefix: string): void {
  if (prefix.includes('/')) throw new RecipeUsageError('prefix', `"${prefix}" must not contain /`);
  if (/\d$/.test(prefix)) throw new RecipeUsageError('prefix', `"${prefix}" must not end in a digit (the sequence would be ambiguous)`);
}

/**
 * Creates path and its missing ancestors as persistent nodes (concurrent creators are fine),
 * with `acl` (default: open). Nodes already there keep theirs.
 */
export async function ensurePath(client: ZooKeeperClient, path: string, timeoutMs?: number, acl?: readonly ACL[]): Promise<void> {
  const parts = path.split('/').filter(Boolean);
  let p = '';
  for (const part of parts) {
    p += `/${part}`;
    // exists first: most calls find the path there, and a read is cheaper than a failing write.
    if ((await client.exists(p, { timeoutMs })) !== null) continue;
    try {
      await client.create(p, null, { timeoutMs, acl });
    } catch (e) {
      if (!(e instanceof NodeExistsError)) throw e;
    }
  }
}

/**
 * Errors after which the outcome is up to the session: the connection dropped or the request
 * timed out (the session may live on: the `reconnected` handler takes over), or the session is
 * over (the `expired`/`closed` handlers take over). Recipes stop their current step on these.
 */
export function isSessionTrouble(e: unknown): boolean {
  return (
    e instanceof ConnectionLossError ||
    e instanceof OperationTimeoutError ||
    e instanceof SessionExpiredError ||
    e instanceof ClientClosedError ||
    (e instanceof FencedError && e.reason === 'sessionExpired')
  );
}

export function encodePayload(value: Record<string, unknown>): string {
  return JSON.stringify(value);
}

/** A znode's JSON object payload; anything else (another tool's bytes) reads as `{ raw }`. */
export function decodePayload(data: Buffer): Record<string, unknown> {
  const text = data.toString('utf8');
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { raw: text };
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
