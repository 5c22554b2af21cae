/**
 * Typed errors: one class per ZooKeeper error code (KeeperException.Code), plus the client's own
 * failures (packet too large, protocol violation, client closed). Every server error carries
 * the code and, when the operation had one, the path as the caller spelled it (chroot removed).
 *
 * Callers branch with `instanceof` (`err instanceof NoNodeError`) or on `err.code`.
 */

export const ErrorCode = {
  OK: 0,
  SYSTEM_ERROR: -1,
  RUNTIME_INCONSISTENCY: -2,
  DATA_INCONSISTENCY: -3,
  CONNECTION_LOSS: -4,
  MARSHALLING_ERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  BAD_ARGUMENTS: -8,
  UNKNOWN_SESSION: -12,
  NEW_CONFIG_NO_QUORUM: -13,
  RECONFIG_IN_PROGRESS: -14,
  API_ERROR: -100,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_CALLBACK: -113,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  SESSION_MOVED: -118,
  NOT_READ_ONLY: -119,
  EPHEMERAL_ON_LOCAL_SESSION: -120,
  NO_WATCHER: -121,
  REQUEST_TIMEOUT: -122,
  RECONFIG_DISABLED: -123,
  SESSION_CLOSED_REQUIRE_SASL_AUTH: -124,
  QUOTA_EXCEEDED: -125,
  THROTTLED_OP: -127,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

/** Base class of every error a server reply or the session machinery produces. */
export class ZooKeeperError extends Error {
  readonly code: number;
  readonly path: string | undefined;
  constructor(code: number, message: string, path?: string) {
    super(path === undefined ? message : `${message}: ${path}`);
    this.name = 'ZooKeeperError';
    this.code = code;
    this.path = path;
  }
}

type ErrorClass = new (path?: string, detail?: string) => ZooKeeperError;

function define(name: string, code: number, text: string): ErrorClass {
  // A named class per code, so stack traces and `instanceof` read naturally.
  const cls = class extends ZooKeeperError {
    constructor(path?: string, detail?: string) {
      super(code, detail ? `${text} (${detail})` : text, path);
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const SystemError = define('SystemError', ErrorCode.SYSTEM_ERROR, 'system error');
export const RuntimeInconsistencyError = define(
  'RuntimeInconsistencyError',
  ErrorCode.RUNTIME_INCONSISTENCY,
  'runtime inconsistency (an earlier op of the multi failed)',
);
export const DataInconsistencyError = define('DataInconsistencyError', ErrorCode.DATA_INCONSISTENCY, 'data inconsistency');
/** The connection dropped while the request was in flight: it may or may not have been applied. */
export const ConnectionLossError = define('ConnectionLossError', ErrorCode.CONNECTION_LOSS, 'connection loss');
export const MarshallingError = define('MarshallingError', ErrorCode.MARSHALLING_ERROR, 'marshalling error');
export const UnimplementedError = define('UnimplementedError', ErrorCode.UNIMPLEMENTED, 'operation not implemented by the server');
/** No reply within the request timeout (or no connection within the connect timeout). */
export const OperationTimeoutError = define('OperationTimeoutError', ErrorCode.OPERATION_TIMEOUT, 'operation timed out');
export const BadArgumentsError = define('BadArgumentsError', ErrorCode.BAD_ARGUMENTS, 'bad arguments');
export const UnknownSessionError = define('UnknownSessionError', ErrorCode.UNKNOWN_SESSION, 'unknown session');
export const NewConfigNoQuorumError = define('NewConfigNoQuorumError', ErrorCode.NEW_CONFIG_NO_QUORUM, 'new config has no quorum');
export const ReconfigInProgressError = define('ReconfigInProgressError', ErrorCode.RECONFIG_IN_PROGRESS, 'reconfig in progress');
export const ApiError = define('ApiError', ErrorCode.API_ERROR, 'API error');
export const NoNodeError = define('NoNodeError', ErrorCode.NO_NODE, 'no node');
export const NoAuthError = define('NoAuthError', ErrorCode.NO_AUTH, 'not authorized');
export const BadVersionError = define('BadVersionError', ErrorCode.BAD_VERSION, 'bad version');
export const NoChildrenForEphemeralsError = define(
  'NoChildrenForEphemeralsError',
  ErrorCode.NO_CHILDREN_FOR_EPHEMERALS,
  'ephemeral nodes cannot have children',
);
export const NodeExistsError = define('NodeExistsError', ErrorCode.NODE_EXISTS, 'node exists');
export const NotEmptyError = define('NotEmptyError', ErrorCode.NOT_EMPTY, 'node has children');
/** The session is gone (expired on the server, closed by another holder, or given up locally). */
export const SessionExpiredError = define('SessionExpiredError', ErrorCode.SESSION_EXPIRED, 'session expired');
export const InvalidCallbackError = define('InvalidCallbackError', ErrorCode.INVALID_CALLBACK, 'invalid callback');
export const InvalidACLError = define('InvalidACLError', ErrorCode.INVALID_ACL, 'invalid ACL');
export const AuthFailedError = define('AuthFailedError', ErrorCode.AUTH_FAILED, 'authentication failed');
export const SessionMovedError = define('SessionMovedError', ErrorCode.SESSION_MOVED, 'session moved to another server');
export const NotReadOnlyError = define('NotReadOnlyError', ErrorCode.NOT_READ_ONLY, 'server is read-only');
export const EphemeralOnLocalSessionError = define('EphemeralOnLocalSessionError', ErrorCode.EPHEMERAL_ON_LOCAL_SESSION, 'ephemeral on a local session');
export const NoWatcherError = define('NoWatcherError', ErrorCode.NO_WATCHER, 'no such watcher');
export const RequestTimeoutError = define('RequestTimeoutError', ErrorCode.REQUEST_TIMEOUT, 'request timeout');
export const ReconfigDisabledError = define('ReconfigDisabledError', ErrorCode.RECONFIG_DISABLED, 'reconfig disabled');
export const SessionClosedRequireSaslAuthError = define(
  'SessionClosedRequireSaslAuthError',
  ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH,
  'session closed: SASL authentication required',
);
export const QuotaExceededError = define('QuotaExceededError', ErrorCode.QUOTA_EXCEEDED, 'quota exceeded');
export const ThrottledOpError = define('ThrottledOpError', ErrorCode.THROTTLED_OP, 'operation throttled by the server');

// TypeScript needs instance types for `catch (e) { if (e instanceof NoNodeError) ... }`:
// the classes above are values; these aliases make them usable as types too.
export type SystemError = InstanceType<typeof SystemError>;
export type RuntimeInconsistencyError = InstanceType<typeof RuntimeInconsistencyError>;
export type ConnectionLossError = InstanceType<typeof ConnectionLossError>;
export type OperationTimeoutError = InstanceType<typeof OperationTimeoutError>;
export type NoNodeError = InstanceType<typeof NoNodeError>;
export type NoAuthError = InstanceType<typeof NoAuthError>;
export type BadVersionError = InstanceType<typeof BadVersionError>;
export type NodeExistsError = InstanceType<typeof NodeExistsError>;
export type NotEmptyError = InstanceType<typeof NotEmptyError>;
export type SessionExpiredError = InstanceType<typeof SessionExpiredError>;
export type AuthFailedError = InstanceType<typeof AuthFailedError>;
export type NoWatcherError = InstanceType<typeof NoWatcherError>;

const byCode = new Map<number, ErrorClass>([
  [ErrorCode.SYSTEM_ERROR, SystemError],
  [ErrorCode.RUNTIME_INCONSISTENCY, RuntimeInconsistencyError],
  [ErrorCode.DATA_INCONSISTENCY, DataInconsistencyError],
  [ErrorCode.CONNECTION_LOSS, ConnectionLossError],
  [ErrorCode.MARSHALLING_ERROR, MarshallingError],
  [ErrorCode.UNIMPLEMENTED, UnimplementedError],
  [ErrorCode.OPERATION_TIMEOUT, OperationTimeoutError],
  [ErrorCode.BAD_ARGUMENTS, BadArgumentsError],
  [ErrorCode.UNKNOWN_SESSION, UnknownSessionError],
  [ErrorCode.NEW_CONFIG_NO_QUORUM, NewConfigNoQuorumError],
  [ErrorCode.RECONFIG_IN_PROGRESS, ReconfigInProgressError],
  [ErrorCode.API_ERROR, ApiError],
  [ErrorCode.NO_NODE, NoNodeError],
  [ErrorCode.NO_AUTH, NoAuthError],
  [ErrorCode.BAD_VERSION, BadVersionError],
  [ErrorCode.NO_CHILDREN_FOR_EPHEMERALS, NoChildrenForEphemeralsError],
  [ErrorCode.NODE_EXISTS, NodeExistsError],
  [ErrorCode.NOT_EMPTY, NotEmptyError],
  [ErrorCode.SESSION_EXPIRED, SessionExpiredError],
  [ErrorCode.INVALID_CALLBACK, InvalidCallbackError],
  [ErrorCode.INVALID_ACL, InvalidACLError],
  [ErrorCode.AUTH_FAILED, AuthFailedError],
  [ErrorCode.SESSION_MOVED, SessionMovedError],
  [ErrorCode.NOT_READ_ONLY, NotReadOnlyError],
  [ErrorCode.EPHEMERAL_ON_LOCAL_SESSION, EphemeralOnLocalSessionError],
  [ErrorCode.NO_WATCHER, NoWatcherError],
  [ErrorCode.REQUEST_TIMEOUT, RequestTimeoutError],
  [ErrorCode.RECONFIG_DISABLED, ReconfigDisabledError],
  [ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH, SessionClosedRequireSaslAuthError],
  [ErrorCode.QUOTA_EXCEEDED, QuotaExceededError],
  [ErrorCode.THROTTLED_OP, ThrottledOpError],
]);

/** The error for a non-zero reply code; unknown codes still give a ZooKeeperError with the code. */
export function errorFromCode(code: number, path?: string, detail?: string): ZooKeeperError {
  const cls = byCode.get(code);
  if (cls) return new cls(path, detail);
  return new ZooKeeperError(code, `unknown ZooKeeper error code ${code}${detail ? ` (${detail})` : ''}`, path);
}

/** The error name for a code, e.g. -101 -> 'NoNodeError'. */
export function errorName(code: number): string {
  return byCode.get(code)?.name ?? `ZooKeeperError(${code})`;
}

/** A request is larger than the server's packet limit (jute.maxbuffer); it was never sent. */
export class PacketTooLargeError extends Error {
  readonly size: number;
  readonly limit: number;
  readonly path: string | undefined;
  constructor(op: string, size: number, limit: number, path?: string) {
    super(
      `${op}${path ? ` ${path}` : ''}: request of ${size} bytes exceeds the packet limit of ${limit} bytes ` +
        `(the server's jute.maxbuffer; set maxPacketBytes if the servers allow more); not sent`,
    );
    this.name = 'PacketTooLargeError';
    this.size = size;
    this.limit = limit;
    this.path = path;
  }
}

/** The server sent something the protocol does not allow (wrong xid order, bad frame length). */
export class ProtocolError extends Error {
  readonly server: string;
  constructor(server: string, message: string) {
    super(`protocol error from ${server}: ${message}`);
    this.name = 'ProtocolError';
    this.server = server;
  }
}

/** The client was closed by its owner; nothing more can be sent. */
export class ClientClosedError extends Error {
  constructor(op: string) {
    super(`${op}: the client is closed`);
    this.name = 'ClientClosedError';
  }
}

/** A bad argument to a client call (path syntax, mode, version, connect string). */
export class InvalidArgumentError extends Error {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`invalid ${argument}: ${message}`);
    this.name = 'InvalidArgumentError';
    this.argument = argument;
  }
}

/** One op of a failed multi: the results of every op ride along, so callers see which failed. */
export class MultiError extends Error {
  readonly code: number;
  /** Index of the first op that failed. */
  readonly index: number;
  readonly results: readonly import('./protocol.ts').OpResult[];
  override readonly cause: ZooKeeperError;
  constructor(index: number, cause: ZooKeeperError, results: readonly import('./protocol.ts').OpResult[]) {
    super(`multi failed at op ${index}: ${cause.message}; no op was applied`);
    this.name = 'MultiError';
    this.code = cause.code;
    this.index = index;
    this.cause = cause;
    this.results = results;
  }
}
