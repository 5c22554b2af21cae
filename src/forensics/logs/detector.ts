/** The detector contract: fed every timeline entry in order, asked for findings at the end. */
import type { Topology } from './topology.ts';
import type { TimeZone } from './time.ts';
import type { Entry, Finding } from './types.ts';

export interface DetectorContext {
  tz: TimeZone;
  topology: Topology;
  /** Real nodes (shared `_` folders excluded). */
  nodes: string[];
  /** Time of the first and last timed entry of the whole bundle. */
  start: number;
  end: number;
  /** Findings of the detectors that finished before (the verdict reads them). */
  findings: Finding[];
}

export interface Detector {
  readonly name: string;
  observe(e: Entry): void;
  finish(ctx: DetectorContext): Finding[];
}

/** A real node's timed entry (shared captures and untimed lines feed no liveness detector). */
export function isLive(e: Entry): boolean {
  return Number.isFinite(e.ts) && !e.node.startsWith('_');
}
