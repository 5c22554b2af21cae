/**
 * Health probes. A probe answers one question about whether the service can do its work; the
 * gate (health.ts) starts at most one check of each probe at a time and judges a check by its
 * age, never by waiting for it, so a check that hangs forever (a hung disk, a dead endpoint)
 * makes its probe fail on time and blocks nothing.
 *
 * Built in: the disk probe (disk-probe.ts), a request through the service's own endpoint
 * (endpointProbe), and the event loop's delay (measured by the gate itself). Any object with a
 * name and a `check()` is a user probe.
 */
import { connect, isIP } from 'node:net';
import { GuardConfigError } from './errors.ts';

export interface ProbeVerdict {
  ok: boolean;
  /** Why it failed (or what it saw), for decisions, logs and heartbeats. */
  detail?: string;
}

export interface CheckContext {
  /** The gate fails a check older than this anyway; a probe may drop its own resources then. */
  timeoutMs: number;
}

export interface Probe {
  readonly name: string;
  /** This probe's own limit on a check in flight (default: the timing's probeTimeoutMs). */
  readonly timeoutMs?: number;
  /** Runs one check. The gate never calls it again while one is in flight. */
  check(ctx: CheckContext): Promise<ProbeVerdict | boolean>;
  /**
   * When the check in flight last made progress (performance.now() time), for probes judged by
   * progress rather than by completion (the disk probe: each step). Default: the check's start.
   */
  lastProgressAt?(): number | null;
  /** What the check in flight is doing now (e.g. "fsync"), for the failure's detail. */
  currentStep?(): string | null;
  /** Called by the gate before the first check: load everything the probe needs now, not when the disk may be gone. */
  open?(): Promise<void>;
  /** Called when the gate stops; must not wait for a check in flight. */
  close?(): void;
}

export interface EndpointProbeOptions {
  /** An IP literal: the guard does no DNS (a resolver may itself hang or read files). */
  host: string;
  port: number;
  name?: string;
  /** Bytes to send once connected; without them a successful TCP connect is the answer. */
  send?: string | Buffer;
  /** Decides on the bytes received so far: true healthy, false unhealthy, undefined wait for more. Default: any byte. */
  expect?: (reply: Buffer) => boolean | undefined;
  /** How long an answer may take (default: the timing's probeTimeoutMs); an endpoint that answers from memory can be judged faster. */
  timeoutMs?: number;
}

/** A request through the service's own serving endpoint: the service answers its clients only if it answers this. */
export function endpointProbe(o: EndpointProbeOptions): Probe {
  if (isIP(o.host) === 0) throw new GuardConfigError('endpointProbe.host', `expected an IP literal (the guard does no DNS), got '${o.host}'`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new GuardConfigError('endpointProbe.port', `expected a port 1-65535, got ${o.port}`);
  const expect = o.expect ?? ((r: Buffer) => (r.length > 0 ? true : undefined));
  if (o.timeoutMs !== undefined && (!Number.isInteger(o.timeoutMs) || o.timeoutMs <= 0)) {
    throw new GuardConfigError('endpointProbe.timeoutMs', `expected a positive integer of milliseconds, got ${o.timeoutMs}`);
  }
  return {
    name: o.name ?? `endpoint ${o.host}:${o.port}`,
    timeoutMs: o.timeoutMs,
    check: ({ timeoutMs }) =>
      new Promise<ProbeVerdict>((resolve) => {
        let got = Buffer.alloc(0);
        const sock = connect({ host: o.host, port: o.port });
        const done = (v: ProbeVerdict): void => {
          clearTimeout(timer);
          sock.destroy();
          resolve(v);
        };
        // The gate already fails a check this old; the socket goes with it, so none pile up.
        const timer = setTimeout(() => done({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
        sock.on('connect', () => {
          if (o.send === undefined) done({ ok: true });
          else sock.write(o.send);
        });
        sock.on('data', (chunk: Buffer) => {
          got = Buffer.concat([got, chunk]);
          const v = expect(got);
          if (v !== undefined) done(v ? { ok: true } : { ok: false, detail: `unexpected answer ${JSON.stringify(got.subarray(0, 60).toString('latin1'))}` });
        });
        sock.on('error', (e) => done({ ok: false, detail: e.message }));
        sock.on('end', () => done({ ok: false, detail: 'closed without an answer' }));
      }),
  };
}
