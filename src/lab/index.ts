/** The public API of zkwarden's lab (`zkwarden/lab`): real ZooKeeper servers to test against. */
export { Ensemble, EnsembleError, ZOOKEEPER_JARS, ZK_LOG_PATTERN } from './ensemble.ts';
export type { EnsembleOptions, EnsembleState, ServerInfo, ServerState } from './ensemble.ts';
