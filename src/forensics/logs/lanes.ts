/**
 * Activity lanes: one per node/service, a histogram of lines and error lines over time for the
 * reports. Buckets start at one second and double their width whenever a lane holds too many:
 * bounded memory, and short bundles still get a readable picture.
 */
import type { Entry } from './types.ts';

export interface Lane {
  id: string;
  node: string;
  service: string;
  lines: number;
  first: number;
  last: number;
  /** Width of an activity bucket (1 s, doubled until a lane has at most 4096 buckets). */
  bucketMs: number;
  /** [bucket start (epoch ms), lines, error lines] per bucket with activity. */
  buckets: [number, number, number][];
}

const MAX_BUCKETS = 4096;

interface LaneAcc {
  node: string;
  service: string;
  lines: number;
  first: number;
  last: number;
  bucketMs: number;
  b: Map<number, [number, number]>;
  lastKey: number;
  lastBucket: [number, number] | null | undefined;
}

export class LaneBuilder {
  private readonly lanes = new Map<string, LaneAcc>();
  private readonly bySrc: LaneAcc[] = [];

  private coarsen(lane: LaneAcc): void {
    const merged = new Map<number, [number, number]>();
    for (const [k, v] of lane.b) {
      const k2 = Math.floor(k / 2);
      const m = merged.get(k2);
      if (m) {
        m[0] += v[0];
        m[1] += v[1];
      } else merged.set(k2, [v[0], v[1]]);
    }
    lane.b = merged;
    lane.bucketMs *= 2;
    lane.lastKey = NaN;
    lane.lastBucket = null;
  }

  /** One timed entry. */
  add(e: Entry): void {
    // Entries of one file share their lane; mtime records each name theirs.
    let lane = e.fmt === 'mtime' ? undefined : this.bySrc[e.src];
    if (!lane) {
      const id = `${e.node}/${e.service}`;
      lane = this.lanes.get(id);
      if (!lane) {
        lane = { node: e.node, service: e.service, lines: 0, first: e.ts, last: e.ts, bucketMs: 1000, b: new Map(), lastKey: NaN, lastBucket: null };
        this.lanes.set(id, lane);
      }
      if (e.fmt !== 'mtime') this.bySrc[e.src] = lane;
    }
    lane.lines += e.more === undefined ? 1 : 1 + e.more.length;
    if (e.ts > lane.last) lane.last = e.ts;
    if (e.ts < lane.first) lane.first = e.ts;
    const k = Math.floor(e.ts / lane.bucketMs);
    const err = e.level === 'E' || e.level === 'F' ? 1 : 0;
    let b = k === lane.lastKey ? lane.lastBucket : lane.b.get(k);
    if (!b) {
      b = [0, 0];
      lane.b.set(k, b);
      if (lane.b.size > MAX_BUCKETS) this.coarsen(lane);
    }
    b[0]++;
    b[1] += err;
    lane.lastKey = k;
    lane.lastBucket = b;
  }

  lanesSorted(): Lane[] {
    return [...this.lanes.entries()]
      .map(([id, l]) => ({
        id,
        node: l.node,
        service: l.service,
        lines: l.lines,
        first: l.first,
        last: l.last,
        bucketMs: l.bucketMs,
        buckets: [...l.b.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k * l.bucketMs, v[0], v[1]] as [number, number, number]),
      }))
      .sort((a, b) => (a.node === b.node ? a.service.localeCompare(b.service) : a.node.localeCompare(b.node)));
  }
}
