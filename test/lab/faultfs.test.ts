/**
 * faultfs as a file system: every operation a ZooKeeper server and its services use, done
 * through the mount and checked against the backing directory; delay and error faults as the
 * caller sees them; bad input refused with the field named. Real FUSE, as root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FaultFs, FaultFsError, FaultFsInputError, faultFsMounts, fuseRequestTimeouts, normalizeRules, type FaultRule } from '../../src/lab/faultfs.ts';
import { parseDiskFault, runDiskCommand } from '../../src/lab/faultfs-cli.ts';
import { until } from '../until.ts';
import { dropScratch, mountScratch, run, scratch, type Scratch } from './faultfs-util.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('faultfs pass-through', () => {
  let s: Scratch;
  let ffs: FaultFs;
  let M: (p: string) => string;
  let B: (p: string) => string;
  before(async () => {
    ({ s, fs: ffs } = await mountScratch());
    M = (p) => join(s.mountpoint, p);
    B = (p) => join(s.backing, p);
  });
  after(async () => {
    await dropScratch(s, ffs);
  });

  it('is listed in mountinfo with its connection and daemon, and the kernel never times requests out here', () => {
    const m = faultFsMounts().find((x) => x.mountpoint === s.mountpoint);
    assert.ok(m, 'the mount is in /proc/self/mountinfo');
    assert.equal(m.daemonPid, ffs.daemonPid);
    assert.equal(m.connection, ffs.fuseConnection);
    assert.deepEqual(fuseRequestTimeouts(), { default: 0, max: 0 });
  });

  it('creates, writes at offsets, appends, reads, and the backing file has the same bytes', () => {
    const data = randomBytes(3 * 1024 * 1024 + 123);
    fs.writeFileSync(M('big'), data);
    assert.equal(sha(fs.readFileSync(B('big'))), sha(data));
    assert.equal(sha(fs.readFileSync(M('big'))), sha(data));

    // Positional writes, as FileTxnLog's preallocation does: one byte far out makes a sparse file.
    const fd = fs.openSync(M('prealloc'), 'w+');
    fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
    fs.writeSync(fd, Buffer.from([0]), 0, 1, 65535);
    fs.writeSync(fd, Buffer.from('mid'), 0, 3, 1000);
    fs.fdatasyncSync(fd);
    fs.fsyncSync(fd);
    const back = fs.readFileSync(B('prealloc'));
    assert.equal(back.length, 65536);
    assert.equal(back.subarray(0, 4).toString(), 'head');
    assert.equal(back.subarray(1000, 1003).toString(), 'mid');
    const buf = Buffer.alloc(3);
    fs.readSync(fd, buf, 0, 3, 1000);
    assert.equal(buf.toString(), 'mid');
    fs.closeSync(fd);

    // O_APPEND, as log4j's FileAppender opens its log.
    fs.writeFileSync(M('app.log'), 'one\n');
    for (const line of ['two\n', 'three\n']) {
      const a = fs.openSync(M('app.log'), 'a');
      fs.writeSync(a, line);
      fs.closeSync(a);
    }
    assert.equal(fs.readFileSync(B('app.log'), 'utf8'), 'one\ntwo\nthree\n');
  });

  it('honours open flags: O_EXCL, O_TRUNC, read-only descriptors', () => {
    fs.writeFileSync(M('flags'), 'abcdef');
    assert.throws(() => fs.openSync(M('flags'), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY), { code: 'EEXIST' });
    const ro = fs.openSync(M('flags'), 'r');
    assert.throws(() => fs.writeSync(ro, 'x'), { code: 'EBADF' });
    fs.closeSync(ro);
    fs.closeSync(fs.openSync(M('flags'), constants.O_WRONLY | constants.O_TRUNC));
    assert.equal(fs.statSync(B('flags')).size, 0);
    assert.throws(() => fs.openSync(M('missing/x'), 'r'), { code: 'ENOENT' });
  });

  it("renames over an existing file (ZooKeeper's currentEpoch: tmp + fsync + rename) and unlinks", () => {
    fs.writeFileSync(M('currentEpoch'), '1');
    const fd = fs.openSync(M('currentEpoch.tmp'), 'w');
    fs.writeSync(fd, '2');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(M('currentEpoch.tmp'), M('currentEpoch'));
    assert.equal(fs.readFileSync(B('currentEpoch'), 'utf8'), '2');
    assert.equal(fs.existsSync(B('currentEpoch.tmp')), false);
    fs.mkdirSync(M('d1'));
    fs.renameSync(M('currentEpoch'), M('d1/moved'));
    assert.equal(fs.readFileSync(B('d1/moved'), 'utf8'), '2');
    fs.unlinkSync(M('d1/moved'));
    assert.equal(fs.existsSync(B('d1/moved')), false);
    assert.throws(() => fs.unlinkSync(M('d1/moved')), { code: 'ENOENT' });
  });

  it('truncates by path and by descriptor, and fallocates (also punching a hole)', () => {
    fs.writeFileSync(M('trunc'), Buffer.alloc(10_000, 7));
    fs.truncateSync(M('trunc'), 100);
    assert.equal(fs.statSync(B('trunc')).size, 100);
    const fd = fs.openSync(M('trunc'), 'r+');
    fs.ftruncateSync(fd, 5000);
    fs.closeSync(fd);
    assert.equal(fs.statSync(B('trunc')).size, 5000);
    assert.equal(fs.statSync(M('trunc')).size, 5000);

    const fa = spawnSync('fallocate', ['-l', '1048576', M('falloc')], { encoding: 'utf8' });
    assert.equal(fa.status, 0, fa.stderr);
    const st = fs.statSync(B('falloc'));
    assert.equal(st.size, 1048576);
    assert.ok(st.blocks * 512 >= 1048576, 'blocks are allocated in the backing file');
    const keep = spawnSync('fallocate', ['-n', '-o', '1048576', '-l', '65536', M('falloc')], { encoding: 'utf8' });
    assert.equal(keep.status, 0, keep.stderr);
    assert.equal(fs.statSync(B('falloc')).size, 1048576, 'KEEP_SIZE keeps the size');
    fs.writeFileSync(M('hole'), Buffer.alloc(65536, 1));
    const punch = spawnSync('fallocate', ['-p', '-o', '4096', '-l', '8192', M('hole')], { encoding: 'utf8' });
    assert.equal(punch.status, 0, punch.stderr);
    const h = fs.readFileSync(B('hole'));
    assert.equal(h.length, 65536);
    assert.equal(h[4096], 0);
    assert.equal(h[12287], 0);
    assert.equal(h[12288], 1);
  });

  it('makes and removes directories and lists large directories completely', () => {
    fs.mkdirSync(M('many/deep/er'), { recursive: true });
    assert.ok(fs.statSync(B('many/deep/er')).isDirectory());
    const names: string[] = [];
    // Long names, so the listing spans many readdir replies and continues at their offsets.
    for (let i = 0; i < 600; i++) names.push(`snapshot.${i.toString(16).padStart(8, '0')}-${'x'.repeat(60)}`);
    for (const n of names) fs.writeFileSync(M(`many/${n}`), n);
    const listed = fs.readdirSync(M('many')).sort();
    assert.deepEqual(listed, [...names, 'deep'].sort());
    assert.deepEqual(listed, fs.readdirSync(B('many')).sort());
    const typed = fs.readdirSync(M('many'), { withFileTypes: true });
    assert.equal(typed.find((d) => d.name === 'deep')?.isDirectory(), true);
    assert.throws(() => fs.rmdirSync(M('many/deep')), { code: 'ENOTEMPTY' });
    fs.rmdirSync(M('many/deep/er'));
    assert.equal(fs.existsSync(B('many/deep/er')), false);
  });

  it('reports stat and statfs like the backing directory, and sets times, modes and owners', () => {
    fs.writeFileSync(M('meta'), 'x'.repeat(777));
    const a = fs.statSync(M('meta'));
    const b = fs.statSync(B('meta'));
    assert.equal(a.size, b.size);
    assert.equal(a.mode, b.mode);
    assert.equal(a.mtimeMs, b.mtimeMs);
    assert.equal(a.nlink, 1);
    const sf = fs.statfsSync(s.mountpoint);
    const sb = fs.statfsSync(s.backing);
    assert.equal(sf.bsize, sb.bsize);
    assert.equal(sf.blocks, sb.blocks);

    fs.utimesSync(M('meta'), new Date('2020-01-02T03:04:05Z'), new Date('2021-02-03T04:05:06.789Z'));
    assert.equal(fs.statSync(B('meta')).mtime.toISOString(), '2021-02-03T04:05:06.789Z');
    assert.equal(fs.statSync(B('meta')).atime.toISOString(), '2020-01-02T03:04:05.000Z');
    const fd = fs.openSync(M('meta'), 'r+');
    fs.futimesSync(fd, 1_000_000, 2_000_000);
    fs.fchmodSync(fd, 0o640);
    fs.closeSync(fd);
    assert.equal(fs.statSync(B('meta')).mtimeMs, 2_000_000_000);
    assert.equal(fs.statSync(B('meta')).mode & 0o777, 0o640);
    fs.chmodSync(M('meta'), 0o600);
    assert.equal(fs.statSync(B('meta')).mode & 0o777, 0o600);
    fs.chownSync(M('meta'), 1234, 4321);
    assert.equal(fs.statSync(B('meta')).uid, 1234);
    assert.equal(fs.statSync(B('meta')).gid, 4321);
    assert.equal(fs.statSync(M('meta')).uid, 1234);
  });

  it('checks permissions for other users and gives their new files to them', async () => {
    fs.writeFileSync(M('secret'), 'root only');
    fs.chmodSync(M('secret'), 0o600);
    fs.chownSync(M('secret'), 0, 0);
    const denied = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', M('secret')]);
    const r = await denied.exited;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
    fs.chmodSync(s.dir, 0o755); // mkdtemp's 0700 would stop nobody before the mount
    fs.mkdirSync(M('shared'));
    fs.chmodSync(M('shared'), 0o777);
    const made = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'mkdir', M('shared/bynobody')]).exited;
    assert.equal(made.code, 0, made.stderr);
    assert.equal(fs.statSync(B('shared/bynobody')).uid, 65534);
    assert.equal(fs.statSync(B('shared/bynobody')).gid, 65534);
  });

  it('makes symlinks, reads them, follows them, and hard links share an inode', () => {
    fs.writeFileSync(M('target'), 'pointed at');
    fs.symlinkSync('target', M('link'));
    assert.equal(fs.readlinkSync(M('link')), 'target');
    assert.equal(fs.readlinkSync(B('link')), 'target');
    assert.equal(fs.readFileSync(M('link'), 'utf8'), 'pointed at');
    assert.ok(fs.lstatSync(M('link')).isSymbolicLink());
    fs.linkSync(M('target'), M('hard'));
    assert.equal(fs.statSync(M('target')).nlink, 2);
    assert.equal(fs.statSync(B('hard')).ino, fs.statSync(B('target')).ino);
    fs.appendFileSync(M('hard'), '!');
    assert.equal(fs.readFileSync(M('target'), 'utf8'), 'pointed at!');
    fs.unlinkSync(M('target'));
    assert.equal(fs.readFileSync(M('hard'), 'utf8'), 'pointed at!');
    assert.throws(() => fs.statSync(M('link')), { code: 'ENOENT' });
  });

  it('supports flock and fifos (kept by the kernel)', async () => {
    fs.writeFileSync(M('lockfile'), '');
    const holder = spawnSync('flock', ['--nonblock', M('lockfile'), 'flock', '--nonblock', M('lockfile'), 'true'], { encoding: 'utf8' });
    assert.equal(holder.status, 1, 'a second exclusive flock on the same file is refused while the first is held');
    const free = spawnSync('flock', ['--nonblock', M('lockfile'), 'true'], { encoding: 'utf8' });
    assert.equal(free.status, 0, free.stderr);
    const ff = spawnSync('mkfifo', [M('fifo')], { encoding: 'utf8' });
    assert.equal(ff.status, 0, ff.stderr);
    assert.ok(fs.statSync(B('fifo')).isFIFO());
  });

  it('counts requests per op class in status', async () => {
    const before = (await ffs.status()).counts;
    const fd = fs.openSync(M('counted'), 'w');
    fs.writeSync(fd, 'x');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const afterCounts = (await ffs.status()).counts;
    assert.ok(afterCounts.write! > before.write!);
    assert.ok(afterCounts.fsync! > before.fsync!);
    assert.ok(afterCounts.metadata! > before.metadata!);
  });
});

describe('faultfs delay and error faults', () => {
  let s: Scratch;
  let ffs: FaultFs;
  let M: (p: string) => string;
  before(async () => {
    ({ s, fs: ffs } = await mountScratch());
    M = (p) => join(s.mountpoint, p);
    for (const d of ['slow', 'bad', 'full', 'gone', 'fine']) fs.mkdirSync(M(d));
    fs.writeFileSync(M('slow/data'), 'slow bytes');
  });
  after(async () => {
    await dropScratch(s, ffs);
  });

  it('delays matching requests by at least the delay, on that path and op class only', async () => {
    await ffs.set([{ mode: 'delay', ops: ['read'], path: 'slow', delayMs: 300 }]);
    const before = (await ffs.status()).counts.delayed!;
    const t0 = performance.now();
    assert.equal(await fs.promises.readFile(M('slow/data'), 'utf8'), 'slow bytes');
    assert.ok(performance.now() - t0 >= 300, 'the read waited for its delay');
    const st = await ffs.status();
    assert.ok(st.counts.delayed! > before);
    assert.deepEqual(st.rules, [{ mode: 'delay', ops: ['read'], path: 'slow', delayMs: 300 }]);
    // Writes to the same path and reads elsewhere are not delayed: they are not counted as such.
    const n = st.counts.delayed!;
    await fs.promises.writeFile(M('slow/other'), 'w');
    await fs.promises.writeFile(M('fine/x'), 'x');
    assert.equal(await fs.promises.readFile(M('fine/x'), 'utf8'), 'x');
    assert.equal((await ffs.status()).counts.delayed, n);
    await ffs.set([]);
  });

  it('delayed requests wait side by side, each on its own deadline, holding no thread; release answers them early', async () => {
    await ffs.set({ mode: 'delay', ops: ['write'], path: 'slow/par*', delayMs: 600_000 });
    const writers = Array.from({ length: 6 }, (_, i) => run('dd', ['if=/dev/zero', `of=${M(`slow/par${i}`)}`, 'bs=512', 'count=1']));
    // All six are parked at once: none waits for another's delay to end.
    await until('six delayed writes parked', async () => (await ffs.status()).delayed === 6, 30_000);
    await fs.promises.writeFile(M('fine/during-delay'), 'not delayed');
    assert.equal(await ffs.release(), 6);
    const results = await Promise.all(writers.map((w) => w.exited));
    assert.ok(results.every((r) => r.code === 0));
    assert.equal(fs.statSync(join(s.backing, 'slow/par5')).size, 512);
    assert.equal((await ffs.status()).pending, 0);
    await ffs.set([]);
  });

  it('fails matching requests with the errno asked for: EIO on write, ENOSPC on fsync, EIO on metadata', async () => {
    fs.writeFileSync(M('full/f'), '');
    fs.writeFileSync(M('bad/f'), '');
    await ffs.set([
      { mode: 'error', ops: ['write'], path: 'bad', errno: 'EIO' },
      { mode: 'error', ops: ['fsync'], path: 'full/**', errno: 'ENOSPC' },
      { mode: 'error', ops: ['metadata'], path: 'gone', errno: 'EIO' },
    ]);
    const w = await fs.promises.open(M('bad/f'), 'r+');
    await assert.rejects(w.write('data'), { code: 'EIO' });
    await w.close();
    const f = await fs.promises.open(M('full/f'), 'r+');
    await f.write('fits');
    await assert.rejects(f.sync(), { code: 'ENOSPC' });
    await assert.rejects(f.datasync(), { code: 'ENOSPC' });
    await f.close();
    await assert.rejects(fs.promises.writeFile(M('gone/new'), 'x'), { code: 'EIO' });
    await assert.rejects(fs.promises.readdir(M('gone')), { code: 'EIO' });
    await fs.promises.writeFile(M('fine/ok'), 'still fine');
    assert.ok((await ffs.status()).counts.errored! >= 5);
    await ffs.set({ mode: 'healthy' });
    const again = await fs.promises.open(M('bad/f'), 'r+');
    await again.write('data');
    await again.sync();
    await again.close();
    assert.equal(fs.readFileSync(join(s.backing, 'bad/f'), 'utf8'), 'data');
  });

  it('a stat of a path whose attributes the kernel cached still meets a new fault', async () => {
    fs.writeFileSync(M('fine/cached'), 'c');
    fs.statSync(M('fine/cached'));
    await ffs.set({ mode: 'error', ops: ['metadata'], path: 'fine/cached', errno: 'EIO' });
    await assert.rejects(fs.promises.stat(M('fine/cached')), { code: 'EIO' });
    await ffs.set([]);
    assert.equal((await fs.promises.stat(M('fine/cached'))).size, 1);
  });

  it('the first matching rule decides', async () => {
    await ffs.set([
      { mode: 'healthy', path: 'bad/allowed' },
      { mode: 'error', errno: 'EROFS', path: 'bad/**' },
    ]);
    await fs.promises.writeFile(M('bad/allowed'), 'ok');
    await assert.rejects(fs.promises.writeFile(M('bad/denied'), 'no'), { code: 'EROFS' });
    await ffs.set([]);
  });
});

describe('faultfs bad input', () => {
  let s: Scratch;
  let ffs: FaultFs;
  before(async () => {
    ({ s, fs: ffs } = await mountScratch());
  });
  after(async () => {
    await dropScratch(s, ffs);
  });

  const refused = async (rules: unknown, field: string, message: RegExp): Promise<void> => {
    await assert.rejects(ffs.set(rules as FaultRule[]), (e: unknown) => {
      assert.ok(e instanceof FaultFsInputError, `expected FaultFsInputError, got ${String(e)}`);
      assert.equal(e.field, field);
      assert.match(e.message, message);
      assert.equal(e.mountpoint, s.mountpoint);
      return true;
    });
  };

  it('names the field of an unknown mode, op, errno, a bad glob, a missing delay or an unknown key', async () => {
    await refused({ mode: 'explode' }, 'rule.mode', /expected one of healthy, stall, delay, error, got "explode"/);
    await refused(
      [{ mode: 'stall' }, { mode: 'stall', ops: ['write', 'writes'] }],
      'rules[1].ops[1]',
      /expected one of read, write, fsync, metadata, got "writes"/,
    );
    await refused([{ mode: 'stall', ops: [] }], 'rules[0].ops', /non-empty list/);
    await refused({ mode: 'error', errno: 'EFOO' }, 'rule.errno', /errno name such as EIO or ENOSPC, got "EFOO"/);
    await refused({ mode: 'error' }, 'rule.errno', /got undefined/);
    await refused({ mode: 'stall', errno: 'EIO' }, 'rule.errno', /only an error rule/);
    await refused({ mode: 'delay' }, 'rule.delayMs', /integer number of ms/);
    await refused({ mode: 'delay', delayMs: -5 }, 'rule.delayMs', /got -5/);
    await refused({ mode: 'stall', path: '/abs' }, 'rule.path', /relative to the mount root/);
    await refused({ mode: 'stall', path: 'a/../b' }, 'rule.path', /no \. or \.\. segment/);
    await refused({ mode: 'stall', path: 'log.[0-9' }, 'rule.path', /unclosed \[/);
    await refused({ mode: 'stall', path: 'a\nb' }, 'rule.path', /control characters/);
    await refused({ mode: 'stall', paths: 'x' }, 'rule.paths', /unknown field/);
    await refused([null], 'rules[0]', /expected a rule object/);
    await assert.rejects(ffs.release({ errno: 'ENOPE' }), { name: 'FaultFsInputError', message: /^errno: / });
    // Refused input changed nothing.
    assert.deepEqual((await ffs.status()).rules, []);
  });

  it('normalises what it accepts and reads it back from the daemon', async () => {
    await ffs.set({ mode: 'error', errno: 'enospc', ops: ['fsync', 'write'], path: './zk1/' });
    assert.deepEqual((await ffs.status()).rules, [{ mode: 'error', errno: 'ENOSPC', ops: ['write', 'fsync'], path: 'zk1' }]);
    assert.deepEqual(normalizeRules({ mode: 'stall', path: '' }), [{ mode: 'stall' }]);
    await ffs.set([]);
  });

  it('refuses bad mount options with the field named, and a second mount on the same mount point', async () => {
    await assert.rejects(FaultFs.mount({ backing: join(s.dir, 'nope'), mountpoint: join(s.dir, 'm2') }), { name: 'FaultFsInputError', message: /^backing: / });
    await assert.rejects(FaultFs.mount({ backing: s.backing, mountpoint: s.mountpoint }), {
      name: 'FaultFsInputError',
      message: /^mountpoint: .*already a mount point/,
    });
    await assert.rejects(FaultFs.mount({ backing: s.backing, mountpoint: join(s.backing, 'inside') }), {
      name: 'FaultFsInputError',
      message: /must not contain each other/,
    });
    await assert.rejects(FaultFs.mount({ backing: s.backing, mountpoint: join(s.dir, 'm4'), threads: 1 }), {
      name: 'FaultFsInputError',
      message: /^threads: expected an integer from 2 to 256, got 1/,
    });
    await assert.rejects(FaultFs.mount({ backing: s.backing, mountpoint: join(s.dir, 'm4'), nice: -40 }), { name: 'FaultFsInputError', message: /^nice: / });
    await assert.rejects(FaultFs.mount({ backing: s.backing, mountpoint: join(s.dir, 'm3'), controlSocket: join(s.dir, 'm3', 'c.sock') }), {
      name: 'FaultFsInputError',
      message: /^controlSocket: .*must not be on the mount/,
    });
  });

  it('the CLI verbs parse faults, name the option at fault, and act on an attached mount', async () => {
    assert.deepEqual(parseDiskFault(['delay', '250'], { ops: 'write,fsync', path: 'zk1' }), {
      mode: 'delay',
      delayMs: 250,
      ops: ['write', 'fsync'],
      path: 'zk1',
    });
    assert.throws(() => parseDiskFault(['delay', 'soon']), { name: 'FaultFsInputError', message: /^delay: expected a number of milliseconds/ });
    assert.throws(() => parseDiskFault(['error', 'EWHAT']), { name: 'FaultFsInputError', message: /^errno: / });
    assert.throws(() => parseDiskFault(['stall'], { ops: 'reads' }), {
      name: 'FaultFsInputError',
      message: /^--ops: expected one of read, write, fsync, metadata, got "reads"/,
    });
    assert.throws(() => parseDiskFault(['stall'], { path: '/x' }), { name: 'FaultFsInputError', message: /^--path: / });
    assert.throws(() => parseDiskFault(['hang']), { name: 'FaultFsInputError', message: /^mode: / });
    assert.throws(() => parseDiskFault(['stall', '5']), { name: 'FaultFsInputError', message: /^arguments: stall takes no argument/ });
    const set = await runDiskCommand(s.mountpoint, ['error', 'EIO'], { ops: 'write' });
    assert.match(set.text, /error EIO for write on every path/);
    const st = await runDiskCommand(s.mountpoint, ['status']);
    assert.deepEqual((st.json as { rules: unknown }).rules, [{ mode: 'error', errno: 'EIO', ops: ['write'] }]);
    await assert.rejects(runDiskCommand(s.mountpoint, ['healthy'], { path: 'zk1' }), {
      name: 'FaultFsInputError',
      message: /^--path: healthy takes no --ops or --path/,
    });
    const healed = await runDiskCommand(s.mountpoint, ['healthy']);
    assert.equal((healed.json as { released: number }).released, 0);
    assert.deepEqual((await ffs.status()).rules, []);
    await assert.rejects(
      runDiskCommand(join(s.dir, 'not-mounted'), ['status']),
      (e: unknown) => e instanceof FaultFsError && !(e instanceof FaultFsInputError) && /no faultfs mounted there/.test(e.message),
    );
  });

  it('a control socket that nobody answers is a typed error naming the socket', async () => {
    const other = scratch();
    const o = await FaultFs.mount({ backing: other.backing, mountpoint: other.mountpoint });
    try {
      process.kill(o.daemonPid, 'SIGSTOP');
      await assert.rejects(
        o.status({ timeoutMs: 1000 }),
        (e: unknown) => e instanceof FaultFsError && e.message.includes(o.controlSocket) && /no answer to "status" within 1000 ms/.test(e.message),
      );
    } finally {
      await o.unmount();
      fs.rmSync(other.dir, { recursive: true, force: true });
    }
    assert.equal(
      faultFsMounts().some((m) => m.mountpoint === other.mountpoint),
      false,
    );
  });
});
