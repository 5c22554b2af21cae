/** CPU time of another process from /proc, as the client benchmark reads it for the servers. */
import { readFileSync } from 'node:fs';

/** /proc reports CPU time in clock ticks of USER_HZ = 100 per second on Linux: 10 ms each. */
export const CLOCK_TICK_US = 10_000;

/** User + system CPU of a whole process (every thread, live or ended) in clock ticks; 0 when it is gone. */
export function procCpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
