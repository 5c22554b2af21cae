/**
 * zkwarden's client in a process of its own, speaking the Java driver's line protocol
 * (bench/client/java/JavaClientDriver.java documents it) and measured the way that driver measures
 * the Java client: the same closed loop as the runner's (drive()), this process's CPU from
 * /proc/self/stat's clock ticks around the slice. Started by the runner for
 * `--clients zkwarden,own-process`: a control for the out-of-process path, never part of the
 * comparison itself.
 */
import { createInterface } from 'node:readline';
import { ALL_OPS, opFn, zkwarden, type InProcessAdapter, type OpName } from './clients.ts';
import { drive } from './drive.ts';
import { procCpuTicks } from './proc.ts';

let client: InProcessAdapter | null = null;

async function handle(cmd: string[]): Promise<string> {
  switch (cmd[0]) {
    case 'connect': {
      const a = zkwarden();
      await a.connect(cmd[1]);
      client = a;
      return 'ok';
    }
    case 'run': {
      if (!client) return 'error run before connect';
      const [op, base, from, to, concurrency, bytes] = [cmd[1] as OpName, cmd[2], Number(cmd[3]), Number(cmd[4]), Number(cmd[5]), Number(cmd[6])];
      if (!ALL_OPS.includes(op)) return `error unknown op ${op}`;
      const lat: number[] = [];
      const starts: number[] = [];
      const cpu0 = procCpuTicks(process.pid);
      const t0 = Number(process.hrtime.bigint()) / 1e6;
      const [wall] = await drive(from, to, concurrency, opFn(client, op, base, Buffer.alloc(bytes, 0x61)), lat, starts);
      const cpu = procCpuTicks(process.pid) - cpu0;
      const ns = (ms: number): number => Math.round(ms * 1e6);
      const words = ['ok', ns(wall), cpu, ns(t0)];
      for (let i = 0; i < lat.length; i++) words.push(ns(lat[i]), ns(starts[i] - t0));
      return words.join(' ');
    }
    case 'close':
      await client?.close();
      client = null;
      return 'ok';
    default:
      return `error unknown command ${cmd.join(' ')}`;
  }
}

process.stdout.write(`ready\tzkwarden\tNode ${process.version}\tV8's\n`);
for await (const line of createInterface({ input: process.stdin })) {
  let answer: string;
  try {
    answer = await handle(line.trim().split(' '));
  } catch (e) {
    answer = `error ${(e as Error).message}`;
  }
  process.stdout.write(`${answer.replace(/\n/g, ' ')}\n`);
}
// End of stdin: the runner is gone or done.
await handle(['close']);
