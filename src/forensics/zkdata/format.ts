/**
 * Text formats of ZooKeeper's own tools, so a zkwarden dump can be read (and diffed) next to
 * SnapshotFormatter and TxnLogToolkit output.
 */
import { type ACL, sessionHex } from '../../zk/records.ts';
import { opName, type TxnEntry, type TxnRecord } from '../../zk/txn.ts';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

let zone: string | null = null;
function zoneName(d: Date): string {
  // The JVM prints the zone's short name; computed once (a dump formats millions of dates).
  if (zone !== null) return zone;
  const tz = process.env.TZ ?? '';
  if (d.getTimezoneOffset() === 0 && (tz === '' || tz === 'UTC' || tz === 'Etc/UTC')) zone = 'UTC';
  else zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  return zone;
}

// Times repeat at second resolution across neighbouring nodes: remember the last few.
const dateCache = new Map<number, string>();

/** java.util.Date.toString(): "Thu Nov 26 11:26:10 UTC 2026", in the local time zone. */
export function javaDate(ms: number): string {
  const sec = Math.floor(ms / 1000);
  const hit = dateCache.get(sec);
  if (hit !== undefined) return hit;
  const d = new Date(ms);
  const s = `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${zoneName(d)} ${d.getFullYear()}`;
  if (dateCache.size > 4096) dateCache.clear();
  dateCache.set(sec, s);
  return s;
}

/** Java's String.format("%#016x", long): 0x then at least 14 hex digits, two's complement. */
export function javaHex16(v: number | bigint): string {
  if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) {
    // Two 32-bit halves: integer-to-hex of small integers is much faster than of doubles.
    const hi = Math.floor(v / 0x100000000);
    const lo = (v >>> 0).toString(16);
    const h = hi === 0 ? lo : hi.toString(16) + '00000000'.slice(lo.length) + lo;
    return h.length >= 14 ? `0x${h}` : `0x${'00000000000000'.slice(h.length)}${h}`;
  }
  if (v === 0n) return '0x00000000000000';
  // The digits of sessionHex (Long.toHexString), padded.
  return `0x${sessionHex(typeof v === 'bigint' ? v : BigInt(v))
    .slice(2)
    .padStart(14, '0')}`;
}

/** ISO time in UTC with milliseconds, for zkwarden's own lines. */
export function isoTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

export function hexZxid(z: number): string {
  return `0x${z.toString(16)}`;
}

export function aclString(acl: readonly ACL[]): string {
  return `[${acl.map((a) => `${a.perms},s{'${a.id.scheme},'${a.id.id}}`).join(', ')}]`;
}

function dataString(d: Buffer | null): string {
  if (!d) return '';
  // TxnLogToolkit prints data as text; keep binary readable by escaping non-printables.
  return d.toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function recordString(rec: TxnRecord | null): string {
  if (!rec) return '';
  switch (rec.kind) {
    case 'create':
      return `${rec.path},${dataString(rec.data)},${aclString(rec.acl)},${rec.ephemeral},${rec.parentCVersion}`;
    case 'createContainer':
      return `${rec.path},${dataString(rec.data)},${aclString(rec.acl)},${rec.parentCVersion}`;
    case 'createTTL':
      return `${rec.path},${dataString(rec.data)},${aclString(rec.acl)},${rec.parentCVersion},${rec.ttl}`;
    case 'setData':
      return `${rec.path},${dataString(rec.data)},${rec.version}`;
    case 'delete':
      return rec.path;
    case 'check':
      return `${rec.path},${rec.version}`;
    case 'setACL':
      return `${rec.path},${aclString(rec.acl)},${rec.version}`;
    case 'createSession':
      return `timeOut:${rec.timeOut}`;
    case 'closeSession':
      return rec.paths2Delete ? `paths2Delete:[${rec.paths2Delete.join(',')}]` : '';
    case 'error':
      return `err:${rec.err}`;
    case 'multi':
      return rec.txns.map((t) => `${opName(t.type)}:${recordString(t.record)}`).join(';');
  }
}

/** One line per transaction, like TxnLogToolkit (time in ISO UTC rather than the JVM locale). */
export function txnLine(e: TxnEntry): string {
  const h = e.header;
  return `${isoTime(h.time)} session ${sessionHex(h.clientId)} cxid 0x${(h.cxid >>> 0).toString(16)} zxid ${hexZxid(h.zxid)} ${opName(h.type)} ${recordString(e.record)}`;
}

/** One transaction in a line of a report: type, record (cut at 160 characters), session, time. */
export function describeTxn(e: TxnEntry): string {
  const rec = recordString(e.record);
  return `${opName(e.header.type)} ${rec.length > 160 ? `${rec.slice(0, 160)}…` : rec} (session ${sessionHex(e.header.clientId)}, ${isoTime(e.header.time)})`;
}
