// The hung meta leader's node is also ZooKeeper's leader (the story of fixtures/story.ts with
// the roles stacked): when it hangs, the other two ZooKeeper servers elect a new leader and
// serve on, the meta leader's session survives that election, and its clients still fail
// against it with no meta election until the node is rebooted. That is still the gray failure
// of the meta leader — with a ZooKeeper leader change beside it — not a ZooKeeper outage.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { investigate, type Investigation } from '../../../src/forensics/logs/investigate.ts';
import { near, runStory, type Story } from './fixtures/story.ts';

let story: Story;
let inv: Investigation;

before(async () => {
  // The meta's session must outlive ZooKeeper's election (a few seconds on a busy machine).
  story = await runStory({ zkOnHungNode: 'leader', metaSessionMs: 6000 });
  inv = await investigate({ root: story.bundles.sub, minSilenceMs: 2000 });
});

after(async () => {
  await story?.close();
});

test("the hung meta leader on ZooKeeper's leader node: still its gray failure, ZooKeeper re-elected and served on", () => {
  const hung = `node${story.hungId}`;
  const v = inv.verdicts.find((x) => x.facts?.verdict === 'gray-failure');
  assert.ok(v, JSON.stringify(inv.verdicts.map((x) => x.title)));
  assert.equal(v.facts?.leaderNode, hung);
  assert.equal(v.facts?.endpoint, story.endpoints.get(story.hungId));
  assert.equal(v.facts?.quorumKept, false);
  assert.equal(v.facts?.zkPreviousLeader, hung);
  assert.equal(v.facts?.zkElectedLeader, `node${story.zkNewLeader}`);
  near(v.facts?.zkServingAt, story.truth.zkElected!, 'ZooKeeper serving again');
  near(v.facts?.onset, story.truth.hang!, 'onset');
  near(v.facts?.firstFailure, story.truth.firstFail!, 'first failure');
  assert.equal(v.facts?.newEndpoint, story.newLeader.endpoint);
  near(v.facts?.handoverAt, story.newLeader.at, 'handover');
  near(v.facts?.restoredAt, story.truth.restored!, 'restored');
  assert.equal(v.facts?.nodeState, 'silent');
  assert.match(
    v.detail ?? '',
    new RegExp(`ZooKeeper elected a new leader without ${hung}: node${story.zkNewLeader}'s ZooKeeper LEADING at .*, replacing ${hung}'s`),
  );
  assert.match(v.title, new RegExp(`^Gray failure of the meta leader on ${hung}`));
});

test('beside it, the ZooKeeper leader change away from the hung node', () => {
  const hung = `node${story.hungId}`;
  const change = inv.verdicts.find((x) => x.facts?.verdict === 'zk-leader-change' && x.facts.previousLeader === hung);
  assert.ok(change, JSON.stringify(inv.verdicts.map((x) => x.title)));
  assert.equal(change.facts?.leader, `node${story.zkNewLeader}`);
  near(change.facts?.at, story.truth.zkElected!, 'ZooKeeper leader change');
  // The gray failure leads the report: it is what the clients suffered.
  assert.equal(inv.verdicts[0]!.facts?.verdict, 'gray-failure');
});
