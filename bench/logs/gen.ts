/**
 * Generates a synthetic 3-node bundle for the logs benchmark: per node a ZooKeeper log4j log
 * and a glog service log (with Traceback blocks and Java stack traces), timestamps of the
 * current year so lnav (which gives glog lines the current year) merges the same order.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

function p2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

export function generateBundle(root: string, totalBytes: number): { bytes: number; lines: number } {
  const year = new Date().getFullYear();
  const start = Date.UTC(year, 2, 1, 0, 0, 0);
  const perFile = totalBytes / 6;
  let bytes = 0;
  let lines = 0;
  for (let node = 1; node <= 3; node++) {
    const dir = join(root, `node${node}`);
    mkdirSync(dir, { recursive: true });
    for (const kind of ['zk', 'glog'] as const) {
      const fd = openSync(join(dir, kind === 'zk' ? 'zookeeper.log' : 'zbs-chunkd.INFO'), 'w');
      let written = 0;
      let t = start + node * 7 + (kind === 'zk' ? 3 : 0);
      let i = 0;
      let buf: string[] = [];
      let bufLen = 0;
      while (written < perFile) {
        t += 3 + ((i * 7919) % 11);
        const d = new Date(t);
        const ms = d.getUTCMilliseconds();
        const hms = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
        let s: string;
        if (kind === 'zk') {
          const date = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`;
          const msS = String(ms).padStart(3, '0');
          if (i % 500 === 7) {
            s = `${date} ${hms},${msS} [myid:${node}] - WARN  [NIOWorkerThread-${i % 4}:NIOServerCnxn@383] - Close of session 0x${(0x10000028c230000 + i).toString(16)}\njava.io.IOException: ZooKeeperServer not running\n\tat org.apache.zookeeper.server.NIOServerCnxn.readLength(NIOServerCnxn.java:544)\n\tat org.apache.zookeeper.server.NIOServerCnxn.doIO(NIOServerCnxn.java:332)\n`;
            lines += 4;
          } else {
            s = `${date} ${hms},${msS} [myid:${node}] - INFO  [CommitProcessor:${node}:LeaderSessionTracker@104] - Committing global session 0x${(0x10000028c230000 + i).toString(16)} for client /10.1.88.10${(i % 3) + 1}:${40000 + (i % 20000)}\n`;
            lines++;
          }
        } else {
          const us = String(ms * 1000 + (i % 1000)).padStart(6, '0');
          const head = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())} ${hms}.${us}  ${3000 + (i % 50)}`;
          if (i % 400 === 3) {
            s = `W${head} zbs_client.cc:641] [Retry IO ON ERROR]: [IOCTX]: VEXTENT_READ seq: ${24875104435 + i}, volume: 5bddc847-a741-4c32-b09f-74afe94e5cca, vextent no: ${i % 4096}, data_len: 8192\nTraceback:\n[ETimedOut]: ProtoAsyncClient meet timeout: expect timeout ms: 10000 elapsed ms: 10098 socket: 10.1.88.10${node}:${50000 + (i % 10000)}-->10.1.88.101:10100\n`;
            lines += 3;
          } else {
            s = `I${head} chunk_io.cc:${200 + (i % 50)}] [IO DONE] extent ${i % 65536} offset ${(i * 8192) % 268435456} len 8192 lat_us ${120 + (i % 900)} pool 4a465dd0-d0f9-4464-b95d-b23e7a8acc60\n`;
            lines++;
          }
        }
        buf.push(s);
        bufLen += s.length;
        i++;
        if (bufLen > 4 << 20) {
          const chunk = buf.join('');
          writeSync(fd, chunk);
          written += chunk.length;
          buf = [];
          bufLen = 0;
        }
      }
      const chunk = buf.join('');
      writeSync(fd, chunk);
      written += chunk.length;
      closeSync(fd);
      bytes += written;
    }
  }
  return { bytes, lines };
}
