/**
 * Reading the ZooKeeper leader's drops of a follower from its log as the log grows: the reason and
 * the GOODBYE come from two threads and may arrive in two reads (the observer reads every second).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DropScanner, log4jTime } from '../../src/lab/scenario/zk-drops.ts';

const seedLog = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'seed-bundle', 'node2', 'zookeeper.log');
const REASON =
  '2026-12-02 04:40:01,100 [myid:3] - WARN  [QuorumPeer[myid=3]/198.18.5.3:2181:LearnerHandler@1078] - Closing connection to peer due to transaction timeout.';
const goodbye = (time: string, ip = '198.18.5.1') =>
  `2026-12-02 ${time} [myid:3] - WARN  [LearnerHandler-/${ip}:41234:LearnerHandler@735] - ******* GOODBYE /${ip}:41234 ********`;

describe('the ZooKeeper leader dropping a follower, read from its log', () => {
  it("finds the seed's drop alike whether the log is read whole or one line per read", () => {
    const lines = readFileSync(seedLog, 'utf8').split('\n').filter(Boolean);
    const whole = new DropScanner().feed(lines);
    const byLine = new DropScanner();
    const split = lines.flatMap((l) => byLine.feed([l]));
    assert.deepEqual(split, whole);
    assert.equal(whole.length, 1);
    assert.equal(whole[0]!.reason, 'transaction timeout');
    assert.equal(whole[0]!.ip, '10.1.88.101');
    assert.equal(whole[0]!.at, log4jTime(lines[0]!), 'the drop is timed at the decision, not at the GOODBYE');
  });

  it('keeps a reason read at the end of one read for the GOODBYE at the start of the next', () => {
    const s = new DropScanner();
    assert.deepEqual(s.feed(['2026-12-02 04:40:01,000 [myid:3] - INFO  [main] - something else', REASON]), []);
    const [d] = s.feed([goodbye('04:40:01,180'), '2026-12-02 04:40:01,181 [myid:3] - INFO  [x] - after']);
    assert.equal(d?.reason, 'transaction timeout');
    assert.equal(d?.ip, '198.18.5.1');
    assert.equal(d?.at, log4jTime(REASON));
    assert.equal(log4jTime(REASON), new Date(2026, 11, 2, 4, 40, 1, 100).getTime(), 'a log4j time is local time');
    assert.ok(Number.isNaN(log4jTime('no time here')));
    assert.equal(d?.line, `${REASON}\n${goodbye('04:40:01,180')}`);
  });

  it('uses a reason once, and not for a GOODBYE long after it (its own never came)', () => {
    const s = new DropScanner();
    const drops = s.feed([REASON, goodbye('04:40:01,101'), goodbye('04:40:01,300', '198.18.5.2')]);
    assert.deepEqual(
      drops.map((d) => [d.ip, d.reason]),
      [
        ['198.18.5.1', 'transaction timeout'],
        ['198.18.5.2', 'other'],
      ],
    );
    const late = new DropScanner();
    late.feed([REASON]);
    const [d] = late.feed([goodbye('04:40:09,000')]);
    assert.equal(d?.reason, 'other');
    assert.equal(d?.at, log4jTime(goodbye('04:40:09,000')));
  });

  it("tells a follower's read timeout from a transaction timeout", () => {
    const s = new DropScanner();
    const [d] = s.feed([
      '2026-12-02 04:40:01,100 [myid:3] - ERROR [LearnerHandler-/198.18.5.1:41234:LearnerHandler@718] - Unexpected exception in LearnerHandler: java.net.SocketTimeoutException: Read timed out',
      goodbye('04:40:01,102'),
    ]);
    assert.equal(d?.reason, 'read timeout');
  });
});
