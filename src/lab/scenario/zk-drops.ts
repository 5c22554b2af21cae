/**
 * The ZooKeeper leader's drops of a follower, read from the leader's log as it grows.
 *
 * ZooKeeper 3.8 says why it drops a follower and whom it dropped in two lines from two threads:
 * the leader's thread logs "Closing connection to peer due to transaction timeout." (no address;
 * `LearnerHandler.ping`) and closes the socket; the follower's `LearnerHandler` thread then fails
 * its read and logs "******* GOODBYE /ip:port ********" as it ends. The two lines can land in two
 * different reads of the file, so the reason waiting for its GOODBYE is kept between reads: a
 * reader that forgot it called a transaction timeout "other" (1 run in 10 of `hba-hang`). A reason
 * pairs only with a GOODBYE that follows it closely: the close is immediate, and a reason whose
 * GOODBYE never came (the server was killed in between) must not name the next drop's cause.
 */
import { parseLog4j } from '../../forensics/logs/formats.ts';

/** How long after its reason a follower's GOODBYE may come (ms); in practice it is a few ms. */
const PAIR_WINDOW_MS = 5000;

export type DropReason = 'transaction timeout' | 'read timeout' | 'other';

export interface LoggedDrop {
  /** When ZooKeeper decided (the reason's line), or the GOODBYE's time when no reason preceded it. */
  at: number;
  /** The dropped follower's address, as the GOODBYE names it; null if the line has none. */
  ip: string | null;
  reason: DropReason;
  /** The lines it was read from. */
  line: string;
}

/** One server's log: feed it the complete lines read so far, in order, and take the drops. */
export class DropScanner {
  private pending: { at: number; reason: DropReason; line: string } | null = null;

  feed(lines: Iterable<string>): LoggedDrop[] {
    const drops: LoggedDrop[] = [];
    for (const line of lines) {
      if (line.includes('Closing connection to peer due to transaction timeout')) {
        this.pending = { at: log4jTime(line), reason: 'transaction timeout', line };
      } else if (line.includes('GOODBYE')) {
        const at = log4jTime(line);
        // The window is checked only when both lines have a time (a NaN compares false).
        const pending = this.pending !== null && !(at - this.pending.at > PAIR_WINDOW_MS) ? this.pending : null;
        this.pending = null;
        drops.push({
          at: pending?.at ?? at,
          ip: /GOODBYE \/(\d+\.\d+\.\d+\.\d+):/.exec(line)?.[1] ?? null,
          reason: pending?.reason ?? 'other',
          line: pending ? `${pending.line}\n${line}` : line,
        });
      } else if (/SocketTimeoutException|Read timed out/.test(line) && line.includes('LearnerHandler')) {
        this.pending = { at: log4jTime(line), reason: 'read timeout', line };
      }
    }
    return drops;
  }
}

/** A log4j line's time (`2026-12-01 23:31:05,834`, local time, as the server wrote it) in ms; NaN if the line has none. */
export function log4jTime(line: string): number {
  const head = parseLog4j(line);
  return head ? new Date(head.y, head.mo - 1, head.d, head.h, head.mi, head.s, head.ms).getTime() : NaN;
}
