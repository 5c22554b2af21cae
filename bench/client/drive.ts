/** The closed loop every in-process client is measured with, shared by the runner and by node-driver.ts. */

/**
 * Requests [from, to) of one op with `concurrency` outstanding: that many workers, each awaiting
 * its request and sending the next. Appends each request's latency and start (ms, monotonic clock)
 * to `lat` and `starts`, and with `dump` a line per request (start in the slice, latency, index);
 * returns the wall time in ms and this process's CPU time (all threads) in µs.
 */
export async function drive(
  from: number,
  to: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
  lat: number[],
  starts: number[],
  dump: string[] | null = null,
): Promise<[number, number]> {
  let next = from;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= to) return;
      const s = process.hrtime.bigint();
      await fn(i);
      const l = Number(process.hrtime.bigint() - s) / 1e6;
      lat.push(l);
      starts.push(Number(s) / 1e6);
      if (dump) dump.push(`${Number(s - t0) / 1e6}\t${l}\t${i - from}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  const cpu = process.cpuUsage(c0);
  return [Number(process.hrtime.bigint() - t0) / 1e6, cpu.user + cpu.system];
}
