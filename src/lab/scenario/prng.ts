/**
 * mulberry32, the seeded PRNG of the lab's random choices (the chaos run) and of tests that must
 * replay a case from its seed: small, fast, good enough to pick faults; the same seed gives the
 * same numbers everywhere.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
