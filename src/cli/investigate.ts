/**
 * `zkwarden investigate BUNDLE`: rebuild an incident's timeline from several nodes' logs and
 * explain it. Exit 1 when a gray failure of a leader is found, 0 otherwise, 2 for bad input.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { BundleError, parseNodeSpec, type NodeSpec } from '../forensics/logs/bundle.ts';
import { investigate } from '../forensics/logs/investigate.ts';
import { TimeZone, TimeZoneError } from '../forensics/logs/time.ts';
import type { Entry } from '../forensics/logs/types.ts';
import { render, REPORT_FORMATS, type ReportFormat } from '../forensics/report/index.ts';
import { CliError, ExitCode } from './output.ts';

interface Opts {
  node: string[];
  year?: string;
  tz?: string;
  format: string;
  out?: string;
  json?: boolean;
  timeline?: boolean;
  progress?: boolean;
  minSilence?: string;
}

/** Bundles above this size get a progress bar on stderr (when it is a terminal or --progress). */
const PROGRESS_BYTES = 64 * 1024 * 1024;

export function register(program: Command): void {
  program
    .command('investigate')
    .description("rebuild an incident's timeline from several nodes' logs (glog, ZooKeeper log4j, stat listings, srvr/mntr/dump) and explain it")
    .argument('[BUNDLE]', 'bundle directory: one folder per node (see docs/bundle.md)')
    .option('--node <NAME=GLOB>', 'files of one node, e.g. node1=\'/logs/n1/*.log*\' (repeatable; replaces the folder layout)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--year <YYYY>', 'year for glog lines when the bundle gives none')
    .option('--tz <ZONE>', 'time zone the logs were written in: +08:00, UTC, Asia/Shanghai (default: bundle.json, else local)')
    .option('--format <FORMAT>', `report format: ${REPORT_FORMATS.join('|')}`, 'text')
    .option('--out <FILE>', 'write the report to FILE instead of stdout')
    .option('--json', 'same as --format json')
    .option('--timeline', 'print the merged timeline (every line, in order) instead of a report; runs no detector, exits 0')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--min-silence <SECONDS>', 'shortest gap that can count as a silence', '30')
    .addHelpText('after', '\nExit codes: 0 report written, 1 a gray failure of a leader was found, 2 bad usage or input.\nExample: zkwarden investigate ./bundle --tz +08:00 --format html --out report.html')
    .action(async (bundle: string | undefined, o: Opts) => {
      const format = (o.json ? 'json' : o.format) as ReportFormat;
      if (!REPORT_FORMATS.includes(format)) throw new CliError(`--format: expected one of ${REPORT_FORMATS.join(', ')}, got "${o.format}"`);
      let year: number | undefined;
      if (o.year !== undefined) {
        year = Number(o.year);
        if (!Number.isInteger(year) || year < 1970 || year > 2999) throw new CliError(`--year: expected a year like 2022, got "${o.year}"`);
      }
      const minSilence = Number(o.minSilence);
      if (!(minSilence > 0)) throw new CliError(`--min-silence: expected seconds > 0, got "${o.minSilence}"`);
      let nodeSpecs: NodeSpec[] = [];
      try {
        nodeSpecs = o.node.map(parseNodeSpec);
        if (o.tz) TimeZone.parse(o.tz);
      } catch (e) {
        if (e instanceof BundleError || e instanceof TimeZoneError) throw new CliError(e.message);
        throw e;
      }
      if (!bundle && nodeSpecs.length === 0) throw new CliError('give a BUNDLE directory or at least one --node NAME=GLOB');

      let bar: cliProgress.SingleBar | null = null;
      let tzForTimeline = TimeZone.parse(o.tz);
      const onBatch = o.timeline
        ? async (batch: Entry[]) => {
          const lines: string[] = [];
          for (const e of batch) {
            lines.push(`${tzForTimeline.format(e.ts, 6).padEnd(26)} ${e.node} ${e.service} ${e.file}:${e.line} | ${e.text}`);
            for (const m of e.more ?? []) lines.push(`${' '.repeat(27)}${e.node} ${e.service} | ${m}`);
          }
          // Respect backpressure: a gigabyte timeline into a pipe must not pile up in memory.
          if (!process.stdout.write(lines.join('\n') + '\n')) await once(process.stdout, 'drain');
        }
        : undefined;
      try {
        const inv = await investigate({
          // The timeline alone needs no detectors (no report is printed).
          root: bundle, nodeSpecs, tz: o.tz, year, minSilenceMs: minSilence * 1000, onBatch, mergeOnly: !!o.timeline,
          onStart: ({ tz }) => {
            tzForTimeline = tz;
          },
          onProgress: (read, total) => {
            if (!bar && total >= PROGRESS_BYTES && (process.stderr.isTTY || o.progress)) {
              bar = new cliProgress.SingleBar({
                stream: process.stderr, format: 'reading {bar} {percentage}% | {value}/{total} MB | {eta_formatted} left', hideCursor: true,
                noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 1000,
              }, cliProgress.Presets.shades_classic);
              bar.start(Math.ceil(total / 1e6), 0);
            }
            bar?.update(Math.floor(read / 1e6));
          },
        });
        (bar as cliProgress.SingleBar | null)?.stop();
        if (!o.timeline) {
          const text = render(inv, format, { color: !o.out && process.stdout.isTTY });
          if (o.out) writeFileSync(o.out, text);
          else process.stdout.write(text);
        }
        const gray = inv.verdicts.some((v) => v.facts?.verdict === 'gray-failure');
        process.exitCode = gray ? ExitCode.finding : ExitCode.ok;
      } catch (e) {
        (bar as cliProgress.SingleBar | null)?.stop();
        if (e instanceof BundleError || e instanceof TimeZoneError) throw new CliError(e.message);
        throw e;
      }
    });
}
