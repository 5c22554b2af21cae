/**
 * SASL is done again on every reconnect, on a real 3-server ensemble that enforces SASL
 * (DIGEST-MD5, `enforce.auth.schemes=sasl`):
 * - a server killed under a working client: the client reconnects to another server, logs in
 *   again, and a znode only `sasl:member` may touch stays readable and writable;
 * - the servers restarted with a JAAS file that holds another password for that user: the
 *   client's reconnect is refused, it ends in `authFailed` (final, no reconnect loop), and no
 *   request it had queued, nor any later one, is answered as if it were authenticated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Ensemble } from '../../src/lab/ensemble.ts';
import { SecureLab } from '../../src/lab/secure.ts';
import { AuthFailedError, Perms, SessionClosedRequireSaslAuthError, createClient, type ClientOptions, type ZooKeeperClient } from '../../src/zk/index.ts';
import { until } from '../until.ts';

describe('SASL on reconnect (a real ensemble that enforces SASL)', () => {
  let lab: SecureLab;
  let ens: Ensemble;
  const clients: ZooKeeperClient[] = [];
  const ZNODE = '/sasl-member-only';

  before(async () => {
    lab = SecureLab.create({ saslUsers: ['member'], enforce: ['sasl'] });
    // Sessions outlive a restart of every server (they are in the snapshot and the log): the
    // session timeout only has to cover the time to a quorum again.
    ens = await lab.startEnsemble({ size: 3, tickTime: 250, maxSessionTimeout: 30_000 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 1000 }).catch(() => undefined)));
    await ens?.close();
    lab?.close();
  });

  /** A client that waits for a server's verdict only: it never expires its session on its own while the servers are down. */
  function client(sasl: { username: string; password: string }, extra: ClientOptions = {}): ZooKeeperClient {
    const c = createClient(lab.connectString(ens), { sasl, sessionTimeoutMs: 30_000, localExpiry: false, ...extra });
    clients.push(c);
    return c;
  }
  const serverOf = (c: ZooKeeperClient): number => ens.servers.find((s) => c.server === `${s.host}:${s.clientPort}`)!.id;

  it('a server killed: the client reconnects to another one, logs in again, and a sasl-ACL znode stays readable and writable', async () => {
    const c = client(lab.saslCredentials('member'), { shuffleServers: false });
    const first = await c.connect({ timeoutMs: 15_000 });
    await c.create(ZNODE, 'v0', { acl: [{ perms: Perms.ALL, id: { scheme: 'sasl', id: 'member' } }] });
    // The ACL is what the server enforces: an identity other than sasl:member would be refused.
    assert.deepEqual((await c.getACL(ZNODE)).acl, [{ perms: Perms.ALL, id: { scheme: 'sasl', id: 'member' } }]);
    const killed = serverOf(c);

    const seen: { reconnected?: { server: string; sessionId: bigint } } = {};
    c.once('reconnected', (info) => void (seen.reconnected = info));
    await ens.kill(killed);
    await until('the client reconnected', () => seen.reconnected !== undefined, 60_000);
    const again = seen.reconnected!;
    assert.equal(again.sessionId, first.sessionId, 'the same session');
    assert.notEqual(again.server, first.server, 'on another server');
    assert.deepEqual(
      (await c.whoAmI()).filter((i) => i.authScheme === 'sasl'),
      [{ authScheme: 'sasl', user: 'member' }],
      'the new connection logged in',
    );
    assert.equal((await c.getData(ZNODE)).data.toString(), 'v0');
    assert.equal((await c.setData(ZNODE, 'v1')).version, 1);
    assert.equal((await c.getData(ZNODE)).data.toString(), 'v1');
    assert.equal(c.state, 'connected');

    await ens.startServer(killed);
    await ens.waitForQuorum();
  });

  it('the servers restarted with another password for the user: the reconnect is refused, authFailed, and nothing is answered as if authenticated', async () => {
    const old = lab.saslCredentials('member');
    const c = client(old);
    const first = await c.connect({ timeoutMs: 15_000 });
    // Its server may not have applied the last test's write yet: reads are consistent per client only.
    await c.sync(ZNODE);
    assert.equal((await c.getData(ZNODE)).data.toString(), 'v1', 'working before the change');

    const fresh = lab.rotateSaslPassword('member');
    assert.notEqual(fresh.password, old.password);
    await Promise.all(ens.servers.map((s) => ens.kill(s.id)));
    await until('the client lost its connection', () => c.state === 'suspended');
    // From here on every server that can answer reads the new JAAS file: the client may only
    // ever be refused. A 'reconnected' would be a login with the old password accepted.
    const states: string[] = [];
    for (const s of ['connected', 'reconnected', 'suspended', 'expired', 'authFailed', 'closed'] as const) c.on(s, () => void states.push(s));
    const seen: { authFailed?: { scheme: string; error?: Error } } = {};
    c.once('authFailed', (info) => void (seen.authFailed = info));
    // Queued while no server is up: sent only on a connection that logged in, which never comes.
    const queuedWrite = c.setData(ZNODE, 'written without a login', -1, { timeoutMs: 120_000 });
    const queuedRead = c.getData(ZNODE, { timeoutMs: 120_000 });
    queuedWrite.catch(() => undefined);
    queuedRead.catch(() => undefined);
    await Promise.all(ens.servers.map((s) => ens.startServer(s.id, { waitMs: 60_000 })));
    await ens.waitForQuorum();

    await until('the client is refused or, wrongly, let in', () => seen.authFailed !== undefined || c.state === 'connected' || c.state === 'expired', 60_000);
    assert.ok(seen.authFailed, `authFailed, not ${c.state}`);
    const { scheme, error } = seen.authFailed;
    assert.equal(scheme, 'sasl');
    // The server answers a refused DIGEST-MD5 response with SESSIONCLOSEDREQUIRESASLAUTH where it
    // enforces SASL (AUTHFAILED where it does not), and closes the connection.
    assert.ok(error instanceof SessionClosedRequireSaslAuthError || error instanceof AuthFailedError, String(error));
    assert.match(error.message, /refused the SASL credential|refused the credential/);
    assert.ok(!error.message.includes(old.password) && !error.message.includes(fresh.password), 'no password in the message');
    assert.equal(c.state, 'authFailed');
    assert.deepEqual(states, ['authFailed'], 'refused, with no reconnect before it');
    await assert.rejects(queuedWrite, (e: unknown) => e === error, "the queued write fails with the server's refusal");
    await assert.rejects(queuedRead, (e: unknown) => e === error, 'so does the queued read');
    await assert.rejects(c.getData(ZNODE), AuthFailedError, 'and every later request');
    await assert.rejects(c.connect(), AuthFailedError, 'final: connect() does not start over');
    assert.equal(c.state, 'authFailed');

    // With the new password a client logs in, sees nothing of the refused client's requests, and
    // can still work on the znode; the refused client's session is left to its timeout.
    const renewed = client(fresh);
    await renewed.connect({ timeoutMs: 15_000 });
    const { data, stat } = await renewed.getData(ZNODE);
    assert.equal(data.toString(), 'v1', 'the queued write was never applied');
    assert.equal(stat.version, 1);
    assert.deepEqual(
      (await renewed.whoAmI()).filter((i) => i.authScheme === 'sasl'),
      [{ authScheme: 'sasl', user: 'member' }],
    );
    assert.notEqual(renewed.sessionId, first.sessionId);
    assert.deepEqual(states, ['authFailed'], 'the refused client stayed authFailed');
  });
});
