/**
 * Argument checks for every client call, in one style: a check throws InvalidArgumentError naming
 * the argument as the caller wrote it (`version`, `ops[2].ttlMs`) and what was expected, before
 * anything is encoded. Operations return promises, so a bad argument reaches the caller as a
 * rejection, never as a synchronous throw or a RangeError from the encoder.
 */
import { InvalidArgumentError } from './errors.ts';
import { AddWatchMode, CreateFlag, WatcherType, isTtlMode, type AddWatchModeName, type CreateMode, type WatcherKind } from './protocol.ts';

const INT_MAX = 0x7fffffff;

/**
 * EphemeralType.TTL's maximum (2^40 - 1 ms, about 34 years): the TTL shares the ephemeralOwner
 * long with the extended-type bits, and the server refuses anything larger.
 */
export const MAX_TTL_MS = 2 ** 40 - 1;

/** An integer in [min, max]; `what` says what the number is for. */
export function checkInteger(value: unknown, argument: string, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(argument, `expected ${what} (an integer from ${min} to ${max}), got ${String(value)}`);
  }
  return value;
}

/** A znode version as conditional writes take it: -1 matches any version. */
export function checkVersion(version: unknown, argument = 'version'): number {
  if (typeof version !== 'number' || !Number.isInteger(version) || version < -1 || version > INT_MAX) {
    throw new InvalidArgumentError(argument, `expected an integer from -1 (any) to 2^31-1, got ${String(version)}`);
  }
  return version;
}

export function checkCreateMode(mode: unknown, argument = 'mode'): CreateMode {
  if (typeof mode !== 'string' || !(mode in CreateFlag)) throw new InvalidArgumentError(argument, `unknown create mode ${String(mode)}`);
  return mode as CreateMode;
}

/** The TTL of a create: required and within ZooKeeper's bound for the TTL modes, refused for the others. 0 when absent. */
export function checkTtl(mode: CreateMode, ttlMs: unknown, argument = 'ttlMs'): number {
  if (isTtlMode(mode)) {
    if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
      throw new InvalidArgumentError(argument, `mode ${mode} needs an integer ttlMs from 1 to 2^40-1 (ZooKeeper's maximum), got ${String(ttlMs)}`);
    }
    return ttlMs;
  }
  if (ttlMs !== undefined) throw new InvalidArgumentError(argument, `only the ttl modes take a ttlMs (mode is ${mode})`);
  return 0;
}

export function checkWatcherKind(kind: unknown, argument = 'kind'): WatcherKind {
  if (typeof kind !== 'string' || !(kind in WatcherType)) throw new InvalidArgumentError(argument, `unknown watcher kind ${String(kind)}`);
  return kind as WatcherKind;
}

export function checkAddWatchMode(mode: unknown, argument = 'mode'): AddWatchModeName {
  if (typeof mode !== 'string' || !(mode in AddWatchMode)) {
    throw new InvalidArgumentError(argument, `expected persistent or persistent_recursive, got ${String(mode)}`);
  }
  return mode as AddWatchModeName;
}

/** A duration option in milliseconds (timeouts): a positive integer that fits the wire's int. */
export function checkMillis(value: unknown, argument: string): number {
  return checkInteger(value, argument, 1, INT_MAX, 'a duration in milliseconds');
}
