/**
 * A leader service: run several instances; one leads and takes the writes, the others send
 * clients to it. Each instance serves HTTP on a free loopback port and publishes that endpoint.
 *
 *   node leader-service.js 127.0.0.1:2181 node1      # in one terminal
 *   node leader-service.js 127.0.0.1:2181 node2      # in another
 *   curl -L -X PUT --data hello http://ENDPOINT/state   # at either: the follower redirects
 *   curl http://ENDPOINT/state
 *
 * The leader's writes are fenced: each one carries a check of its term, so a leader deposed
 * while it was stuck (paused, its disk hung) cannot overwrite its successor's state when it
 * wakes: ZooKeeper itself refuses the write.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, Election, FencedError, LeaderDiscovery, NodeExistsError } from 'zkwarden';

const [servers = '127.0.0.1:2181', name = `node-${process.pid}`] = process.argv.slice(2);
const ELECTION = '/example/leader';
const STATE = '/example/state';
const hex = (epoch: number): string => `0x${epoch.toString(16)}`;

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
  if (!election.isLeader()) {
    const leader = discovery.leader;
    // No leader, or a view of ourselves not yet updated: the client retries shortly.
    if (!leader || leader.endpoint === endpoint) return reply(res, 503, 'no leader right now, retry\n');
    return reply(res, 307, '', { location: `http://${leader.endpoint}/state` });
  }
  try {
    await election.writer().setData(STATE, value);
    reply(res, 200, `written by ${name}\n`);
  } catch (e) {
    if (!(e instanceof FencedError)) throw e;
    // Deposed while this request was on its way: nothing of it landed.
    reply(res, 409, `refused: ${e.message}\n`);
  }
}

// The endpoint is known once the server listens; requests are served once the election runs.
const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;

const discovery = new LeaderDiscovery(client, { path: ELECTION });
discovery.on('change', (leader) => {
  console.log(leader ? `leader: ${leader.name} at ${leader.endpoint}, epoch ${hex(leader.epoch)}` : 'leader: none');
});
await discovery.start();

const election = new Election(client, { path: ELECTION, candidate: { endpoint, name } });
election.on('elected', ({ term, resumed }) => console.log(`elected: epoch ${hex(term.epoch)}${resumed ? ' (resumed)' : ''}`));
election.on('deposed', ({ term, reason }) => console.log(`deposed: epoch ${hex(term.epoch)}, ${reason}`));
await election.join();
server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  handle(req, res).catch((e: unknown) => reply(res, 500, `${(e as Error).message}\n`));
});

async function shutdown(): Promise<void> {
  await election.leave(); // the successor leads now, not after a session timeout
  discovery.stop();
  server.close();
  await client.close();
  console.log(`${name} left`);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
console.log(`${name} serving on http://${endpoint}`);
