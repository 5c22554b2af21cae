/**
 * Keeps a view of ZooKeeper state fresh, for discovery, membership and the election alike: one
 * read at start, another whenever a watch that read left fires or the client reconnects (watches
 * may have been missed while disconnected), serialized so at most one read is in flight and one
 * waits. A read that fails on a live connection (a timeout) has no such trigger, so it is retried
 * after a pause.
 */
import type { ZooKeeperClient } from '../zk/index.ts';
import { isSessionTrouble } from './layout.ts';

export interface WatchedReadStartOptions {
  /**
   * A first read that fails for a reason other than the session's (no permission on the path,
   * say) rejects `start()` and stops the follower, instead of warning and retrying: for a caller
   * whose start must fail loudly (an election's join). Default false.
   */
  firstReadThrows?: boolean;
}

export class WatchedRead {
  private readonly client: ZooKeeperClient;
  /** Reads and applies the view; `onWatch` is the watch to leave on what it read. */
  private readonly read: (onWatch: () => void) => Promise<void>;
  private readonly onWarning: (err: Error) => void;
  private readonly retryDelayMs: number;
  private _running = false;
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly onReconnected = (): void => this.refresh();
  private readonly onWatch = (): void => {
    if (this._running) this.refresh();
  };

  constructor(client: ZooKeeperClient, read: (onWatch: () => void) => Promise<void>, onWarning: (err: Error) => void, retryDelayMs = 1000) {
    this.client = client;
    this.read = read;
    this.onWarning = onWarning;
    this.retryDelayMs = retryDelayMs;
  }

  get running(): boolean {
    return this._running;
  }

  /** Starts following; resolves after the first read. */
  async start(options: WatchedReadStartOptions = {}): Promise<void> {
    if (this._running) return;
    this._running = true;
    this.client.on('reconnected', this.onReconnected);
    if (!options.firstReadThrows) {
      this.refresh();
      await this.chain;
      return;
    }
    try {
      await this.run(() => this.read(this.onWatch));
    } catch (e) {
      if (!isSessionTrouble(e)) {
        this.stop();
        throw e;
      }
      this.onFailure(e);
    }
  }

  stop(): void {
    this._running = false;
    this.client.off('reconnected', this.onReconnected);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Reads again (serialized: at most one read in flight and one waiting). */
  refresh(): void {
    if (this.queued || !this._running) return;
    this.queued = true;
    this.chain = this.chain.then(async () => {
      this.queued = false;
      if (!this._running) return;
      try {
        await this.read(this.onWatch);
      } catch (e) {
        this.onFailure(e);
      }
    });
  }

  /**
   * Runs `task` in the same serialized line as the reads (after the one in flight and the one
   * waiting) and hands its outcome to the caller: for changes that must not interleave with a
   * read (an election giving up its znode).
   */
  run<T>(task: () => Promise<T>): Promise<T> {
    const done = this.chain.then(task);
    this.chain = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** Resolves once no read is in flight or waiting (reads queued by reads included). */
  async idle(): Promise<void> {
    for (;;) {
      const c = this.chain;
      await c;
      if (c === this.chain) return;
    }
  }

  private onFailure(e: unknown): void {
    if (!this._running) return;
    // A lost connection: the reconnect reads again.
    if (isSessionTrouble(e)) {
      if (this.client.state !== 'connected') return;
    } else {
      this.onWarning(e instanceof Error ? e : new Error(String(e)));
    }
    if (!this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.refresh();
      }, this.retryDelayMs);
    }
  }
}
