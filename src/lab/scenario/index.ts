/** Scenarios on the reference cluster: steps, the built-in scenarios, the runner, the observer, the checkers, the bundle. */
export { BUILTIN, builtin } from './builtin.ts';
export { runScenario, ALL_DEFENCES, RunAbortedError } from './runner.ts';
export type { Progress, RunOptions, RunResult, StepRecord } from './runner.ts';
export { checkScenario, readScenarioFile, expectationsFor, ScenarioError, FACTS } from './spec.ts';
export type { Expectations, Fact, Fault, Scenario, Step } from './spec.ts';
export { formatResult, describeSample } from './report.ts';
export type { TimelineEntry } from './report.ts';
export { Observer } from './observer.ts';
export type { Sample, MetaView, ChunkView, ZkDrop } from './observer.ts';
export type { Metrics, Check, ExpectationResult, FaultInfo } from './checkers.ts';
