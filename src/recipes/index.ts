/** The recipes on zkwarden's ZooKeeper client: election with fencing epochs, discovery, membership. */
export { Election } from './election.ts';
export type { CandidateInfo, DeposeReason, ElectionEvents, ElectionOptions, ElectionState, Term, TermClaim } from './election.ts';
export { FencedWriter, fencedMulti } from './fenced.ts';
export { clusterAcl } from './acl.ts';
export type { FenceSource, FenceToken } from './fenced.ts';
export { LeaderDiscovery, readLeader } from './discovery.ts';
export type { DiscoveryEvents, DiscoveryOptions, LeaderInfo } from './discovery.ts';
export { MembersWatcher, listMembers, registerMember, unregisterMember } from './membership.ts';
export type { Member, MembersEvents, MembershipOptions } from './membership.ts';
export { CandidacyEndedError, FencedError, MemberExistsError, RecipeTimeoutError, RecipeUsageError } from './errors.ts';
export type { FenceReason } from './errors.ts';
export {
  DEFAULT_CANDIDATE_PREFIX,
  DEFAULT_ELECTION_PATH,
  DEFAULT_MEMBERS_PATH,
  checkPrefix,
  checkRecipePath,
  decodePayload,
  encodePayload,
  ensurePath,
  isSessionTrouble,
  sortCandidates,
} from './layout.ts';
export type { CandidateName } from './layout.ts';
export { WatchedRead } from './watched-read.ts';
export type { WatchedReadStartOptions } from './watched-read.ts';
