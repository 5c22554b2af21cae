/**
 * A membership watcher: registers this instance as a member of the cluster (an ephemeral znode
 * that lives as long as its session) and prints who joins and leaves, as they do.
 *
 *   node membership-watcher.js 127.0.0.1:2181 10.1.88.101:10100 chunk
 *
 * An instance that stops cleanly unregisters at once; one that dies leaves when ZooKeeper
 * expires its session (the session timeout, 6 s here).
 */
import { createClient, MembersWatcher, registerMember, unregisterMember, type Member } from 'zkwarden';

const [servers = '127.0.0.1:2181', endpoint = `127.0.0.1:${process.pid}`, role = 'worker'] = process.argv.slice(2);
const path = '/example/members';

const client = createClient(servers, { sessionTimeoutMs: 6000 });
client.on('expired', () => {
  // Our znode went with the session: this instance is no member any more. Exit and let the
  // supervisor start it again, rather than carry on unseen.
  console.log('session expired: no longer a member');
  process.exit(1);
});
await client.connect({ timeoutMs: 15_000 });

const list = (members: Member[]): string => members.map((m) => `${m.endpoint} (${String(m.metadata.role)})`).join(', ') || 'none';

const watcher = new MembersWatcher(client, { path });
watcher.on('change', (members, joined, left) => {
  for (const m of joined) console.log(`joined: ${m.endpoint}`);
  for (const m of left) console.log(`left: ${m.endpoint}`);
  console.log(`members: ${list(members)}`);
});
watcher.on('warning', (e) => console.error(`warning: ${e.message}`));

await registerMember(client, endpoint, { role, pid: process.pid }, { path });
console.log(`registered ${endpoint} as ${role}`);

async function shutdown(): Promise<void> {
  watcher.stop();
  await unregisterMember(client, endpoint, { path });
  await client.close();
  console.log(`unregistered ${endpoint}`);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());

await watcher.start(); // the first 'change' lists everyone already there
