/**
 * How a service of the reference cluster is started: the same decision bin/zkwarden.js makes for
 * the CLI. From an installed package (this module is compiled JavaScript) the service's compiled
 * module runs on plain Node. From a checkout (this module is TypeScript, run through tsx) the
 * services' sources are bundled once per runner process with esbuild — the compiler tsx itself
 * runs on — into one JavaScript file each, under the system's temporary directory, named by a
 * hash of their content (so a bundle is never stale): a service then starts on plain Node in a
 * tenth of tsx's start cost, and a scenario starts nine of them, and again after every reboot.
 * Without esbuild the sources run through tsx, registered by absolute path (a service's working
 * directory is on its node's disk, where `--import tsx` would not resolve).
 *
 * With the guard's watchdog, the meta runs under `zkwarden guard run` (the product's watchdog
 * for any service), found beside this package as bin/zkwarden.js.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SERVICES, type ServiceKind } from './config.ts';

const fromSources = import.meta.url.endsWith('.ts');
const ext = fromSources ? '.ts' : '.js';

/** The part of esbuild's API used here (it is tsx's dependency, not ours: no types imported). */
interface Esbuild {
  build(o: Record<string, unknown>): Promise<{ outputFiles: { path: string; contents: Uint8Array }[] }>;
}

let bundles: Promise<Record<ServiceKind, string> | null> | null = null;

async function bundle(): Promise<Record<ServiceKind, string> | null> {
  let esbuild: Esbuild;
  try {
    const fromTsx = createRequire(fileURLToPath(import.meta.resolve('tsx')));
    esbuild = (await import(pathToFileURL(fromTsx.resolve('esbuild')).href)) as Esbuild;
  } catch {
    return null;
  }
  const entryPoints = Object.fromEntries(SERVICES.map((k) => [k, fileURLToPath(new URL(`./${k}.ts`, import.meta.url))]));
  const out = await esbuild.build({
    entryPoints,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outdir: '/',
    logLevel: 'silent',
    banner: { js: "import { createRequire as __zkwRequire } from 'node:module'; const require = __zkwRequire(import.meta.url);" },
  });
  const hash = createHash('sha256');
  for (const f of out.outputFiles) hash.update(f.path).update(f.contents);
  const dir = join(tmpdir(), `zkwarden-lab-services-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(dir)) {
    // Written aside and renamed: a runner beside this one never sees half a bundle.
    const tmp = `${dir}.${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    for (const f of out.outputFiles) writeFileSync(join(tmp, `${f.path.replace(/^\/+/, '').replace(/\.js$/, '')}.mjs`), f.contents);
    try {
      renameSync(tmp, dir);
    } catch {
      // another runner made it first
    }
  }
  return Object.fromEntries(SERVICES.map((k) => [k, join(dir, `${k}.mjs`)])) as Record<ServiceKind, string>;
}

/** Prepares what serviceCommand needs (the bundles, from a checkout); call before starting services. */
export async function prepareServices(): Promise<void> {
  if (!fromSources) return;
  bundles ??= bundle().catch(() => null);
  await bundles;
}

/** `node <service>`: the command line of a service (bundled, compiled, or through tsx). */
export async function serviceCommand(kind: ServiceKind): Promise<{ command: string; args: string[] }> {
  if (fromSources) {
    await prepareServices();
    const b = await bundles;
    if (b) return { command: process.execPath, args: [b[kind]] };
    return { command: process.execPath, args: ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL(`./${kind}.ts`, import.meta.url))] };
  }
  return { command: process.execPath, args: [fileURLToPath(new URL(`./${kind}${ext}`, import.meta.url))] };
}

/** The zkwarden CLI of this package (bin/zkwarden.js, which itself picks sources or the build). */
export function cliCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: [fileURLToPath(new URL('../../../bin/zkwarden.js', import.meta.url))] };
}
