// The client's session state machine, deterministically: the transition table itself (every
// move the table does not list is refused), then every legal move driven by a scripted TCP
// server (test/zk/fixtures/scripted-server.ts) that answers exactly what the test says. These are
// the only client tests without real ZooKeeper: the moves they drive (a handshake answered and
// closed in one write, a SessionExpired reply while closing, silence after a granted session)
// are ones a real server produces only by chance.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStateMachine, TRANSITIONS, sessionTiming, type ClientState, type Transition } from '../../src/zk/session-state.ts';
import {
  AuthFailedError,
  ClientClosedError,
  ConnectionLossError,
  SessionExpiredError,
  createClient,
  type ClientOptions,
  type ZooKeeperClient,
} from '../../src/zk/index.ts';
import { OpCode } from '../../src/zk/protocol.ts';
import { ScriptedConnection, ScriptedServer } from './fixtures/scripted-server.ts';

const STATES: ClientState[] = ['idle', 'connecting', 'connected', 'suspended', 'closing', 'closed', 'expired', 'authFailed'];

function transitionTo(to: ClientState): Transition<null> {
  switch (to) {
    case 'connected':
      return { to, info: { sessionId: 1n, server: 's', readOnly: false, timeoutMs: 1 }, connection: null };
    case 'suspended':
      return { to, server: 's', reason: new Error('x') };
    case 'closed':
      return { to, result: { session: 'none', sessionId: 0n } };
    case 'expired':
      return { to, reason: 'server', sessionId: 1n };
    case 'authFailed':
      return { to, scheme: 'x' };
    default:
      return { to } as Transition<null>;
  }
}

/** A machine put into `state` along legal moves, recording effects and events. */
function machineIn(state: ClientState): { m: SessionStateMachine<null>; effects: string[]; events: string[] } {
  const effects: string[] = [];
  const events: string[] = [];
  const m = new SessionStateMachine<null>({ effects: (from, t) => void effects.push(`${from}->${t.to}`), deliver: (e) => void events.push(e) });
  const path: Record<ClientState, ClientState[]> = {
    idle: [],
    connecting: ['connecting'],
    connected: ['connecting', 'connected'],
    suspended: ['connecting', 'connected', 'suspended'],
    closing: ['connecting', 'connected', 'closing'],
    closed: ['closed'],
    expired: ['connecting', 'expired'],
    authFailed: ['connecting', 'connected', 'authFailed'],
  };
  for (const s of path[state]) assert.ok(m.to(transitionTo(s)), `setting up ${state}: ${s}`);
  effects.length = 0;
  events.length = 0;
  return { m, effects, events };
}

describe('the transition table', () => {
  it('allows exactly the moves it lists; every other move is refused with no effect and no event', () => {
    let legal = 0;
    for (const from of STATES) {
      for (const to of STATES) {
        const { m, effects, events } = machineIn(from);
        const allowed = TRANSITIONS[from][to] !== undefined;
        assert.equal(m.can(to), allowed, `${from} -> ${to}`);
        assert.equal(m.to(transitionTo(to)), allowed, `${from} -> ${to}`);
        if (allowed) {
          legal++;
          assert.equal(m.state, to);
          assert.deepEqual(effects, [`${from}->${to}`]);
          const event = TRANSITIONS[from][to];
          assert.deepEqual(events, event ? [event] : []);
        } else {
          assert.equal(m.state, from, `${from} -> ${to} refused`);
          assert.deepEqual(effects, []);
          assert.deepEqual(events, []);
        }
      }
    }
    assert.equal(legal, 17);
    assert.deepEqual(TRANSITIONS.closed, {}, 'closed is final');
  });

  it('delivers events in the order of the moves, even when a listener moves the machine again', () => {
    const log: string[] = [];
    const m: SessionStateMachine<null> = new SessionStateMachine<null>({
      effects: (from, t) => void log.push(`effects ${from}->${t.to}`),
      deliver: (e) => {
        log.push(`begin ${e}`);
        if (e === 'suspended') m.to(transitionTo('closed'));
        log.push(`end ${e} (state ${m.state})`);
      },
    });
    m.to(transitionTo('connecting'));
    m.to(transitionTo('connected'));
    m.to(transitionTo('suspended'));
    assert.deepEqual(log, [
      'effects idle->connecting',
      'effects connecting->connected',
      'begin connected',
      'end connected (state connected)',
      'effects connected->suspended',
      'begin suspended',
      // The listener's move runs its effects at once; its event waits until 'suspended' is out.
      'effects suspended->closed',
      'end suspended (state closed)',
      'begin closed',
      'end closed (state closed)',
    ]);
  });

  it('refuses a legal move requested from inside the effects of another (a bug), and allows a refused one', () => {
    const m: SessionStateMachine<null> = new SessionStateMachine<null>({
      effects: (_from, t) => {
        if (t.to === 'connected') assert.equal(m.to(transitionTo('connecting')), false); // illegal from connected: harmless
        if (t.to === 'suspended') m.to(transitionTo('closed'));
      },
      deliver: () => undefined,
    });
    m.to(transitionTo('connecting'));
    m.to(transitionTo('connected'));
    assert.throws(() => m.to(transitionTo('suspended')), /inside the effects/);
  });

  it('timing follows the session timeout as ClientCnxn does: T/N per server, 2T/3 read, a ping after half of that (at most 10 s)', () => {
    assert.deepEqual(sessionTiming(6000, 3), { connectTimeoutMs: 2000, readTimeoutMs: 4000, pingIntervalMs: 2000 });
    assert.deepEqual(sessionTiming(40_000, 2), { connectTimeoutMs: 20_000, readTimeoutMs: 26_666, pingIntervalMs: 10_000 });
    assert.deepEqual(sessionTiming(600, 5), { connectTimeoutMs: 250, readTimeoutMs: 400, pingIntervalMs: 200 });
    assert.deepEqual(sessionTiming(6000, 3, 700), { connectTimeoutMs: 700, readTimeoutMs: 4000, pingIntervalMs: 2000 });
  });
});

