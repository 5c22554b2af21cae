#!/usr/bin/env node
// The `zkwarden` command. An installed package runs the compiled CLI in dist/ (built by
// `npm pack`), with no TypeScript compiler at run time. A source checkout (src/ is beside this
// file; the package does not ship it) runs the sources through tsx instead, so a developer's
// `npx zkwarden` is never a stale build.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sources = join(root, 'src', 'cli', 'main.ts');
const built = join(root, 'dist', 'cli', 'main.js');

async function tsxRegistered() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return true;
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return false;
    throw err;
  }
}

if (existsSync(sources) && (await tsxRegistered())) {
  await import(pathToFileURL(sources).href);
} else if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  process.stderr.write(`zkwarden: ${built} is missing: build the package first (npm run build)\n`);
  process.exitCode = 3;
}
