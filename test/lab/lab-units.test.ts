/** The lab's pure parts: /proc parsing, fault comments, subnets and ids, the registry's claims (in a scratch directory). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LabUsageError } from '../../src/lab/host.ts';
import { describeFault, faultComment, parseComment, type NetFault } from '../../src/lab/netfaults.ts';
import { labNames } from '../../src/lab/network.ts';
import { identify, parseStat } from '../../src/lab/proc.ts';
import {
  claimSubnet,
  createRecord,
  LAB_ID_PATTERN,
  listLabIds,
  newLabId,
  parseSubnet,
  readRecord,
  releaseSubnet,
  subnetClaims,
  type LabRecord,
} from '../../src/lab/registry.ts';

describe('/proc/PID/stat', () => {
  it('reads the state after a command name holding spaces and parentheses', () => {
    const line =
      '4242 (java (main) x) D 1 4242 4242 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 33 0 123456 1000000 500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
    const st = parseStat(line)!;
    assert.equal(st.pid, 4242);
    assert.equal(st.comm, 'java (main) x');
    assert.equal(st.state, 'D');
    assert.equal(st.ppid, 1);
    assert.equal(st.utimeTicks, 250);
    assert.equal(st.stimeTicks, 17);
    assert.equal(st.startTicks, 123456);
  });

  it('gives null for a truncated line', () => {
    assert.equal(parseStat('12 (x) S 1'), null);
    assert.equal(parseStat('garbage'), null);
  });

  it('identifies this process by pid and start time', () => {
    const me = identify(process.pid)!;
    assert.equal(me.pid, process.pid);
    assert.ok(me.startTicks > 0);
  });
});

describe('network fault comments', () => {
  it('carry every fault kind into a rule comment and back', () => {
    const faults: NetFault[] = [
      { id: 'f1a2b3', injectedAt: 1700000000000, kind: 'cut', a: 'node1', b: 'node2' },
      { id: 'f1a2b4', injectedAt: 1700000000001, kind: 'cut', a: 'node1', b: 'node2', oneWay: true, port: 10100 },
      { id: 'f1a2b5', injectedAt: 1700000000002, kind: 'deaf', node: 'node2', port: 10100, peers: ['node1', 'node3'] },
      { id: 'f1a2b6', injectedAt: 1700000000003, kind: 'isolate', node: 'node3', keepHost: true },
    ];
    for (const f of faults) {
      const c = faultComment(f);
      assert.ok(c.length < 256 && !c.includes('"'), 'fits an iptables comment');
      assert.deepEqual(parseComment(c), f);
    }
    assert.equal(describeFault(faults[1]!), 'cut node1 → node2 port 10100');
    assert.equal(describeFault(faults[2]!), 'node2 deaf on port 10100 to node1, node3');
  });

  it('ignore comments that are not the lab’s', () => {
    assert.equal(parseComment('docker rule'), null);
    assert.equal(parseComment('zkw track connections'), null);
    assert.equal(parseComment('zkw id=f1 kind=teleport'), null);
  });
});

describe('lab names and subnets', () => {
  it('keeps every interface name within 15 characters', () => {
    for (const id of [newLabId(), newLabId(), 'abcdefgh']) {
      assert.match(id, LAB_ID_PATTERN);
      const n = labNames(id);
      for (const name of [n.bridge, n.hostVeth(20)]) assert.ok(name.length <= 15, name);
    }
  });

  it('accepts only /24s of 198.18.0.0/15', () => {
    assert.equal(parseSubnet('198.18.88'), '198.18.88');
    assert.equal(parseSubnet('198.19.7.0/24'), '198.19.7');
    for (const bad of ['10.0.0', '198.20.1', '198.18.256', '198.18.88.5', '127.0.88', '']) assert.throws(() => parseSubnet(bad), LabUsageError, bad);
  });
});

describe('the lab registry', () => {
  let scratch: string;
  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'zkwarden-registry-'));
    process.env.ZKWARDEN_LAB_STATE = scratch;
  });
  after(() => {
    delete process.env.ZKWARDEN_LAB_STATE;
    rmSync(scratch, { recursive: true, force: true });
  });

  const record = (id: string): LabRecord => ({
    version: 1,
    id,
    owner: identify(process.pid)!,
    detached: false,
    createdAt: new Date().toISOString(),
    subnet: '',
    hostIp: '',
    bridge: labNames(id).bridge,
    chains: labNames(id).chains,
    cgroupRoot: '/nonexistent',
    baseDir: '/nonexistent',
    keepFiles: false,
    nodes: [],
  });

  it('records a lab atomically and refuses a second lab with its id', () => {
    createRecord(record('aaa1'));
    assert.deepEqual(listLabIds(), ['aaa1']);
    assert.equal(readRecord('aaa1')?.owner.pid, process.pid);
    assert.throws(() => createRecord(record('aaa1')), /a lab with id 'aaa1' already exists/);
    assert.throws(() => createRecord(record('Bad-Id')), LabUsageError);
  });

  it('gives each lab its own subnet, the preferred one only when free', () => {
    const a = claimSubnet('aaa1', new Set(), '198.18.88');
    assert.equal(a, '198.18.88');
    assert.throws(() => claimSubnet('bbb2', new Set(), '198.18.88'), /198\.18\.88\.0\/24 is in use \(by lab aaa1\)/);
    assert.throws(() => claimSubnet('bbb2', new Set(['198.18.77']), '198.18.77'), /in use/);
    const b = claimSubnet('bbb2', new Set());
    assert.notEqual(b, a);
    assert.match(b, /^198\.1[89]\.\d+$/);
    assert.equal(subnetClaims().get(b), 'bbb2');
    releaseSubnet(a, 'bbb2');
    assert.equal(subnetClaims().get(a), 'aaa1', 'only the holder releases its claim');
    releaseSubnet(a, 'aaa1');
    assert.equal(subnetClaims().has(a), false);
  });
});
