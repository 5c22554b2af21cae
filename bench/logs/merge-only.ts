/** Bench helper: read + merge a bundle with no detectors, print lines/entries as JSON. */
import { investigate } from '../../src/forensics/logs/investigate.ts';

const root = process.argv[2];
if (!root) throw new Error('usage: merge-only.ts BUNDLE');
let entries = 0;
let lines = 0;
const inv = await investigate({
  root,
  tz: 'UTC',
  mergeOnly: true,
  onBatch: (b) => {
    entries += b.length;
    for (const e of b) lines += 1 + (e.more ? e.more.length : 0);
  },
});
process.stdout.write(JSON.stringify({ entries, lines, bytes: inv.stats.bytes }) + '\n');
