/**
 * What the chunks and the meta say to each other on the meta port, and what every service tells
 * the lab's runner on its stdout (a pipe, never a file: the runner must hear a service whose
 * disk hangs).
 *
 * Requests and replies are one JSON object per line. A chunk's `write` is a state change the meta
 * leader accepts only after appending it to its data file (its disk) and journalling it in
 * ZooKeeper through a fenced write; the reply carries the leader's epoch, so a chunk can tell
 * which term acknowledged it. `ping` is answered from memory (the guard's endpoint probe).
 */

export interface MetaRequest {
  id: number;
  op: 'write' | 'ping';
  /** For writes: `<chunk node>-<seq>`, the journal znode's name. */
  key?: string;
}

export interface MetaReply {
  id: number;
  ok: boolean;
  /** The epoch of the term that accepted the write. */
  epoch?: number;
  /** Error code in the seed's style: ENotLeader, EFenced, EIO, ... */
  error?: string;
  /** On ENotLeader: who this meta believes leads. */
  leader?: string | null;
}

/** Splits a stream into lines (bounded: a line longer than `max` bytes is cut and reported). */
export class Lines {
  private buf = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly max = 64 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length > 0) this.onLine(line);
    }
    if (this.buf.length > this.max) this.buf = '';
  }
}

export function parseJsonLine<T>(line: string): T | null {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' ? (v as T) : null;
  } catch {
    return null;
  }
}

/**
 * A service's events to the runner. Every event has `ev` and `at` (ms since the epoch, the
 * service's clock: the same machine's). Secrets appear in exactly one event, `session`, which
 * the runner keeps in memory for the explicit remedy step and never logs or records.
 */
export type ServiceEvent =
  | { ev: 'hello'; at: number; pid: number; service: string; node: string; endpoint?: string }
  | { ev: 'ready'; at: number }
  | { ev: 'session'; at: number; id: string; password: string }
  | { ev: 'elected'; at: number; epoch: number; znode: string; resumed: boolean }
  | { ev: 'deposed'; at: number; epoch: number; reason: string }
  | { ev: 'served'; at: number; op: string; key?: string; epoch: number; ms: number }
  | { ev: 'lateWrite'; at: number; key: string; epoch: number; outcome: 'refused' | 'accepted' | 'failed'; reason: string }
  | { ev: 'request'; at: number; key: string; ok: boolean; endpoint: string; epoch?: number; ms: number; error?: string }
  | { ev: 'ack'; at: number; key: string; epoch: number; endpoint: string }
  | { ev: 'leader'; at: number; endpoint: string | null; epoch: number | null }
  | { ev: 'state'; at: number; state: string }
  | { ev: 'suspect'; at: number; epoch: number | null }
  | { ev: 'scavenged'; at: number; run: number }
  | { ev: 'warning'; at: number; message: string }
  | { ev: 'fatal'; at: number; message: string };

export type ServiceEventKind = ServiceEvent['ev'];

/** Writes events to stdout; a closed pipe (the runner gone) is ignored: the lab's clean-up ends us. */
export function eventWriter(): (e: Record<string, unknown> & { ev: string }) => void {
  process.stdout.on('error', () => undefined);
  return (e) => {
    process.stdout.write(`${JSON.stringify({ ...e, at: Date.now() }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
  };
}
