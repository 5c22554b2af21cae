// The one parser of the four-letter words (src/zk/admin.ts), on answers captured from Debian's
// ZooKeeper 3.8.0 (test/zk/fixtures/four-letter: a follower with a session holding two
// ephemerals, the leader, a server during an election), and on the variations saved captures
// bring (CRLF line ends, partial answers).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { isNotServing, parseCons, parseDump, parseMntr, parseSrvr, probe, probeAll, srvrFields } from '../../src/zk/admin.ts';
import { parseConnectString, splitHostPort } from '../../src/zk/paths.ts';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/four-letter/${name}.txt`, import.meta.url), 'utf8');
const SESSION = 0x200000d6ada0000n;

describe('four-letter words', () => {
  it('srvr: mode, zxid, counts; not serving during an election; CRLF and partial captures', () => {
    const f = parseSrvr(fixture('follower-srvr'))!;
    assert.deepEqual(
      { version: f.version, mode: f.mode, zxid: f.zxid, nodeCount: f.nodeCount, connections: f.connections, outstanding: f.outstanding },
      { version: '3.8.0-${mvngit.commit.id}', mode: 'follower', zxid: 0x100000003, nodeCount: 7, connections: 2, outstanding: 0 },
    );
    assert.equal(parseSrvr(fixture('leader-srvr'))!.mode, 'leader');
    assert.deepEqual(srvrFields(fixture('leader-srvr')).latency, { min: 0, avg: 0, max: 0 });
    assert.equal(isNotServing(fixture('looking-srvr')), true);
    assert.equal(parseSrvr(fixture('looking-srvr')), null);
    assert.equal(parseSrvr(fixture('follower-srvr').replace(/\n/g, '\r\n'))!.mode, 'follower');
    // A capture cut before Zxid is not a serving server's answer, but its fields are still read.
    const partial = 'Zookeeper version: 3.8.0-x, built on y\nMode: leader\n';
    assert.equal(parseSrvr(partial), null);
    assert.deepEqual(srvrFields(partial), { version: '3.8.0-x', mode: 'leader' });
  });

  it('mntr: every key, split at the first tab', () => {
    const m = parseMntr(fixture('leader-mntr'));
    assert.equal(m.zk_server_state, 'leader');
    assert.equal(m.zk_znode_count, '7');
    assert.equal(m.zk_ephemerals_count, '2');
    assert.equal(m.zk_synced_followers, '2');
    assert.equal(m.zk_version, '3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC');
    assert.deepEqual(parseMntr('k\tv\twith tab\r\nno tab here\n'), { k: 'v\twith tab' });
  });

  it("dump: the tracker's sessions and the ephemerals per session, not the connections section", () => {
    for (const name of ['follower-dump', 'leader-dump']) {
      const d = parseDump(fixture(name));
      assert.deepEqual([...d.sessions], [SESSION], name);
      assert.deepEqual([...d.ephemerals], [[SESSION, ['/e1', '/e2']]], name);
    }
    const noEphemerals = parseDump(
      'SessionTracker dump:\nGlobal Sessions(0):\nephemeral nodes dump:\nSessions with Ephemerals (0):\nConnections dump:\n\tip: /127.0.0.1:1 sessionId: 0x5\n',
    );
    assert.equal(noEphemerals.ephemerals.size, 0);
    assert.equal(noEphemerals.sessions.size, 0);
    assert.equal(parseDump(fixture('looking-srvr')).ephemerals.size, 0);
  });

  it('cons: one entry per connection, with its session once it has one', () => {
    const cons = parseCons(fixture('follower-cons'));
    assert.equal(cons.length, 2);
    assert.deepEqual([cons[0]!.address, cons[0]!.interestOps, cons[0]!.sessionId], ['127.0.0.1:51584', 0, undefined]);
    assert.deepEqual([cons[1]!.address, cons[1]!.sessionId, cons[1]!.fields.to, cons[1]!.fields.lop], ['127.0.0.1:51562', SESSION, '6000', 'CREA']);
    assert.equal(cons[1]!.fields.queued, '0');
  });
});

describe('reachability before a session', () => {
  it("reads host:port by the connect string's rules", () => {
    const cases: [string, { host: string; port: number } | null][] = [
      ['h', { host: 'h', port: 2181 }],
      [' h:2182 ', { host: 'h', port: 2182 }],
      ['127.0.0.1:1', { host: '127.0.0.1', port: 1 }],
      ['[::1]:2183', { host: '::1', port: 2183 }],
      ['[::1]', { host: '::1', port: 2181 }],
      ['h:0', null],
      ['h:65536', null],
      ['h:', null],
      ['h:x', null],
      [':2181', null],
      ['', null],
    ];
    for (const [text, expected] of cases) {
      assert.deepEqual(splitHostPort(text), expected, text);
      // One parser: a connect string of that one server reads it alike, or refuses it.
      if (expected) assert.deepEqual(parseConnectString(text).servers, [expected], text);
      else if (text.trim() !== '') assert.throws(() => parseConnectString(text), /bad server|no servers/, text);
    }
  });

  it('tells a listening port from a refused one and a bad address, in the order given', async () => {
    const listening = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      const up = `127.0.0.1:${(listening.address() as AddressInfo).port}`;
      const refused = `127.0.0.1:${closedPort}`;
      const r = await probeAll([up, refused, 'h:99999'], 5000);
      assert.deepEqual(
        r.map((x) => [x.address, x.ok]),
        [
          [up, true],
          [refused, false],
          ['h:99999', false],
        ],
      );
      assert.deepEqual(
        r.slice(1).map((x) => (x.ok ? null : x.reason)),
        ['refused', 'bad-address'],
      );
      assert.equal(r[1]!.ok ? '' : r[1]!.message, `${refused}: connection refused`);
      // A bracketed IPv6 address is read, not refused as a bad one (refused, or no IPv6 here).
      const v6 = await probe(`[::1]:${closedPort}`, 5000);
      assert.equal(v6.ok ? 'ok' : v6.reason === 'bad-address' ? 'bad-address' : 'not reached', 'not reached');
    } finally {
      listening.close();
    }
  });
});
