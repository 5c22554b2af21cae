// The HTML report in a real browser (Debian's headless chromium via playwright-core): lanes,
// silence shading and marks are drawn, a click on a mark shows its log lines, zoom works, and
// the page asks for nothing over the network. The screenshot goes to docs/.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    executablePath: CHROMIUM, timeout: 60_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
  const kinds = await page.$$eval('.mark', (ms) => ms.map((m) => m.getAttribute('data-kind')));
  for (const k of ['verdict', 'failed-calls', 'quorum-member-dropped', 'last-sign-of-life']) assert.ok(kinds.includes(k), `a ${k} mark`);
  // Click the quorum drop: its GOODBYE line appears in the details panel.
  await page.click('.mark[data-kind="quorum-member-dropped"]');
  const lines = await page.$$eval('#details pre.line', (ps) => ps.map((p) => p.textContent ?? ''));
  assert.ok(lines.some((l) => l.includes('******* GOODBYE /10.1.88.101:55810 ********')), lines.join('\n'));
  // Zoom in keeps the marks and narrows the range.
  const before = await page.textContent('#range');
  await page.click('#zin');
  assert.notEqual(await page.textContent('#range'), before);
  await page.click('#zreset');
  // Click a failed call: the Traceback continuation lines are shown with it.
  await page.click('.mark[data-kind="failed-calls"]');
  const txt = await page.textContent('#details');
  assert.match(txt ?? '', /\[ETimedOut\]: ProtoAsyncClient meet timeout/);
  await page.screenshot({ path: join(repo, 'docs', 'investigate-report.png'), fullPage: false });
  assert.deepEqual(requests, [], 'the report is self-contained');
  await page.close();
});
