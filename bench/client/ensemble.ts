/** The ensemble every client benchmark runs against (run.ts, cost.ts): the same servers, the same settings. */
import type { EnsembleOptions } from '../../src/lab/ensemble.ts';

export const BENCH_ENSEMBLE: EnsembleOptions = {
  size: 3,
  tickTime: 2000,
  fastStartup: false,
  heapMb: 512,
  // No snapshot during the run: a snapshot is a burst of server CPU that lands in whichever
  // client's slice is running, noise for a comparison (the transaction log just grows).
  snapCount: 10_000_000,
  // forceSync=no: the servers do not fsync each write, so write figures show the clients and
  // the servers' CPU rather than this machine's disk (every client gets the same setting).
  extraConfig: { forceSync: 'no' },
};
