// The whole story on a bundle a real ensemble writes: three meta services (their own processes,
// one port each on the shared 127.0.0.1) elect a leader through ZooKeeper; chunk clients on the
// other nodes call whoever leads. The leader hangs like the seed's (no answers, no log lines,
// its ZooKeeper session kept alive by heartbeats) while its node's ZooKeeper server stops too;
// later the node is "rebooted": the meta process is killed (its session expires), ZooKeeper and
// the meta start again, and the next candidate takes over. `investigate` must name the onset,
// the handover (new endpoint and time) and the restoration within 2 s of what the test did,
// map every 127.0.0.1 endpoint to its own node, and give the same verdict whether each node's
// data sits in a subfolder or as `version-2/` beside its logs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { investigate, type Investigation } from '../../../src/forensics/logs/investigate.ts';
import { near, runStory, type Story } from './fixtures/story.ts';

let story: Story;
let subfolders: Investigation;
let beside: Investigation;

before(async () => {
  story = await runStory({ zkOnHungNode: 'follower' });
  subfolders = await investigate({ root: story.bundles.sub, minSilenceMs: 2000 });
  beside = await investigate({ root: story.bundles.beside, minSilenceMs: 2000 });
});

after(async () => {
  await story?.close();
});

test('a hung leader later rebooted: onset, handover and restoration within 2 s of the truth', () => {
  const v = subfolders.verdicts.find((x) => x.facts?.verdict === 'gray-failure');
  assert.ok(v, JSON.stringify(subfolders.verdicts.map((x) => x.title)));
  assert.equal(v.facts?.leaderNode, `node${story.hungId}`);
  assert.equal(v.facts?.endpoint, story.endpoints.get(story.hungId));
  near(v.facts?.onset, story.truth.hang!, 'onset');
  near(v.facts?.firstFailure, story.truth.firstFail!, 'first failure');
  assert.equal(v.facts?.newEndpoint, story.newLeader.endpoint);
  near(v.facts?.handoverAt, story.newLeader.at, 'handover');
  near(v.facts?.restoredAt, story.truth.restored!, 'restored');
  assert.ok(Number(v.facts?.sessionEndedAt) > story.truth.reboot!, 'the old session ended after the reboot');
  assert.equal(v.facts?.nodeState, 'silent');
  assert.match(v.detail ?? '', /restarted at/);
  assert.match(v.detail ?? '', /Handover: 127\.0\.0\.1:\d+ \(epoch 0x[0-9a-f]+\) → 127\.0\.0\.1:\d+ \(epoch 0x[0-9a-f]+\)/);
  assert.ok(subfolders.findings.some((f) => f.kind === 'handover'));
  assert.ok(subfolders.findings.some((f) => f.kind === 'restored'));
  assert.ok(
    subfolders.findings.some(
      (f) => f.kind === 'process-start' && f.node === `node${story.hungId}` && f.service === 'zookeeper' && f.from >= story.truth.reboot!,
    ),
  );
});

test('services sharing 127.0.0.1, a port per node: every endpoint names its own node', () => {
  for (const [id, ep] of story.endpoints) assert.equal(subfolders.topology.endpointNodes[ep], `node${id}`, ep);
  assert.equal(subfolders.topology.addresses['127.0.0.1'], undefined, '127.0.0.1 is never one node');
  const calls = subfolders.findings.filter((f) => f.kind === 'failed-calls' && f.facts?.remote === story.endpoints.get(story.hungId));
  assert.ok(calls.length >= 1);
  for (const c of calls) assert.equal(c.facts?.remoteNode, `node${story.hungId}`);
  assert.match(calls[0]!.title, /meta leader/);
  assert.ok(subfolders.topology.leaderEndpoints.includes(story.endpoints.get(story.hungId)!));
});

test('version-2/ beside the logs gives the same verdict as data in subfolders', () => {
  assert.ok(beside.stats.lines > 100, 'the logs were read');
  assert.equal(beside.data.dataDirs.length, 3);
  const verdictFacts = (inv: Investigation) =>
    inv.verdicts.map((v) => [v.facts?.verdict, v.facts?.leaderNode, v.facts?.endpoint, v.facts?.newEndpoint, v.facts?.handoverAt, v.facts?.restoredAt]);
  assert.deepEqual(verdictFacts(beside), verdictFacts(subfolders));
  assert.ok(beside.files.some((f) => f.file === `node${story.hungId}/zbs-metad.INFO` && f.lines > 5));
});
