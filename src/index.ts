/**
 * `zkwarden`: what a service imports to keep its leadership honest, the client and the recipes
 * (and the guard). The lab and the forensics are tools, not service code: they have their own
 * subpaths (`zkwarden/lab`, `zkwarden/forensics`) so a service does not load them.
 */
export * from './zk/index.ts';
export * from './recipes/index.ts';
export * from './guard/index.ts';
