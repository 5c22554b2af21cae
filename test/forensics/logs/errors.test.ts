// Every forensics command's bad input: one line naming the path, the documented exit code, no
// stack trace; JSON errors under --json; conflicting or extra arguments refused; output into a
// closed pipe ends quietly. And discovery in odd shapes: symlink loops, the same file twice
// through a link, deep vendor layouts, rotated and gzipped files, nothing to judge.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { investigate } from '../../../src/forensics/logs/investigate.ts';

const repo = join(import.meta.dirname, '..', '..', '..');
const seed = join(repo, 'test', 'fixtures', 'seed-bundle');
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zkw-errors-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The CLI; as an unprivileged user when asked (root reads everything, EACCES needs another uid). */
function cli(args: string[], asNobody = false, input?: SpawnSyncOptions['stdio']): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
    ...(asNobody && process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
    ...(input ? { stdio: input } : {}),
  });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

function oneLine(r: { stderr: string }, path: RegExp | string): void {
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  if (typeof path === 'string') assert.ok(lines[0]!.includes(path), `${lines[0]} names ${path}`);
  else assert.match(lines[0]!, path);
}

test('ENOENT, EISDIR, ENOTDIR and EACCES name the path, one line, exit 2', () => {
  const missing = join(dir, 'missing');
  for (const args of [
    ['investigate', missing],
    ['txnlog', 'dump', missing],
    ['snapshot', 'dump', missing],
    ['tree', missing],
  ]) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r, missing);
  }
  const r = cli(['txnlog', 'dump', dir]);
  assert.equal(r.status, 2);
  oneLine(r, /EISDIR/);
  const secret = join(dir, 'secret');
  mkdirSync(secret);
  writeFileSync(join(secret, 'log.1'), 'x');
  chmodSync(join(secret, 'log.1'), 0o000);
  const acc = cli(['txnlog', 'dump', join(secret, 'log.1')], true);
  assert.equal(acc.status, 2, acc.stderr);
  oneLine(acc, /EACCES.*|.*log\.1.*EACCES/);
  assert.ok(acc.stderr.includes(join(secret, 'log.1')));
  // A bundle whose root cannot be read.
  chmodSync(secret, 0o000);
  const inv = cli(['investigate', secret], true);
  assert.equal(inv.status, 2, inv.stderr);
  oneLine(inv, secret);
  chmodSync(secret, 0o755);
});

test('ELOOP: a symlink loop as the file to dump names it', () => {
  const loop = join(dir, 'loop');
  symlinkSync(loop, loop);
  const r = cli(['snapshot', 'dump', loop]);
  assert.equal(r.status, 2);
  oneLine(r, /ELOOP/);
  assert.ok(r.stderr.includes(loop));
});

