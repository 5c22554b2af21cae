/**
 * The recipes' ACL policy on a real ensemble that requires TLS client certificates (x509): a
 * client that is not one of the cluster's members can find the leader but can neither delete its
 * znode, nor forge a claim, nor stand as a candidate; a member can depose the leader. The limit no
 * ACL closes: an authenticated outsider can end any session whose id it reads. And the guard's
 * watchdog (`zkwarden guard run`) ending a wedged leader's session there over TLS and SASL,
 * without its credentials showing anywhere.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Ensemble } from '../../src/lab/ensemble.ts';
import { SecureLab } from '../../src/lab/secure.ts';
import { Election, clusterAcl, listMembers, readLeader, registerMember, type Term } from '../../src/recipes/index.ts';
import { NoAuthError, OPEN_ACL_UNSAFE, createClient, endSession, type Id, type ZooKeeperClient } from '../../src/zk/index.ts';
import { until } from '../until.ts';
import { bytesSecret, fileSources, findLeaks, pemSecret, textSecret, zookeeperSessionPassword } from './helpers.ts';
import { guardRun, type Proc } from '../guard/helpers.ts';

describe('recipes with the cluster ACL, on an ensemble that requires client certificates', () => {
  let lab: SecureLab;
  let ens: Ensemble;
  const clients: ZooKeeperClient[] = [];
  const PATH = '/zbs/meta/__mj_j';
  const MEMBERS = '/zbs/meta/__mj_cluster';

  before(async () => {
    lab = SecureLab.create({ tls: true, clientCertificates: ['meta1', 'meta2', 'outsider'], saslUsers: ['guard'], enforce: ['x509'] });
    ens = await lab.startEnsemble({ size: 3, tickTime: 250, maxSessionTimeout: 20_000 });
  });
  const procs: Proc[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 1000 }).catch(() => undefined)));
    await ens?.close();
    lab?.close();
  });

  async function as(cert: string): Promise<ZooKeeperClient> {
    const c = createClient(lab.connectString(ens), { tls: lab.clientTls(cert), sessionTimeoutMs: 8000 });
    clients.push(c);
    await c.connect({ timeoutMs: 15_000 });
    return c;
  }
  const member = (cert: string): Id => ({ scheme: 'x509', id: lab.x509Id(cert) });
  /**
   * ZooKeeper's reads are consistent per client, not across clients: another client's server may
   * not have applied a write the writer saw answered yet. The reader syncs before it looks.
   */
  async function caughtUp(reader: ZooKeeperClient, path: string): Promise<ZooKeeperClient> {
    await reader.sync(path);
    return reader;
  }
  async function noAuth(what: string, p: Promise<unknown>): Promise<void> {
    await assert.rejects(p, (e: unknown) => e instanceof NoAuthError, what);
  }

  it('an outsider reads the leader but cannot depose it, forge a claim or stand; a member deposes it', async () => {
    const acl = clusterAcl([member('meta1'), member('meta2')]);
    const [c1, c2, outsider] = await Promise.all([as('meta1'), as('meta2'), as('outsider')]);
    const e1 = new Election(c1, { candidate: { endpoint: '10.1.88.101:10100', name: 'meta1' }, acl });
    await e1.join();
    const t1 = await e1.awaitLeadership({ timeoutMs: 15_000 });
    const e2 = new Election(c2, { candidate: { endpoint: '10.1.88.102:10100', name: 'meta2' }, acl });
    await e2.join();
    await caughtUp(outsider, PATH);
    assert.deepEqual((await outsider.getACL(PATH)).acl, acl, 'the recipe made the election path with the cluster ACL');
    assert.deepEqual((await outsider.getACL(t1.znode)).acl, acl, 'and the candidate znodes');

    const seen = await readLeader(outsider, { path: PATH });
    assert.equal(seen?.endpoint, '10.1.88.101:10100', 'anyone may find the leader');
    await noAuth("delete the leader's znode", outsider.delete(t1.znode));
    await noAuth('forge a claim', outsider.setData(PATH, JSON.stringify({ epoch: t1.epoch + 1, znode: 'x', endpoint: '6.6.6.6:1', name: 'forged' })));
    await noAuth("bump the leader's znode (fencing it)", outsider.setData(t1.znode, 'x'));
    await noAuth('stand as a candidate', outsider.create(`${PATH}/`, 'x', { mode: 'ephemeral_sequential' }));
    await noAuth('open the ACL', outsider.setACL(PATH, OPEN_ACL_UNSAFE));
    assert.equal(e1.isLeader(), true);
    assert.equal((await readLeader(outsider, { path: PATH }))?.epoch, t1.epoch, 'the same term');

    // A member deposes the leader (what the guard does with a member's credential).
    const deposed = new Promise<string>((resolve) => e1.once('deposed', ({ reason }) => resolve(reason)));
    const next = new Promise<Term>((resolve) => e2.once('elected', ({ term }) => resolve(term)));
    await c2.delete(t1.znode);
    assert.equal(await deposed, 'znodeGone');
    const t2 = await next;
    assert.ok(t2.epoch > t1.epoch, 'a higher epoch');
    await until('discovery names the new leader', async () => (await readLeader(outsider, { path: PATH }))?.endpoint === '10.1.88.102:10100');
    await e1.leave();
  });

  it('membership: an outsider lists the members but cannot remove one; a member can', async () => {
    const acl = clusterAcl([member('meta1'), member('meta2')]);
    const [c1, c2, outsider] = await Promise.all([as('meta1'), as('meta2'), as('outsider')]);
    const m = await registerMember(c1, '10.1.88.101:10100', { role: 'meta' }, { acl });
    await caughtUp(outsider, MEMBERS);
    assert.deepEqual((await outsider.getACL(m.znode)).acl, acl);
    assert.deepEqual(
      (await listMembers(outsider, { path: MEMBERS })).map((x) => x.endpoint),
      ['10.1.88.101:10100'],
    );
    await noAuth('remove a member', outsider.delete(m.znode));
    await noAuth('register as a member', outsider.create(`${MEMBERS}/6.6.6.6:1`, '{}', { mode: 'ephemeral' }));
    await c2.delete(m.znode);
    await caughtUp(outsider, MEMBERS);
    assert.deepEqual(await listMembers(outsider, { path: MEMBERS }), []);
  });

  it("no ACL protects a session: an authenticated outsider who reads a leader's session id can end it", async () => {
    // Documented in docs/security.md: the session id is in every znode's Stat (exists needs no
    // permission) and the password derives from it. Only authentication at the door and trust in
    // everyone who holds a credential stand between a leader and its end.
    const acl = clusterAcl([member('meta1')]);
    const [c1, outsider] = await Promise.all([as('meta1'), as('outsider')]);
    const e = new Election(c1, { path: '/limit/election', candidate: { endpoint: '10.1.88.101:10100' }, acl });
    await e.join();
    const term = await e.awaitLeadership({ timeoutMs: 15_000 });
    await caughtUp(outsider, term.znode);
    const stat = await outsider.exists(term.znode);
    assert.ok(stat, 'exists() answers anyone');
    const sessionId = stat.ephemeralOwner;
    const deposed = new Promise<string>((resolve) => e.once('deposed', ({ reason }) => resolve(reason)));
    const r = await endSession(lab.connectString(ens), sessionId, zookeeperSessionPassword(sessionId), { tls: lab.clientTls('outsider'), timeoutMs: 20_000 });
    assert.equal(r.outcome, 'closed');
    assert.ok(['expired', 'znodeGone', 'suspended'].includes(await deposed));
    await caughtUp(outsider, term.znode);
    assert.equal(await outsider.exists(term.znode), null);
  });

  it("the watchdog ends a wedged leader's session over TLS and SASL; its log, output, argv and its service's environment hold none of the secrets", async () => {
    const path = '/guarded/__mj_j';
    const acl = clusterAcl([member('meta1'), member('meta2'), { scheme: 'sasl', id: 'guard' }]);
    const [holder, c2] = await Promise.all([as('meta1'), as('meta2')]);
    const e1 = new Election(holder, { path, candidate: { endpoint: '10.1.88.101:10100', name: 'meta1' }, acl });
    await e1.join();
    await e1.awaitLeadership({ timeoutMs: 15_000 });
    const e2 = new Election(c2, { path, candidate: { endpoint: '10.1.88.102:10100', name: 'meta2' }, acl });
    await e2.join();

    const dir = mkdtempSync(join(tmpdir(), 'zkw-secure-wd-'));
    dirs.push(dir);
    const tls = lab.clientTls('meta2');
    const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'wd.pem'), key: join(dir, 'wd.key'), log: join(dir, 'watchdog.log') };
    writeFileSync(files.ca, tls.ca as string);
    writeFileSync(files.cert, tls.cert as string);
    writeFileSync(files.key, tls.key as string, { mode: 0o600 });
    const sasl = lab.saslCredentials('guard');
    const name = `secure-wd-${process.pid}`;
    const wd = guardRun(
      [
        '--servers',
        lab.connectString(ens),
        '--path',
        path,
        '--name',
        name,
        '--log',
        files.log,
        '--tls-ca',
        files.ca,
        '--tls-cert',
        files.cert,
        '--tls-key',
        files.key,
        '--sasl-user',
        'guard',
      ],
      ['bash', join(import.meta.dirname, '..', 'guard', 'fixtures', 'bash-service.sh')],
      { ZKWARDEN_SASL_PASSWORD: sasl.password },
    );
    procs.push(wd);
    wd.send(`${holder.sessionId.toString(16)} ${holder.sessionPassword.toString('hex')}`);
    await wd.line('the watchdog to acknowledge the session', (l) => l.raw === 'ack: OK SESSION', 30_000);
    // The watchdog runs under tsx here, whose esbuild service (a child of one of its threads)
    // is there whenever a source file was not in tsx's cache: the service is the child running
    // the fixture, not the only child.
    const children = readdirSync(`/proc/${wd.pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${wd.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
    );
    const commandOf = (pid: string): string => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
      } catch {
        return '(exited)';
      }
    };
    const services = children.filter((pid) => commandOf(pid).includes('bash-service.sh'));
    assert.equal(services.length, 1, `the service among the watchdog's children: ${children.map((pid) => `${pid}: ${commandOf(pid)}`).join('; ')}`);
    const serviceEnviron = readFileSync(`/proc/${services[0]}/environ`);
    const watchdogCmdline = readFileSync(`/proc/${wd.pid}/cmdline`);

    const elected = new Promise<Term>((resolve) => e2.once('elected', ({ term }) => resolve(term)));
    wd.send('ill disk /data: fsync no answer');
    await elected;
    await until('the holder learns its session was ended', () => holder.state === 'expired', 20_000);
    const end = await wd.exited;
    assert.equal(end.code, 1, wd.stderr.join('\n'));
    const log = readFileSync(files.log, 'utf8');
    assert.match(log, /watchdog\.sessionEnded session=#1 outcome=closed/);
    assert.match(log, /watchdog\.znodeGone session=#1/);

    const secrets = [
      bytesSecret("the holder's session password", holder.sessionPassword),
      textSecret("the watchdog's SASL password", sasl.password),
      pemSecret("the watchdog's private key", tls.key as string),
    ];
    const sources = [
      ...fileSources([dir], [files.key]),
      { where: 'watchdog stdout', content: Buffer.from(JSON.stringify(wd.lines)) },
      { where: 'watchdog stderr', content: Buffer.from(wd.stderr.join('\n')) },
      { where: 'watchdog argv', content: watchdogCmdline },
      { where: "the service's environment", content: serviceEnviron },
    ];
    assert.deepEqual(findLeaks(sources, secrets), []);
    assert.deepEqual(
      findLeaks(fileSources([dir], []), secrets).map(([where]) => where),
      [files.key],
      'the scan finds the key where it is',
    );
    await e2.leave();
  });
});
