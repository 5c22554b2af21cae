/**
 * The last-resort clean-up of what the lab starts (JVMs, labs), in one place, so their order is
 * explicit: on SIGINT/SIGTERM/SIGHUP the asynchronous clean-ups run first (bounded), then the
 * synchronous ones, then the process dies of the signal as it would have; on 'exit' (an uncaught
 * error, process.exit) only the synchronous ones can run.
 */
const syncCleanups = new Set<() => void>();
const asyncCleanups = new Set<() => Promise<unknown>>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** An asynchronous clean-up that hangs must not keep a signalled process alive. */
const ASYNC_BOUND_MS = 30_000;
let installed = false;

function runSync(): void {
  for (const fn of [...syncCleanups]) {
    try {
      fn();
    } catch {
      // an exit hook has no one to report to
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runSync);
  let handling = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    // A second signal while cleaning (another hook re-raising it, an impatient Ctrl-C) waits for the first.
    if (handling) return;
    handling = true;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ASYNC_BOUND_MS);
    });
    void Promise.race([Promise.allSettled([...asyncCleanups].map((fn) => fn())), bound]).then(() => {
      clearTimeout(timer);
      runSync();
      for (const s of SIGNALS) process.removeListener(s, onSignal);
      process.kill(process.pid, sig);
    });
  };
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Runs `fn` when the process exits or is signalled; returns the function that unregisters it. */
export function onExitSync(fn: () => void): () => void {
  install();
  syncCleanups.add(fn);
  return () => syncCleanups.delete(fn);
}

/** Runs `fn` (awaited, bounded) when the process is signalled, before the synchronous clean-ups. */
export function onSignalAsync(fn: () => Promise<unknown>): () => void {
  install();
  asyncCleanups.add(fn);
  return () => asyncCleanups.delete(fn);
}
