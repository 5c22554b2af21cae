/**
 * How the reference cluster's services open their ZooKeeper sessions: in the order the node's
 * connect string gives (no shuffling, as the seed's services were configured), retried until
 * one connects, each failure reported to the caller's log. A service without ZooKeeper cannot
 * do its job, so it waits for it rather than exiting.
 */
import { createClient, type ZooKeeperClient } from '../../zk/index.ts';

export async function openSession(connectString: string, sessionTimeoutMs: number, onFailure: (e: Error) => void): Promise<ZooKeeperClient> {
  for (;;) {
    const client = createClient(connectString, { sessionTimeoutMs, shuffleServers: false });
    try {
      await client.connect({ timeoutMs: 10_000 });
      return client;
    } catch (e) {
      onFailure(e as Error);
      await client.close({ timeoutMs: 1000 }).catch(() => undefined);
    }
  }
}
