/**
 * The leader service of leader-service.ts, guarded: an instance leads only while it can really
 * work. Start each instance under its watchdog, with the directory it keeps its data in:
 *
 *   zkwarden guard run --servers 127.0.0.1:2181 --name node1 -- \
 *     node guarded-leader-service.js 127.0.0.1:2181 node1 /var/lib/example/node1
 *   zkwarden guard run --servers 127.0.0.1:2181 --name node2 -- \
 *     node guarded-leader-service.js 127.0.0.1:2181 node2 /var/lib/example/node2
 *   curl -L -X PUT --data hello http://ENDPOINT/state   # at either: the follower redirects
 *
 * Two defences stand between a stuck leader and its clients (docs/guard.md):
 *
 * - the in-process gate checks the data disk every 200 ms (create, write, fsync, unlink a file,
 *   on a thread of its own, so a hung disk never blocks the service's own file work). A disk that
 *   fails or stalls makes the leader resign within about 3 s: it stops leading, closes its
 *   session, and the next instance leads. It stands again (at the back of the queue) once the
 *   disk has answered for a second;
 * - the watchdog (`zkwarden guard run`, which starts this program and hands it a channel on fd 3)
 *   hears its heartbeats. If this process stops running its code (frozen, or its main thread
 *   stuck in a write to a dead disk, where even kill -9 waits), the watchdog ends its ZooKeeper
 *   session from outside after 2 s of silence, then kills it.
 *
 * Writes are fenced by the guard's current term: a write of a term that has ended fails with
 * FencedError and lands nowhere. Run without `guard run`, the gate still guards and the
 * program says that no watchdog is watching.
 */
import { appendFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createClient, FencedError, LeaderDiscovery, NodeExistsError } from 'zkwarden';
import { Guard, diskProbe } from 'zkwarden/guard';

const [servers = '127.0.0.1:2181', name = `node-${process.pid}`, dataDir = '.'] = process.argv.slice(2);
const ELECTION = '/example/guarded-leader';
const STATE = '/example/guarded-state';
const hex = (epoch: number): string => `0x${epoch.toString(16)}`;

// Reads and discovery use a session of their own: the guard's sessions come and go with its
// candidacy (it closes one to resign and opens a new one to stand again).
const client = createClient(servers, { sessionTimeoutMs: 6000 });
await client.connect({ timeoutMs: 15_000 });
for (const path of ['/example', STATE]) {
  await client.create(path, '').catch((e: unknown) => {
    if (!(e instanceof NodeExistsError)) throw e;
  });
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers).end(text);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url !== '/state') return reply(res, 404, 'only /state\n');
  if (req.method === 'GET') return reply(res, 200, (await client.getData(STATE)).data.toString('utf8'));
  if (req.method !== 'PUT') return reply(res, 405, 'GET or PUT\n');
  const value = await body(req);
  if (!guard.isLeader()) {
    const leader = discovery.leader;
    if (!leader || leader.endpoint === endpoint) return reply(res, 503, 'no leader right now, retry\n');
    return reply(res, 307, '', { location: `http://${leader.endpoint}/state` });
  }
  try {
    // The leader's own record first (its data disk), then the shared state, fenced by its term.
    await appendFile(join(dataDir, 'journal'), `${value}\n`);
    await guard.writer().setData(STATE, value);
    reply(res, 200, `written by ${name}\n`);
  } catch (e) {
    if (!(e instanceof FencedError)) throw e;
    reply(res, 409, `refused: ${e.message}\n`);
  }
}

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;

const discovery = new LeaderDiscovery(client, { path: ELECTION });
discovery.on('change', (leader) => {
  console.log(leader ? `leader: ${leader.name} at ${leader.endpoint}, epoch ${hex(leader.epoch)}` : 'leader: none');
});
await discovery.start();

const guard = new Guard({
  connectString: servers,
  election: { path: ELECTION, candidate: { endpoint, name } },
  probes: [diskProbe({ dir: dataDir })],
  // watchdog: 'env' (the default) takes the channel `zkwarden guard run` hands over, if any.
});
guard.on('elected', ({ term, resumed }) => console.log(`elected: epoch ${hex(term.epoch)}${resumed ? ' (resumed)' : ''}`));
guard.on('deposed', ({ term, reason }) => console.log(`deposed: epoch ${hex(term.epoch)}, ${reason}`));
guard.on('decision', (d) => {
  if (d.kind === 'resign') console.log(`resigning: ${String(d.detail.failures)}`);
  if (d.kind === 'stood') console.log('standing: a candidate again');
});
guard.on('warning', (e) => console.error(`warning: ${e.message}`));
server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  handle(req, res).catch((e: unknown) => reply(res, 500, `${(e as Error).message}\n`));
});
await guard.start(); // once the disk has answered: a session, registered with the watchdog, then the election

async function shutdown(): Promise<void> {
  await guard.stop(); // leaves the election (the successor leads at once) and tells the watchdog BYE
  discovery.stop();
  server.close();
  await client.close();
  console.log(`${name} left`);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
console.log(`watchdog: ${guard.status().watchdog === 'none' ? 'none (run me under zkwarden guard run)' : 'watching'}`);
console.log(`${name} serving on http://${endpoint} (pid ${process.pid})`);
