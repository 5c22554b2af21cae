/** The public API of zkwarden's ZooKeeper client. */
export { ZooKeeperClient, createClient } from './client.ts';
export type {
  ClientEvents,
  ClientOptions,
  ClientState,
  CloseResult,
  ConnectedInfo,
  CreateOptions,
  Data,
  ExpiryReason,
  SessionTiming,
  TimeoutOption,
  WatchOption,
} from './client.ts';
export type { WatchEvent, WatchListener } from './watches.ts';
export type { ClientInfo, CreateMode, Op, OpResult, ReadOp, WatchEventType, WatcherKind, AddWatchModeName } from './protocol.ts';
export { OpCode, CreateFlag, EventType } from './protocol.ts';
export * from './errors.ts';
export { OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, CREATOR_ALL_ACL, Perms, hex, sessionHex, bigintReplacer, isTtlOwner, CONTAINER_EPHEMERAL_OWNER } from './records.ts';
export type { ACL, Id, Stat, StatPersisted } from './records.ts';
export { digestId, digestAcl } from './acl.ts';
export { JuteDecodeError, JuteUnderflowError } from './jute.ts';
export { parseConnectString, splitHostPort, validatePath } from './paths.ts';
export type { ConnectString, ServerAddress } from './paths.ts';
export { MAX_TTL_MS } from './args.ts';
export { endSession, EndSessionTimeoutError } from './end-session.ts';
export type { TlsOptions } from './transport.ts';
export type { DigestMd5Credentials } from './sasl.ts';
export type { EndSessionOptions, EndSessionResult } from './end-session.ts';
export { FourLetterError, fourLetterWord, isNotServing, parseCons, parseDump, parseMntr, parseSrvr, probe, probeAll, srvrFields } from './admin.ts';
export type { ConsEntry, DumpInfo, Reach, SrvrFields, SrvrInfo } from './admin.ts';
