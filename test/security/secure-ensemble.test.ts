/**
 * zkwarden's client on a real secured 3-server ensemble (TLS on secureClientPort with client
 * certificates required, SASL DIGEST-MD5, authentication enforced for x509 or sasl): the client
 * conformance subset (connect, reconnect after a server kill, watches, multi, endSession), the
 * refusals (plain client, wrong CA, wrong name, bad SASL password), the x509 and sasl ACL
 * schemes, and at the end a scan of everything the run wrote and printed for its secrets.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { fourLetterWord, parseMntr } from '../../src/lab/four-letter.ts';
import { CertificateAuthority, SecureLab } from '../../src/lab/secure.ts';
import { PreparedTls } from '../../src/zk/transport.ts';
import {
  AuthFailedError,
  ConnectionLossError,
  MultiError,
  NoAuthError,
  OperationTimeoutError,
  Perms,
  SessionClosedRequireSaslAuthError,
  createClient,
  digestAcl,
  endSession,
  type ClientOptions,
  type WatchEvent,
  type ZooKeeperClient,
} from '../../src/zk/index.ts';
import { until } from '../until.ts';
import { bytesSecret, fileSources, findLeaks, pemSecret, runCliWithEnv, textSecret, zookeeperSessionPassword, type CliRun } from './helpers.ts';

describe('a secured ensemble (TLS + SASL, authentication enforced)', () => {
  let lab: SecureLab;
  let ens: Ensemble;
  let rogue: CertificateAuthority;
  let scratch: string;
  const clients: ZooKeeperClient[] = [];
  /** Every error the run's clients and calls gave, for the leak scan. */
  const errors: Error[] = [];
  const cliRuns: CliRun[] = [];
  const DIGEST_PASSWORD = 'digest-pw-never-logged-51c';

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'zkwarden-security-test-'));
    lab = SecureLab.create({ tls: true, saslUsers: ['member', 'reader'], clientCertificates: ['member', 'outsider'] });
    rogue = CertificateAuthority.create(join(scratch, 'rogue'), 'rogue');
    ens = await lab.startEnsemble({ size: 3, tickTime: 250, maxSessionTimeout: 20_000 });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close({ timeoutMs: 1000 }).catch(() => undefined)));
    await ens?.close();
    lab?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  function client(options: ClientOptions, connectString = lab.connectString(ens)): ZooKeeperClient {
    const c = createClient(connectString, { sessionTimeoutMs: 8000, ...options });
    c.on('authFailed', ({ error }) => error && errors.push(error));
    clients.push(c);
    return c;
  }
  const member = (extra: ClientOptions = {}): ZooKeeperClient => client({ tls: lab.clientTls('member'), sasl: lab.saslCredentials('member'), ...extra });
  async function rejection(p: Promise<unknown>): Promise<Error> {
    try {
      await p;
    } catch (e) {
      errors.push(e as Error);
      return e as Error;
    }
    assert.fail('expected a rejection');
  }

  it('connects over TLS, authenticates with SASL, and the server attaches both identities', async () => {
    const c = member();
    const info = await c.connect({ timeoutMs: 15_000 });
    assert.match(info.server, /:2281$/, 'the secure port');
    const ids = await c.whoAmI();
    assert.deepEqual(
      ids.filter((i) => i.authScheme !== 'ip').sort((a, b) => a.authScheme.localeCompare(b.authScheme)),
      [
        { authScheme: 'sasl', user: 'member' },
        { authScheme: 'x509', user: lab.x509Id('member') },
      ],
    );
    assert.equal(lab.x509Id('member'), 'CN=member,O=zkwarden lab', 'X500Principal.getName(): RFC 2253, most specific first');
    // Four-letter words are answered over TLS too (the online audit relies on it).
    const mntr = parseMntr(await fourLetterWord(ens.servers[0]!.host, lab.tlsPort, 'mntr', 3000, new PreparedTls(lab.clientTls('member'))));
    assert.ok(Number(mntr.zk_znode_count) > 0);
  });

  it('watches and multi work as on a plain ensemble', async () => {
    const a = member();
    const b = client({ tls: lab.clientTls('outsider'), sasl: lab.saslCredentials('reader') });
    await Promise.all([a.connect({ timeoutMs: 15_000 }), b.connect({ timeoutMs: 15_000 })]);
    await a.create('/watched', 'v0');
    const events: WatchEvent[] = [];
    await a.getData('/watched', { watch: (e) => void events.push(e) });
    await b.setData('/watched', 'v1');
    await until('the data watch fires', () => events.length === 1);
    assert.deepEqual(events, [{ type: 'dataChanged', path: '/watched' }]);

    const results = await a.multi([
      { op: 'create', path: '/multi', data: 'm' },
      { op: 'setData', path: '/watched', data: 'v2' },
      { op: 'check', path: '/watched', version: 2 },
    ]);
    assert.deepEqual(
      results.map((r) => r.op),
      ['create', 'setData', 'check'],
    );
    const failed = await rejection(
      a.multi([
        { op: 'create', path: '/multi-2' },
        { op: 'check', path: '/watched', version: 99 },
      ]),
    );
    assert.ok(failed instanceof MultiError && failed.index === 1);
    assert.equal(await a.exists('/multi-2'), null, 'nothing of a failed multi applied');
  });

  it('reconnects after its server is killed: same session, TLS kept, SASL done again, watches re-registered', async () => {
    const c = member({ shuffleServers: false });
    const first = await c.connect({ timeoutMs: 15_000 });
    const killed = ens.servers.find((s) => first.server === `${s.host}:${lab.tlsPort}`)!.id;
    await c.create('/reconnect', 'before');
    const events: WatchEvent[] = [];
    await c.getData('/reconnect', { watch: (e) => void events.push(e) });
    const reconnected = new Promise<{ server: string; sessionId: bigint }>((resolve) => c.once('reconnected', resolve));
    await ens.kill(killed);
    const again = await reconnected;
    assert.equal(again.sessionId, first.sessionId, 'the same session');
    assert.notEqual(again.server, first.server);
    assert.match(again.server, /:2281$/);
    const ids = await c.whoAmI();
    assert.ok(
      ids.some((i) => i.authScheme === 'sasl' && i.user === 'member'),
      'SASL was done on the new connection',
    );
    assert.ok(
      ids.some((i) => i.authScheme === 'x509'),
      'the new connection is TLS with the client certificate',
    );
    const other = member();
    await other.connect({ timeoutMs: 15_000 });
    await other.setData('/reconnect', 'after');
    await until('the re-registered watch fires', () => events.length === 1);
    await ens.startServer(killed);
    await ens.waitForQuorum();
  });

  it("endSession with the credential ends a live holder's session; the session id and password without it cannot", async () => {
    const holder = member({ localExpiry: false });
    await holder.connect({ timeoutMs: 15_000 });
    await holder.create('/held', 'x', { mode: 'ephemeral' });
    // ZooKeeper derives the password from the id and a constant (ZooKeeperServer.generatePasswd):
    // whoever knows a session id knows its password.
    assert.deepEqual(zookeeperSessionPassword(holder.sessionId), holder.sessionPassword);

    // Id and password, no credential, through the plain port: the attach is accepted (it even
    // replaces the holder's connection), the close is refused.
    const refused = await rejection(endSession(ens.connectString, holder.sessionId, holder.sessionPassword, { timeoutMs: 8000, connectTimeoutMs: 2000 }));
    assert.ok(refused instanceof SessionClosedRequireSaslAuthError, String(refused));
    assert.match(refused.message, /enforces authentication and refused the close/);
    // The holder may have been kicked by the attach: its session lives on, it writes again.
    await until('the holder writes on its session again', async () => {
      try {
        await holder.setData('/held', 'still mine');
        return true;
      } catch (e) {
        if (e instanceof ConnectionLossError) return false;
        throw e;
      }
    });

    const watcher = member();
    await watcher.connect({ timeoutMs: 15_000 });
    const expired = new Promise<void>((resolve) => holder.once('expired', () => resolve()));
    const r = await endSession(lab.connectString(ens), holder.sessionId, holder.sessionPassword, {
      tls: lab.clientTls('member'),
      sasl: lab.saslCredentials('member'),
      timeoutMs: 20_000,
    });
    assert.equal(r.outcome, 'closed');
    assert.equal(r.confirmedBy.length, 3);
    // A server confirms a session gone when its leader says so; the watcher's may not have
    // applied the closeSession yet.
    await watcher.sync('/held');
    assert.equal(await watcher.exists('/held'), null, 'the ephemeral went with the session');
    // The holder learns it at once (an "expired" attach) or at its next write.
    await Promise.race([expired, holder.setData('/held', 'late').catch((e: unknown) => void errors.push(e as Error))]);
    await until('the holder knows its session ended', () => holder.state === 'expired');
  });

  it('a plain client is refused: on the plain port its first request ends it (authFailed), on the TLS port it never gets a session', async () => {
    const plain = client({}, ens.connectString);
    await plain.connect({ timeoutMs: 15_000 });
    const err = await rejection(plain.exists('/watched'));
    assert.ok(err instanceof SessionClosedRequireSaslAuthError, String(err));
    // The server closes the connection after that answer: final, no reconnect loop.
    await until('the plain client is authFailed', () => plain.state === 'authFailed');

    const onTls = client({ sessionTimeoutMs: 3000 });
    const timeout = await rejection(onTls.connect({ timeoutMs: 3000 }));
    assert.ok(timeout instanceof OperationTimeoutError, String(timeout));
    assert.match(timeout.message, /last error: .*2281/);
  });

  it('TLS refuses a server chain from another CA, a client certificate from another CA, and a wrong server name', async () => {
    // Refusals are decided in the TLS handshake; each attempt gets time enough that the last
    // error is the refusal, not a handshake cut short by load.
    const refused = { sessionTimeoutMs: 3000, connectTimeoutMs: 5000 };
    const cert = rogue.issue('rogue-member', 'member', 'client');
    const wrongCa = client({ tls: { ...lab.clientTls('member'), ca: rogue.certPem }, sasl: lab.saslCredentials('member'), ...refused });
    const rogueClient = client({ tls: { ca: lab.caPem, cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, ...refused });
    const wrongName = client({ tls: { ...lab.clientTls('member'), serverName: 'elsewhere.zkwarden.test' }, sasl: lab.saslCredentials('member'), ...refused });
    const [e1, e2, e3] = await Promise.all([wrongCa, rogueClient, wrongName].map((c) => rejection(c.connect({ timeoutMs: 8000 }))));
    assert.ok(e1 instanceof OperationTimeoutError);
    assert.match(e1.message, /last error: .*certificate/i, 'the cause is named');
    assert.ok(e2 instanceof OperationTimeoutError, 'the server refuses a client certificate it cannot verify');
    assert.match(e3!.message, /last error: .*elsewhere\.zkwarden\.test/);
    // The servers' certificates share one DNS name besides their own addresses.
    const sharedName = member({ tls: { ...lab.clientTls('member'), serverName: 'zookeeper.zkwarden.test' } });
    await sharedName.connect({ timeoutMs: 15_000 });
  });

  it('a bad SASL password (or user) moves the client to authFailed, on the first connection', async () => {
    for (const sasl of [
      { username: 'member', password: 'not-the-password' },
      { username: 'nobody', password: 'x' },
    ]) {
      const c = client({ tls: lab.clientTls('member'), sasl });
      const failed = new Promise<Error | undefined>((resolve) => c.once('authFailed', ({ error }) => resolve(error)));
      const err = await rejection(c.connect({ timeoutMs: 15_000 }));
      assert.ok(err instanceof AuthFailedError || err instanceof SessionClosedRequireSaslAuthError, String(err));
      assert.equal(c.state, 'authFailed');
      assert.equal(await failed, err);
      assert.ok(!err.message.includes(sasl.password));
      assert.ok((await rejection(c.exists('/'))) instanceof AuthFailedError || c.state === 'authFailed');
    }
  });

  it('the x509, sasl and digest ACL schemes are enforced', async () => {
    const m = member();
    const outsider = client({ tls: lab.clientTls('outsider') });
    const reader = client({ tls: lab.clientTls('outsider'), sasl: lab.saslCredentials('reader') });
    const digestUser = client({ tls: lab.clientTls('outsider'), auth: [{ scheme: 'digest', auth: `alice:${DIGEST_PASSWORD}` }] });
    await Promise.all([m, outsider, reader, digestUser].map((c) => c.connect({ timeoutMs: 15_000 })));
    assert.deepEqual(
      (await outsider.whoAmI()).find((i) => i.authScheme === 'x509'),
      { authScheme: 'x509', user: 'CN=outsider,O=zkwarden lab' },
    );

    await m.create('/x509-only', 'm', { acl: [{ perms: Perms.ALL, id: { scheme: 'x509', id: lab.x509Id('member') } }] });
    await m.create('/sasl-only', 's', {
      acl: [
        { perms: Perms.ALL, id: { scheme: 'sasl', id: 'member' } },
        { perms: Perms.READ, id: { scheme: 'sasl', id: 'reader' } },
      ],
    });
    await m.create('/digest-only', 'd', { acl: [...digestAcl('alice', DIGEST_PASSWORD), { perms: Perms.ALL, id: { scheme: 'sasl', id: 'member' } }] });
    // Reads are consistent per client only: the others' servers catch up with m's writes first,
    // or a lagging one answers NoNode where the ACL is the point.
    await Promise.all([outsider, reader, digestUser].map((c) => c.sync('/')));

    assert.equal((await m.getData('/x509-only')).data.toString(), 'm');
    for (const op of [() => outsider.getData('/x509-only'), () => outsider.setData('/x509-only', 'x'), () => outsider.create('/x509-only/child')]) {
      assert.ok((await rejection(op())) instanceof NoAuthError);
    }
    assert.equal((await reader.getData('/sasl-only')).data.toString(), 's', 'sasl:reader may read');
    assert.ok((await rejection(reader.setData('/sasl-only', 'x'))) instanceof NoAuthError, 'but not write');
    assert.ok((await rejection(outsider.getData('/sasl-only'))) instanceof NoAuthError, 'no SASL identity, no read');
    assert.equal((await digestUser.getData('/digest-only')).data.toString(), 'd');
    assert.ok((await rejection(outsider.getData('/digest-only'))) instanceof NoAuthError);
  });

  it('the CLI takes TLS and SASL options; the password comes from the environment or a file, never argv', async () => {
    const cert = lab.clientTls('member');
    const files = { ca: join(scratch, 'ca.pem'), cert: join(scratch, 'member.pem'), key: join(scratch, 'member.key'), pw: join(scratch, 'sasl-password') };
    writeFileSync(files.ca, cert.ca as string);
    writeFileSync(files.cert, cert.cert as string);
    writeFileSync(files.key, cert.key as string, { mode: 0o600 });
    writeFileSync(files.pw, `${lab.saslCredentials('member').password}\n`, { mode: 0o600 });
    const tlsArgs = ['--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.key];
    const servers = lab.connectString(ens);

    const byEnv = await runCliWithEnv(['members', '--servers', servers, ...tlsArgs, '--sasl-user', 'member', '--json'], {
      ZKWARDEN_SASL_PASSWORD: lab.saslCredentials('member').password,
    });
    cliRuns.push(byEnv);
    assert.equal(byEnv.status, 0, byEnv.stderr);
    assert.deepEqual(JSON.parse(byEnv.stdout).members, []);

    const byFile = await runCliWithEnv(['leader', '--servers', servers, ...tlsArgs, '--sasl-user', 'member', '--sasl-password-file', files.pw, '--json']);
    cliRuns.push(byFile);
    assert.equal(byFile.status, 1, `no leader: exit 1 (${byFile.stderr})`);
    assert.deepEqual(JSON.parse(byFile.stdout).leader, null);

    const audit = await runCliWithEnv(['audit', '--servers', servers, ...tlsArgs, '--sasl-user', 'member', '--sasl-password-file', files.pw, '--json']);
    cliRuns.push(audit);
    assert.equal(audit.status, 0, audit.stderr);
    const report = JSON.parse(audit.stdout) as {
      class: string;
      members: { status: string; nodeCount: number | null; zxidBefore: number | null; mntr: { znodes: number | null } }[];
    };
    // Sessions of earlier tests expire meanwhile (each a transaction): whether the trees were
    // comparable is not the point here; that every server was read over TLS and SASL is.
    assert.notEqual(report.class, 'diverged');
    assert.equal(report.members.length, 3);
    for (const x of report.members) {
      assert.ok((x.nodeCount ?? 0) > 0, `a tree read through the secured session (${x.status})`);
      assert.ok(x.zxidBefore !== null && x.mntr.znodes !== null, 'srvr and mntr over TLS');
    }

    const badPassword = await runCliWithEnv(['members', '--servers', servers, ...tlsArgs, '--sasl-user', 'member'], {
      ZKWARDEN_SASL_PASSWORD: 'wrong-password-9d1',
    });
    cliRuns.push(badPassword);
    assert.equal(badPassword.status, 2);
    assert.match(
      badPassword.stderr,
      /^zkwarden: ZooKeeper refused the connection's authentication \(a wrong credential, or none where the ensemble requires one\): /,
    );
    assert.equal(badPassword.stderr.trim().split('\n').length, 1, badPassword.stderr);

    // No credential on the plain port: the server refuses the first request; one line, exit 2.
    const plainPort = await runCliWithEnv(['members', '--servers', ens.connectString]);
    cliRuns.push(plainPort);
    assert.equal(plainPort.status, 2, plainPort.stderr);
    assert.match(plainPort.stderr, /^zkwarden: ZooKeeper refused the connection's authentication .*SASL authentication required/);
    assert.equal(plainPort.stderr.trim().split('\n').length, 1, plainPort.stderr);
    // No client certificate where the servers require one: unreachable (exit 3), and why.
    const noCert = await runCliWithEnv(['members', '--servers', servers, '--tls-ca', files.ca, '--timeout', '4000']);
    cliRuns.push(noCert);
    assert.equal(noCert.status, 3, noCert.stderr);
    assert.match(noCert.stderr, /last error: .*TLS: the server refused the client certificate \(none given, or not signed by a CA it trusts\)/);
    assert.equal(noCert.stderr.trim().split('\n').length, 1, noCert.stderr);
    assert.ok(!badPassword.stderr.includes('wrong-password-9d1'));

    const onArgv = await runCliWithEnv(['members', '--servers', servers, ...tlsArgs, '--sasl-user', 'member', '--sasl-password', 'x']);
    assert.equal(onArgv.status, 2);
    assert.match(onArgv.stderr, /--sasl-password is not accepted: a command line is readable by every user/);
    const noPassword = await runCliWithEnv(['members', '--servers', servers, ...tlsArgs, '--sasl-user', 'member']);
    assert.equal(noPassword.status, 2);
    assert.match(noPassword.stderr, /no password; set \$ZKWARDEN_SASL_PASSWORD or give --sasl-password-file/);
    const badKey = await runCliWithEnv(['members', '--servers', servers, '--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.ca]);
    assert.equal(badKey.status, 2);
    assert.match(badKey.stderr, /--tls-key .*ca\.pem: expected an unencrypted PEM private key/);
  });

  it('no secret appears in anything the run wrote or printed (the key files and the JAAS file excepted, by path)', async () => {
    const sasl = ['member', 'reader'].map((u) => lab.saslCredentials(u));
    const secrets = [
      ...clients
        .filter((c) => c.sessionId !== 0n)
        .map((c) => bytesSecret(`session password of 0x${BigInt.asUintN(64, c.sessionId).toString(16)}`, c.sessionPassword)),
      ...sasl.map((s) => textSecret(`SASL password of ${s.username}`, s.password)),
      // What a DIGEST-MD5 server stores in place of the password: H(user:realm:password).
      ...sasl.map((s) => bytesSecret(`DIGEST-MD5 secret of ${s.username}`, createHash('md5').update(`${s.username}:zk-sasl-md5:${s.password}`).digest())),
      textSecret('digest scheme password', DIGEST_PASSWORD),
      ...lab.secretValues().map((v, i) => (v.kind === 'password' ? textSecret(`lab password ${i}`, v.value) : pemSecret(`lab private key ${i}`, v.value))),
    ];
    const sources = [
      // The ensemble's directories: zoo.cfg, log4j config, zookeeper.log, stdout, snapshots, txn logs.
      ...fileSources([ens.baseDir], []),
      // The lab's key directory, except exactly the files that must hold secrets: private keys,
      // the servers' key stores (key + chain: ZooKeeper's PEM loader reads both from one file)
      // and the JAAS file (DigestLoginModule reads the SASL passwords only from there).
      ...fileSources([lab.dir], lab.secretFiles()),
      // The JVMs' argv and environment, readable by other users in /proc.
      ...ens.servers.flatMap((s) => {
        const pid = ens.pid(s.id);
        return pid === null ? [] : [`cmdline`, `environ`].map((f) => ({ where: `/proc/${pid}/${f} (zk${s.id})`, content: readFileSync(`/proc/${pid}/${f}`) }));
      }),
      ...errors.map((e, i) => ({ where: `error ${i}: ${e.name}`, content: Buffer.from(`${e.message}\n${e.stack ?? ''}`) })),
      // A log line that dumps a client object.
      ...clients.map((c, i) => ({
        where: `util.inspect(client ${i})`,
        content: Buffer.from(inspect(c, { depth: 6, showHidden: true }).replace(/<Buffer ([0-9a-f ]+)>/g, (_m, h: string) => h.replace(/ /g, ''))),
      })),
      ...cliRuns.flatMap((r, i) => [
        { where: `CLI run ${i} stdout`, content: Buffer.from(r.stdout) },
        { where: `CLI run ${i} stderr`, content: Buffer.from(r.stderr) },
        { where: `CLI run ${i} argv`, content: Buffer.from(r.cmdline) },
      ]),
    ];
    assert.ok(sources.length > 30, `the scan covers the run (${sources.length} sources)`);
    assert.ok(errors.length >= 10, `the scan covers the errors (${errors.length})`);
    assert.ok(
      sources.some((s) => s.where.endsWith('zookeeper.log') && s.content.includes('sasl')),
      'the server logs did record the SASL logins',
    );
    assert.deepEqual(findLeaks(sources, secrets), []);
    // The scan does find secrets where they must be: it is not blind.
    const control = findLeaks(fileSources([lab.dir], []), secrets).map(([where]) => where);
    for (const f of lab.secretFiles()) assert.ok(control.includes(f), `the scan finds the secret in ${f}`);
  });
});
