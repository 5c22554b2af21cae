/**
 * The public API of the guard (`zkwarden/guard`). The guard's modules are still to come: this
 * entry point exists so the package's `exports` map and the root entry are in place for them.
 */
export {};
