/**
 * `zkwarden investigate BUNDLE`: rebuild an incident's timeline from several nodes' logs and
 * explain it. Exit 1 when a gray failure of a leader is found or the data audit finds
 * divergence, 0 otherwise, 2 for bad input and for a bundle with nothing to judge.
 */
import { once } from 'node:events';
import { closeSync, openSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { BundleError, parseNodeSpec, type NodeSpec } from '../forensics/logs/bundle.ts';
import { investigate } from '../forensics/logs/investigate.ts';
import { TimeZone, TimeZoneError } from '../forensics/logs/time.ts';
import type { Entry } from '../forensics/logs/types.ts';
import { render, REPORT_FORMATS, type ReportFormat } from '../forensics/report/index.ts';
import { CliError, ExitCode, cliAction, jsonUsageErrors } from './output.ts';

function toCliError(e: unknown): CliError | null {
  if (e instanceof BundleError || e instanceof TimeZoneError) return new CliError(e.message);
  return null;
}

/** `--out` that cannot be written fails before any work: opened (and removed if it was new). */
export function checkWritable(path: string, flag: string): void {
  let existed = true;
  try {
    if (statSync(path).isDirectory()) throw new CliError(`${flag} ${path}: EISDIR: is a directory`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    existed = false;
  }
  try {
    closeSync(openSync(path, 'a'));
    if (!existed) unlinkSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError(`${flag} ${path}: ${err.code ?? 'error'}: ${err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')}`);
  }
}

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

/** Bundles above this size or file count get a progress bar on stderr (when it is a terminal or --progress). */
const PROGRESS_BYTES = 64 * 1024 * 1024;
const PROGRESS_FILES = 1000;

export function register(program: Command): void {
  const cmd = program
    .command('investigate')
    .description("rebuild an incident's timeline from several nodes' logs (glog, ZooKeeper log4j, stat listings, srvr/mntr/dump) and explain it")
    .argument('[BUNDLE]', 'bundle directory: one folder per node (see docs/bundle.md)')
    .option(
      '--node <NAME=GLOB>',
      "files of one node, e.g. node1='/logs/n1/*.log*' (repeatable; replaces the folder layout)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--year <YYYY>', 'year for glog lines when the bundle gives none')
    .option('--tz <ZONE>', 'time zone the logs were written in: +08:00, UTC, Asia/Shanghai (default: bundle.json, else local)')
    .option('--format <FORMAT>', `report format: ${REPORT_FORMATS.join('|')}`, 'text')
    .option('--out <FILE>', 'write the report to FILE instead of stdout')
    .option('--json', 'same as --format json')
    .option('--timeline', 'print the merged timeline (every line, in order) instead of a report; runs no detector, exits 0')
    .option('--progress', 'show progress even when stderr is not a terminal')
    .option('--min-silence <SECONDS>', 'shortest gap that can count as a silence', '30')
    .allowExcessArguments(false)
    .addHelpText(
      'after',
      '\nExit codes: 0 report written, 1 a gray failure of a leader was found or the ZooKeeper data diverged,\n2 bad usage or input, or nothing to judge (no log line read).\nExample: zkwarden investigate ./bundle --tz +08:00 --format html --out report.html',
    )
    .action(
      cliAction(toCliError, async (bundle: string | undefined, o: Opts, cmd: Command) => {
        if (o.json && cmd.getOptionValueSource('format') === 'cli' && o.format !== 'json') {
          throw new CliError(`--json and --format ${o.format} conflict: give one`);
        }
        if (o.timeline && (o.json || cmd.getOptionValueSource('format') === 'cli'))
          throw new CliError('--timeline prints the merged timeline: it takes no --json or --format');
        if (bundle && o.node.length > 0) throw new CliError('give a BUNDLE directory or --node NAME=GLOB, not both');
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
        if (o.out) checkWritable(o.out, '--out');

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
            root: bundle,
            nodeSpecs,
            tz: o.tz,
            year,
            minSilenceMs: minSilence * 1000,
            onBatch,
            mergeOnly: !!o.timeline,
            onStart: ({ tz }) => {
              tzForTimeline = tz;
            },
            onProgress: (read, total, files, totalFiles) => {
              if (!bar && (total >= PROGRESS_BYTES || totalFiles >= PROGRESS_FILES || o.progress) && (process.stderr.isTTY || o.progress)) {
                bar = new cliProgress.SingleBar(
                  {
                    stream: process.stderr,
                    format: 'reading {bar} {percentage}% | {files}/{totalFiles} files | {value}/{total} MB | {eta_formatted} left',
                    hideCursor: true,
                    noTTYOutput: !process.stderr.isTTY,
                    notTTYSchedule: 1000,
                  },
                  cliProgress.Presets.shades_classic,
                );
                bar.start(Math.max(1, Math.ceil(total / 1e6)), 0, { files: 0, totalFiles });
              }
              bar?.update(Math.floor(read / 1e6), { files, totalFiles });
            },
          });
          (bar as cliProgress.SingleBar | null)?.stop();
          if (!o.timeline) {
            const text = render(inv, format, { color: !o.out && process.stdout.isTTY });
            if (o.out) writeFileSync(o.out, text);
            else process.stdout.write(text);
          }
          if (o.timeline) return;
          const gray = inv.verdicts.some((v) => v.facts?.verdict === 'gray-failure');
          const diverged = inv.data.status === 'audited' && (inv.data.result as { class?: string } | undefined)?.class === 'diverged';
          process.exitCode = gray || diverged ? ExitCode.finding : inv.nothingToJudge ? ExitCode.usage : ExitCode.ok;
          if (inv.nothingToJudge && !gray && !diverged && (o.out || format !== 'text')) process.stderr.write(`zkwarden: ${inv.nothingToJudge}\n`);
        } finally {
          (bar as cliProgress.SingleBar | null)?.stop();
        }
      }),
    );
  jsonUsageErrors(cmd);
}
