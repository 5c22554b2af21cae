/** The public API of zkwarden's lab (`zkwarden/lab`): real ZooKeeper servers, and disks that really hang. */
export { Ensemble, EnsembleError, ZOOKEEPER_JARS, ZK_LOG_PATTERN } from './ensemble.ts';
export type { EnsembleOptions, EnsembleState, ServerInfo, ServerState } from './ensemble.ts';
export { FaultFs, FaultFsError, FaultFsInputError, fuseRequestTimeouts, releaseMount } from './faultfs.ts';
export type { FaultFsMountOptions, FaultFsStatus, FaultMode, FaultRule, OpClass } from './faultfs.ts';
