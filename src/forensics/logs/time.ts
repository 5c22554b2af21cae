/**
 * Wall-clock ↔ epoch conversion for log timestamps. glog and log4j both write local wall time
 * without a zone, so every parsed timestamp goes through one `TimeZone` chosen for the bundle
 * (a flag, default the machine's zone). Offsets of named zones are cached per hour so a billion
 * lines do not mean a billion `Intl` calls.
 */
export class TimeZoneError extends Error {
  constructor(readonly spec: string) {
    super(`--tz: "${spec}" is neither an offset like +08:00 nor a time zone name like Asia/Shanghai`);
    this.name = 'TimeZoneError';
  }
}

export class TimeZone {
  readonly name: string;
  private readonly fixedMin: number | null;
  private readonly fmt: Intl.DateTimeFormat | null;
  private readonly cache = new Map<number, number>();
  private lastWhole = NaN;
  private lastBase = '';

  private constructor(name: string, fixedMin: number | null, fmt: Intl.DateTimeFormat | null) {
    this.name = name;
    this.fixedMin = fixedMin;
    this.fmt = fmt;
  }

  /** `UTC`, `Z`, `+08:00`, `-0530`, `+8`, an IANA name, or undefined/`local` for the machine's zone. */
  static parse(spec?: string): TimeZone {
    if (spec === undefined || spec === '' || spec === 'local') {
      const name = Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
      return TimeZone.parse(name);
    }
    if (spec === 'UTC' || spec === 'Z' || spec === 'GMT') return new TimeZone('UTC', 0, null);
    const m = /^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(spec);
    if (m) {
      const min = (Number(m[2]) * 60 + Number(m[3] ?? 0)) * (m[1] === '-' ? -1 : 1);
      if (Math.abs(min) > 14 * 60) throw new TimeZoneError(spec);
      return new TimeZone(formatOffset(min), min, null);
    }
    try {
      const fmt = new Intl.DateTimeFormat('en-US', {
        timeZone: spec,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
      return new TimeZone(spec, null, fmt);
    } catch {
      throw new TimeZoneError(spec);
    }
  }

  /** Offset from UTC in minutes at the given instant. */
  offsetAt(epochMs: number): number {
    if (this.fixedMin !== null) return this.fixedMin;
    const hour = Math.floor(epochMs / 3_600_000);
    const hit = this.cache.get(hour);
    if (hit !== undefined) return hit;
    const parts = this.fmt!.formatToParts(new Date(hour * 3_600_000));
    const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
    const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    const off = Math.round((asUtc - hour * 3_600_000) / 60_000);
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(hour, off);
    return off;
  }

  /** Epoch ms of a wall-clock time in this zone (month 1-12; ms may carry a fraction for µs). */
  toEpoch(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number {
    const wall = Date.UTC(y, mo - 1, d, h, mi, s) + ms;
    if (this.fixedMin !== null) return wall - this.fixedMin * 60_000;
    // Two passes settle the offset across DST changes.
    let epoch = wall - this.offsetAt(wall) * 60_000;
    epoch = wall - this.offsetAt(epoch) * 60_000;
    return epoch;
  }

  /** `2022-06-25 05:43:23.800374` in this zone; `digits` fraction digits (0, 3 or 6). */
  format(epochMs: number, digits = 6): string {
    if (!Number.isFinite(epochMs)) return '(no time)';
    const off = this.offsetAt(epochMs);
    const local = epochMs + off * 60_000;
    const whole = Math.floor(local / 1000);
    // Timelines print millions of lines, most in the same second as the previous one.
    let base: string;
    if (whole === this.lastWhole) base = this.lastBase;
    else {
      const d = new Date(whole * 1000);
      const p2 = (n: number): string => String(n).padStart(2, '0');
      base = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
      this.lastWhole = whole;
      this.lastBase = base;
    }
    if (digits === 0) return base;
    const frac = Math.round((local - whole * 1000) * 1000); // µs
    const fs = String(Math.min(frac, 999_999)).padStart(6, '0').slice(0, digits);
    return `${base}.${fs}`;
  }

  /** Wall-clock year, month (1-12), day of an instant, in this zone. */
  ymd(epochMs: number): { y: number; mo: number; d: number } {
    const d = new Date(epochMs + this.offsetAt(epochMs) * 60_000);
    return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate() };
  }

  label(epochMs: number): string {
    return this.fixedMin === null ? `${this.name} (${formatOffset(this.offsetAt(epochMs))})` : this.name;
  }
}

export function formatOffset(min: number): string {
  if (min === 0) return 'UTC';
  const a = Math.abs(min);
  return `${min < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** A duration for humans: 850 ms, 7.2 s, 3 min 20 s, 2 h 24 min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(ms)} ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  if (a < 3_600_000) {
    const m = Math.floor(a / 60_000);
    const s = Math.round((a - m * 60_000) / 1000);
    return `${m} min${s ? ` ${s} s` : ''}`;
  }
  const h = Math.floor(a / 3_600_000);
  const m = Math.round((a - h * 3_600_000) / 60_000);
  return `${h} h${m ? ` ${m} min` : ''}`;
}
