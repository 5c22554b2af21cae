/**
 * Reading a ZooKeeper snapshot: what a server's newest snapshot holds under a path, streamed
 * (snapshots of any size are read in bounded memory) and checksum-verified.
 *
 *   node read-snapshot.js /var/lib/zookeeper           # a dataDir (with version-2/ inside)
 *   node read-snapshot.js /var/lib/zookeeper/version-2/snapshot.100000000 /app
 *
 * A file that is not an intact snapshot gives one line naming the file, the offset and what was
 * expected there, and exit code 2.
 */
import { statSync } from 'node:fs';
import { openDataDir, readSnapshot, ZkDataError, DataDirError } from 'zkwarden/forensics';

const [target, prefix = '/'] = process.argv.slice(2);
if (!target) {
  console.error('usage: read-snapshot DATADIR|SNAPSHOT [PATH]');
  process.exit(2);
}

const found = statSync(target, { throwIfNoEntry: false });
if (!found) {
  console.error(`${target}: no such file or directory`);
  process.exit(2);
}

try {
  let file = target;
  if (found.isDirectory()) {
    const newest = openDataDir(target).snapshots.at(-1);
    if (!newest) throw new DataDirError(target, 'holds no snapshot');
    file = newest.path;
  }
  const under = (path: string): boolean => prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
  const summary = await readSnapshot(file, {
    node(n) {
      if (!under(n.path)) return;
      const owner = n.stat.ephemeralOwner === 0n ? '' : ` ephemeral of 0x${n.stat.ephemeralOwner.toString(16)}`;
      console.log(`${n.path}  ${n.data?.length ?? 0} bytes, version ${n.stat.version}, czxid 0x${n.stat.czxid.toString(16)}${owner}`);
    },
  });
  console.log(
    `${summary.file}: ${summary.nodeCount} znodes, ${summary.sessionCount} sessions, last zxid 0x${summary.maxNodeZxid.toString(16)}, checksum ${summary.checksum.ok ? 'ok' : 'MISMATCH'}`,
  );
} catch (e) {
  if (!(e instanceof ZkDataError || e instanceof DataDirError)) throw e;
  console.error(e.message);
  process.exit(2);
}