test('--json errors are one JSON object on stdout', () => {
  const r = cli(['investigate', join(dir, 'nope'), '--json']);
  assert.equal(r.status, 2);
  const j = JSON.parse(r.stdout) as { error: { message: string; exitCode: number } };
  assert.match(j.error.message, /no such directory/);
  assert.equal(j.error.exitCode, 2);
  const t = cli(['tree', join(dir, 'nope'), '--json']);
  assert.equal(t.status, 2);
  assert.ok((JSON.parse(t.stdout) as { error: { message: string } }).error.message.includes(join(dir, 'nope')));
  // Numbers are checked inside the action, so the error is JSON wherever --json stands.
  const values: [string[], string][] = [
    [['audit', 'a', 'b', '--json', '--limit', 'x'], "--limit expects a positive integer, got 'x'"],
    [['audit', '--servers', '127.0.0.1:1,127.0.0.1:2', '--timeout', '0', '--json'], "--timeout expects a positive integer, got '0'"],
    [['tree', join(dir, 'nope'), '--at', '0xzz', '--json'], "--at expects a zxid such as 0x100000025 or a decimal number, got '0xzz'"],
  ];
  for (const [args, message] of values) {
    const r = cli(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.deepEqual(JSON.parse(r.stdout), { error: { message, exitCode: 2 } }, args.join(' '));
  }
});

test("Commander's own usage errors under --json are a JSON error on stdout, exit 2, nothing on stderr", () => {
  const cases: [string[], RegExp][] = [
    [['tree', '--json'], /^missing required argument 'dir'$/],
    [['txnlog', 'dump', 'a', 'b', '--json'], /^too many arguments for 'dump'/],
    [['audit', '--json', '--bogus', 'a', 'b'], /^unknown option '--bogus'$/],
    [['snapshot', 'dump', '--nope', 'x', '--json'], /^unknown option '--nope'$/],
    [['investigate', seed, seed, '--json'], /^too many arguments for 'investigate'/],
    [['investigate', seed, '--format', 'json', '--nodes', 'x'], /^unknown option '--nodes' \(Did you mean --node\?\)$/],
    [['audit', 'a', 'b', '--json', '--limit'], /^option '--limit <n>' argument missing$/],
  ];
  for (const [args, message] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, '', `${args.join(' ')}: no text or help on stderr`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const j = JSON.parse(lines[0]!) as { error: { message: string; exitCode: number } };
    assert.match(j.error.message, message, args.join(' '));
    assert.equal(j.error.exitCode, 2);
  }
  // Without --json the usage error stays text with the command's help, on stderr.
  const text = cli(['tree', '--bogus', 'x']);
  assert.equal(text.status, 2);
  assert.equal(text.stdout, '');
  assert.match(text.stderr, /^error: unknown option '--bogus'\n/);
  assert.match(text.stderr, /Usage: zkwarden tree/);
});

test('conflicting and extra arguments are refused; --out that cannot be written fails before the work', () => {
  const c = cli(['investigate', seed, '--json', '--format', 'md']);
  assert.equal(c.status, 2);
  assert.match(c.stdout + c.stderr, /--json and --format md conflict/);
  const extra = cli(['investigate', seed, seed]);
  assert.equal(extra.status, 2);
  assert.match(extra.stderr, /too many arguments/);
  const extraTxn = cli(['txnlog', 'dump', 'a', 'b']);
  assert.equal(extraTxn.status, 2);
  const out = cli(['investigate', seed, '--out', join(dir, 'no', 'such', 'dir', 'r.html')]);
  assert.equal(out.status, 2);
  oneLine(out, /--out .*r\.html: ENOENT/);
  const isDir = cli(['investigate', seed, '--out', dir]);
  assert.equal(isDir.status, 2);
  oneLine(isDir, /EISDIR/);
});

test('investigate into a closed pipe ends quietly', () => {
  const r = spawnSync('bash', ['-c', `node --import tsx src/cli/main.ts investigate ${seed} --timeline | head -1`], { cwd: repo, encoding: 'utf8' });
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
});

test('discovery: loops cut, links read once, deep vendor layouts, rotations and gzip, all accounted', async () => {
  const root = join(dir, 'shapes');
  cpSync(seed, root, { recursive: true, preserveTimestamps: true });
  // The seed's deep vendor path for node1's chunk log, rotated and gzipped.
  const deep = join(root, 'node1', 'scvm_logs', 'zbs-chunk');
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'zbs-chunkd.log.20220615-175901.3570'), 'I0625 05:43:20.000000  1 chunk.cc:1] chunk alive\n');
  writeFileSync(join(deep, 'zbs-chunkd.log.20220615-175901.3569.gz'), gzipSync('I0625 05:40:00.000000  1 chunk.cc:1] older\n'));
  symlinkSync('..', join(deep, 'up')); // a loop back to an ancestor
  symlinkSync(join(root, 'node2', 'zookeeper.log'), join(root, 'node2', 'zk-link.log')); // same file twice
  writeFileSync(join(root, 'node3', 'core.dump'), Buffer.alloc(2048, 0)); // binary
  const inv = await investigate({ root });
  const reasons = inv.skipped.map((s) => `${s.rel}:${s.reason}`).sort();
  assert.deepEqual(
    reasons,
    ['node1/scvm_logs/zbs-chunk/up:symlink-loop', 'node2/zookeeper.log:duplicate', 'node3/core.dump:binary']
      .sort((a, b) => a.localeCompare(b))
      .map((x) => x)
      .sort(),
    JSON.stringify(inv.skipped),
  );
  const deepFile = inv.files.find((f) => f.file === 'node1/scvm_logs/zbs-chunk/zbs-chunkd.log.20220615-175901.3570');
  assert.equal(deepFile?.service, 'zbs-chunkd');
  assert.equal(deepFile?.year, 2022);
  assert.ok(inv.files.some((f) => f.gzip && f.lines === 1));
  // Same verdict as the seed itself.
  assert.equal(inv.verdicts[0]?.facts?.verdict, 'gray-failure');
  assert.equal(inv.verdicts[0]?.facts?.leaderNode, 'node1');
});

test('nothing to judge: 0 log lines, the skipped files named, exit 2', () => {
  const root = join(dir, 'empty-bundle');
  mkdirSync(join(root, 'n1'), { recursive: true });
  writeFileSync(join(root, 'n1', 'core'), Buffer.alloc(1024, 0));
  const r = cli(['investigate', root]);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /VERDICT: nothing to judge: 0 log lines; .*1 file\(s\) skipped: n1\/core \(binary\)/);
});
