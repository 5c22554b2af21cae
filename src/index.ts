/**
 * `zkwarden`: what a service imports to keep its leadership honest, the client and the recipes
 * (and the guard). The lab and the forensics are tools, not service code: they have their own
 * subpaths (`zkwarden/lab`, `zkwarden/forensics`) so a service does not load them.
 */
export * from './zk/index.ts';
export * from './recipes/index.ts';
export * from './guard/index.ts';
// A name two layers both export is ambiguous in `export *` (TypeScript refuses it); the root
// names which one it means here, and the other stays in its own layer's entry.
export { ProtocolError } from './zk/index.ts'; // the guard's watchdog link has one too: zkwarden/guard
