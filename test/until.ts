/** Polls `fn` until it holds; fails naming `what` after `timeoutMs`. Shared by the tests that wait on a real ensemble. */
import { setTimeout as sleep } from 'node:timers/promises';

export async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
