// The HTML report in a real browser (Debian's headless chromium via playwright-core): lanes,
// silence shading and marks are drawn, a click on a mark shows its log lines, zoom works, and
// the page asks for nothing over the network. The screenshot is taken into the test's temporary
// directory; ZKWARDEN_UPDATE_DOCS=1 also copies it to docs/investigate-report.png (DEVELOPERS.md),
// so a test run never changes a tracked file.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { investigate } from '../../../src/forensics/logs/investigate.ts';
import { renderHtml } from '../../../src/forensics/report/html.ts';

const repo = join(import.meta.dirname, '..', '..', '..');
const CHROMIUM = '/usr/bin/chromium';
let browser: Browser;
let dir: string;

before(async () => {
  assert.ok(existsSync(CHROMIUM), 'Debian chromium is needed: apt-get install -y chromium');
  dir = mkdtempSync(join(tmpdir(), 'zkw-html-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('seed report: lanes, silence, marks; clicking a mark shows its lines; no network', async () => {
  const inv = await investigate({ root: join(repo, 'test', 'fixtures', 'seed-bundle') });
  const file = join(dir, 'seed.html');
  writeFileSync(file, renderHtml(inv));
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${file}`, { timeout: 30_000 });
  await page.waitForSelector('svg#timeline', { timeout: 10_000 });
  assert.deepEqual(errors, []);
  const lanes = await page.$$eval('g.lane', (gs) => gs.map((g) => g.getAttribute('data-lane')));
  assert.deepEqual(lanes, ['__verdicts', ...inv.lanes.map((l) => l.id)]);
  assert.ok((await page.$$('rect.silence[data-node="node1"]')).length >= 1, 'node1 silence shaded');
  // Marks at one moment on one lane share a cluster mark (data-kinds lists them).
  const kinds = await page.$$eval('.mark', (ms) => ms.flatMap((m) => (m.getAttribute('data-kinds') ?? m.getAttribute('data-kind') ?? '').split(',')));
  for (const k of ['verdict', 'failed-calls', 'quorum-member-dropped', 'last-sign-of-life']) assert.ok(kinds.includes(k), `a ${k} mark`);
  // Click the quorum drop: its GOODBYE line appears in the details panel.
  await page.click('.mark[data-kind="quorum-member-dropped"]');
  const lines = await page.$$eval('#details pre.line', (ps) => ps.map((p) => p.textContent ?? ''));
  assert.ok(
    lines.some((l) => l.includes('******* GOODBYE /10.1.88.101:55810 ********')),
    lines.join('\n'),
  );
  // Zoom in keeps the marks and narrows the range.
  const before = await page.textContent('#range');
  await page.click('#zin');
  assert.notEqual(await page.textContent('#range'), before);
  await page.click('#zreset');
  // Click a failed call (inside the cluster it shares with node2's last sign of life, then its
  // entry in the list): the Traceback continuation lines are shown with it.
  await page.click('.mark.cluster[data-kinds*="failed-calls"]');
  await page.click('#details .meta >> text=ETimedOut');
  const txt = await page.textContent('#details');
  assert.match(txt ?? '', /\[ETimedOut\]: ProtoAsyncClient meet timeout/);
  // The on-call page: a findings table, a box for what was not read, a legend for every mark.
  const rows = await page.$$eval('table.findings tr[data-idx]', (trs) => trs.length);
  assert.ok(rows >= inv.verdicts.length + 3, `findings table rows: ${rows}`);
  assert.match((await page.textContent('#unread')) ?? '', /What was not read/);
  const legend = await page.$$eval('#legend span', (ss) => ss.map((x) => x.getAttribute('data-kind')));
  for (const k of [...kinds, 'cluster']) assert.ok(legend.includes(k), `legend has ${k}`);
  // Per-node filter: unticking node3 hides its lanes and rows.
  await page.click('input[data-node="node3"]');
  const lanes3 = await page.$$eval('g.lane', (gs) => gs.map((g) => g.getAttribute('data-lane')));
  assert.ok(!lanes3.some((l) => l?.startsWith('node3/')), lanes3.join(','));
  assert.equal(
    await page.$$eval(
      'table.findings tr[data-node="node3"]',
      (trs) => trs.filter((t) => (t as unknown as { style: { display: string } }).style.display !== 'none').length,
    ),
    0,
  );
  await page.click('input[data-node="node3"]');
  // --since/--until: the view narrows to the window, marks outside it go.
  await page.fill('#since', '2022-06-25 05:43:00');
  await page.fill('#until', '2022-06-25 05:44:00');
  await page.click('#fapply');
  assert.match((await page.textContent('#range')) ?? '', /^2022-06-25 05:43:00 – 2022-06-25 05:44:00$/);
  assert.equal(await page.$$eval('.mark[data-kind="silence"]', (ms) => ms.length), 0);
  await page.click('#fclear');
  const shot = join(dir, 'investigate-report.png');
  await page.screenshot({ path: shot, fullPage: false });
  assert.ok(
    readFileSync(shot)
      .subarray(0, 8)
      .equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    'the screenshot is a PNG',
  );
  if (process.env.ZKWARDEN_UPDATE_DOCS === '1') copyFileSync(shot, join(repo, 'docs', 'investigate-report.png'));
  assert.deepEqual(requests, [], 'the report is self-contained');
  await page.close();
});

test('no verdict is not green; nothing to judge says why; colliding marks cluster', async () => {
  // A bundle with only a binary file: nothing to judge.
  const root = join(dir, 'nothing');
  mkdirSync(join(root, 'n1'), { recursive: true });
  writeFileSync(join(root, 'n1', 'core'), Buffer.alloc(4096, 0));
  const inv = await investigate({ root });
  assert.match(inv.nothingToJudge ?? '', /^nothing to judge: 0 log lines; .*1 file\(s\) skipped: n1\/core \(binary\)/);
  const file = join(dir, 'nothing.html');
  writeFileSync(file, renderHtml(inv));
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await page.goto(`file://${file}`);
  await page.waitForSelector('svg#timeline');
  const bg = await page.evaluate('getComputedStyle(document.getElementById("verdict-box")).backgroundColor');
  assert.notEqual(bg, 'rgb(241, 248, 241)', 'not the reassuring green');
  assert.match((await page.textContent('#verdict-box')) ?? '', /No verdict — nothing to judge/);
  assert.match((await page.textContent('#unread')) ?? '', /n1\/core — binary/);
  await page.close();
  // Many failures on one lane within a second, on an hour-long axis: one cluster mark.
  const many = join(dir, 'many');
  const lines: string[] = [];
  for (let k = 0; k < 30; k++)
    lines.push(`W0625 05:00:${String(k).padStart(2, '0')}.000000  1 c.cc:1] [ETimedOut] x socket: 10.0.0.2:${5000 + k}-->10.0.0.${k + 10}:10100`);
  lines.push('I0625 06:00:00.000000  1 c.cc:1] done');
  mkdirSync(join(many, 'n2'), { recursive: true });
  writeFileSync(join(many, 'n2', 'svc.INFO'), lines.join('\n') + '\n');
  const inv2 = await investigate({ root: many, tz: 'UTC', year: 2022 });
  const f2 = join(dir, 'many.html');
  writeFileSync(f2, renderHtml(inv2));
  const p2 = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  await p2.goto(`file://${f2}`);
  await p2.waitForSelector('svg#timeline');
  const clusters = await p2.$$eval('.mark.cluster', (ms) => ms.map((m) => Number(m.getAttribute('data-count'))));
  assert.ok(clusters.length >= 1 && clusters.some((n) => n >= 10), `clusters: ${clusters.join(',')}`);
  await p2.click('.mark.cluster');
  assert.match((await p2.textContent('#details')) ?? '', /marks close together/);
  await p2.close();
});