describe('the client against a scripted server', () => {
  const servers: ScriptedServer[] = [];
  const clients: ZooKeeperClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close({ timeoutMs: 100 });
    for (const s of servers.splice(0)) await s.close();
  });

  async function server(): Promise<ScriptedServer> {
    const s = await ScriptedServer.start();
    servers.push(s);
    return s;
  }

  function client(connectString: string, opts: ClientOptions = {}): { zk: ZooKeeperClient; log: string[] } {
    const zk = createClient(connectString, { shuffleServers: false, sessionTimeoutMs: 4000, ...opts });
    clients.push(zk);
    const log: string[] = [];
    for (const e of ['connected', 'suspended', 'reconnected', 'expired', 'closed', 'authFailed'] as const) {
      zk.on(e, (info?: unknown) => {
        const detail = e === 'expired' ? ` ${(info as { reason: string }).reason}` : e === 'closed' ? ` ${(info as { session: string }).session}` : '';
        log.push(`${e}${detail}`);
      });
    }
    return { zk, log };
  }

  /** Connects through the scripted server, which grants `timeOut`. */
  async function connected(s: ScriptedServer, zk: ZooKeeperClient, timeOut = 4000, sessionId = 0x42n): Promise<ScriptedConnection> {
    const p = zk.connect();
    const c = await s.connection();
    await c.connectRequest;
    c.grant({ timeOut, sessionId });
    await p;
    return c;
  }

  it('connecting -> connected -> suspended -> connected (reconnected) -> closing -> closed, with the same session', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    assert.equal(zk.state, 'idle');
    const p = zk.connect();
    assert.equal(zk.state, 'connecting');
    const c1 = await s.connection();
    assert.equal((await c1.connectRequest).sessionId, 0n);
    c1.grant({ timeOut: 4000, sessionId: 0x42n });
    assert.equal((await p).sessionId, 0x42n);
    assert.equal(zk.state, 'connected');
    const suspended = new Promise((resolve) => zk.once('suspended', resolve));
    c1.drop();
    await suspended;
    assert.equal(zk.state, 'suspended');
    const c2 = await s.connection();
    assert.equal((await c2.connectRequest).sessionId, 0x42n, 'the reconnect asks for the same session');
    const reconnected = new Promise((resolve) => zk.once('reconnected', resolve));
    c2.grant({ timeOut: 4000, sessionId: 0x42n });
    await reconnected;
    const closing = zk.close();
    assert.equal(zk.state, 'closing');
    await assert.rejects(zk.getData('/'), ClientClosedError);
    const req = await c2.request('closeSession');
    assert.equal(req.type, OpCode.closeSession);
    c2.reply(req.xid);
    assert.deepEqual(await closing, { session: 'closed', sessionId: 0x42n });
    assert.equal(zk.state, 'closed');
    assert.deepEqual(log, ['connected', 'suspended', 'reconnected', 'closed closed']);
    assert.deepEqual(await zk.close(), { session: 'closed', sessionId: 0x42n }, 'idempotent');
  });

  it('a handshake answered and closed in one write: connected, suspended, and the search starts again (loop restart)', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    const p = zk.connect();
    const c1 = await s.connection();
    await c1.connectRequest;
    const reconnected = new Promise((resolve) => zk.once('reconnected', resolve));
    c1.grant({ timeOut: 4000, sessionId: 0x7n }, true);
    await p;
    const c2 = await s.connection();
    assert.equal((await c2.connectRequest).sessionId, 0x7n);
    c2.grant({ timeOut: 4000, sessionId: 0x7n });
    await reconnected;
    assert.deepEqual(log, ['connected', 'suspended', 'reconnected']);
    assert.equal(zk.state, 'connected');
  });

  it('suspended -> expired (server): the reconnect is told the session is gone', async () => {
    const s = await server();
    const { zk, log } = client(s.address, { localExpiry: false });
    const c1 = await connected(s, zk);
    const queued = new Promise<unknown>((resolve) => zk.once('suspended', () => resolve(zk.getData('/q').catch((e: unknown) => e))));
    c1.drop();
    const c2 = await s.connection();
    await c2.connectRequest;
    c2.grant({ timeOut: 0, sessionId: 0n });
    assert.ok((await queued) instanceof SessionExpiredError, 'a request queued while suspended fails with the verdict');
    assert.equal(zk.state, 'expired');
    assert.deepEqual(log, ['connected', 'suspended', 'expired server']);
    assert.deepEqual(await zk.close(), { session: 'none', sessionId: 0x42n });
    assert.deepEqual(log.at(-1), 'closed none');
  });

  it('suspended -> expired (local): no server reachable for a whole negotiated timeout', async () => {
    const s = await server();
    const { zk, log } = client(s.address, { sessionTimeoutMs: 60_000 });
    await connected(s, zk, 300);
    const expired = new Promise<{ reason: string }>((resolve) => zk.once('expired', resolve));
    await s.close(); // drops the connection and refuses every reconnect from now on
    assert.equal((await expired).reason, 'local');
    assert.deepEqual(log, ['connected', 'suspended', 'expired local']);
  });

  it('connecting -> expired: a handed-over session the server does not know', async () => {
    const s = await server();
    const { zk, log } = client(s.address, { sessionId: 0x99n, sessionPassword: Buffer.alloc(16, 1) });
    const p = zk.connect();
    const c = await s.connection();
    assert.equal((await c.connectRequest).sessionId, 0x99n);
    c.grant({ timeOut: 0, sessionId: 0n });
    await assert.rejects(p, SessionExpiredError);
    assert.deepEqual(log, ['expired server']);
  });

  it('connected -> expired: a SessionExpired reply ends the session (a connection that outlived it)', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    const c = await connected(s, zk);
    const write = zk.setData('/x', 'y');
    const req = await c.request();
    c.reply(req.xid, { err: -112 });
    await assert.rejects(write, SessionExpiredError);
    assert.equal(zk.state, 'expired');
    assert.deepEqual(log, ['connected', 'expired server']);
  });

  it('connected -> authFailed, and authFailed -> closed abandons the session', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    const c = await connected(s, zk);
    const auth = zk.addAuth('nope', 'x');
    await c.request('auth'); // the auth packet (xid -4)
    c.reply(-4, { err: -115 });
    await assert.rejects(auth, AuthFailedError);
    assert.equal(zk.state, 'authFailed');
    assert.deepEqual(await zk.close(), { session: 'abandoned', sessionId: 0x42n });
    assert.deepEqual(log, ['connected', 'authFailed', 'closed abandoned']);
  });

  it('idle -> closed and connecting -> closed: the handshake in flight is aborted, its socket closed at once', async () => {
    const idle = client('127.0.0.1:1').zk;
    assert.deepEqual(await idle.close(), { session: 'none', sessionId: 0n });
    assert.equal(idle.state, 'closed');
    await assert.rejects(idle.connect(), ClientClosedError);

    const s = await server();
    const { zk, log } = client(s.address, { connectTimeoutMs: 600_000 });
    const p = zk.connect({ timeoutMs: 600_000 });
    const c = await s.connection();
    await c.connectRequest; // never answered
    assert.deepEqual(await zk.close({ timeoutMs: 600_000 }), { session: 'none', sessionId: 0n });
    await assert.rejects(p, ClientClosedError);
    await c.closed; // the client closed its socket: nothing waits for the 10-minute connect timeout
    assert.deepEqual(log, ['closed none']);
  });

  it('suspended -> closed returns at once, the session abandoned, the reconnect in flight aborted', async () => {
    const s = await server();
    const { zk, log } = client(s.address, { connectTimeoutMs: 600_000, localExpiry: false });
    const c1 = await connected(s, zk);
    c1.drop();
    const c2 = await s.connection(); // the reconnect, never answered
    await c2.connectRequest;
    assert.equal(zk.state, 'suspended');
    assert.deepEqual(await zk.close({ timeoutMs: 600_000 }), { session: 'abandoned', sessionId: 0x42n });
    await c2.closed;
    assert.deepEqual(log, ['connected', 'suspended', 'closed abandoned']);
  });

  it('closing -> closed abandoned when the connection drops or stays silent instead of answering closeSession', async () => {
    const s = await server();
    const a = client(s.address);
    const ca = await connected(s, a.zk);
    const closingA = a.zk.close();
    await ca.request('closeSession');
    ca.drop();
    assert.deepEqual(await closingA, { session: 'abandoned', sessionId: 0x42n });

    const b = client(s.address);
    const cb = await connected(s, b.zk);
    const closingB = b.zk.close({ timeoutMs: 200 });
    await cb.request('closeSession');
    assert.deepEqual(await closingB, { session: 'abandoned', sessionId: 0x42n }, 'no answer within the close timeout');
    await cb.closed;
  });

  it('refuses moves the table does not list: a SessionExpired reply or an auth failure while closing leaves only closed', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    const c = await connected(s, zk);
    const read = zk.getData('/r');
    const readReq = await c.request('getData');
    const closing = zk.close();
    const closeReq = await c.request('closeSession');
    c.reply(readReq.xid, { err: -112 }); // closing -> expired: refused
    c.reply(-4, { err: -115 }); // closing -> authFailed: refused
    assert.equal(zk.state, 'closing');
    c.reply(closeReq.xid);
    await assert.rejects(read, SessionExpiredError);
    assert.deepEqual(await closing, { session: 'closed', sessionId: 0x42n });
    assert.deepEqual(log, ['connected', 'closed closed']);
  });

  it('a listener that closes the client on suspended: every listener hears suspended, then closed', async () => {
    const s = await server();
    const { zk, log } = client(s.address);
    const c = await connected(s, zk);
    const heard: string[] = [];
    zk.on('suspended', () => void zk.close());
    zk.on('suspended', () => void heard.push(`second listener: suspended (state ${zk.state})`));
    const closed = new Promise((resolve) => zk.once('closed', resolve));
    c.drop();
    await closed;
    assert.deepEqual(log, ['connected', 'suspended', 'closed abandoned']);
    assert.deepEqual(heard, ['second listener: suspended (state closed)']);
  });

  it('connect timeout, read timeout and ping interval are recomputed on every negotiation', async () => {
    const s1 = await server();
    const s2 = await server();
    const { zk } = client(`${s1.address},${s2.address}`, { sessionTimeoutMs: 30_000 });
    assert.deepEqual(zk.timing, { connectTimeoutMs: 15_000, readTimeoutMs: 20_000, pingIntervalMs: 10_000 }, 'from the requested timeout');
    const c1 = await connected(s1, zk, 3000);
    assert.equal(zk.sessionTimeoutMs, 3000);
    assert.deepEqual(zk.timing, { connectTimeoutMs: 1500, readTimeoutMs: 2000, pingIntervalMs: 1000 });
    const reconnected = new Promise((resolve) => zk.once('reconnected', resolve));
    c1.drop();
    const c2 = await s2.connection();
    await c2.connectRequest;
    c2.grant({ timeOut: 900, sessionId: 0x42n });
    await reconnected;
    assert.deepEqual(zk.timing, { connectTimeoutMs: 450, readTimeoutMs: 600, pingIntervalMs: 300 });
  });

  it('pings an idle server; a server that stops answering is left after the read timeout (suspended)', async () => {
    const s = await server();
    const { zk } = client(s.address, { localExpiry: false });
    const c = await connected(s, zk, 3000); // read timeout 2 s, a ping after 1 s idle
    const suspended = new Promise<{ reason: Error }>((resolve) => zk.once('suspended', resolve));
    while (c.pings < 2) {
      assert.equal(zk.state, 'connected', 'answered pings keep the connection');
      await new Promise((resolve) => c.socket.once('data', resolve));
    }
    c.answerPings = false;
    const { reason } = await suspended;
    assert.ok(reason instanceof ConnectionLossError);
    assert.match(reason.message, /silent for \d+ ms \(read timeout 2000 ms\)/);
  });
});
