/**
 * The clients the benchmark compares, each behind one adapter: in this process (zkwarden,
 * node-zookeeper-client, the native C binding), driven request by request by drive(); or in a
 * process of its own (ZooKeeper's Java client; zkwarden in its own process as a control), told to
 * run one slice at a time over slice-driver.ts's line protocol.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient as createZkwarden, type ZooKeeperClient } from '../../src/zk/index.ts';
import { buildJavaDriver, javaCommand } from './java-build.ts';
import { SliceDriver, type SliceRequest, type SliceResult } from './slice-driver.ts';

const require = createRequire(import.meta.url);

export interface AdapterBase {
  name: string;
  connect(connectString: string): Promise<void>;
  close(): Promise<void>;
}

/** A client in this process, driven request by request by drive(). Each op returns the library's own promise (no extra async layer), so every client pays only for its own API. */
export interface InProcessAdapter extends AdapterBase {
  kind: 'in-process';
  create(path: string, data: Buffer): Promise<unknown>;
  get(path: string): Promise<unknown>;
  set(path: string, data: Buffer): Promise<unknown>;
  del(path: string): Promise<unknown>;
}

/** A client in its own process (the Java client's JVM, or the own-process control), told to run one slice at a time; it times its requests and counts its own process's CPU. */
export interface DriverAdapter extends AdapterBase {
  kind: 'driver';
  /** From the driver's start: the client's version, its runtime and collectors; null before connect. */
  readonly info: SliceDriver['info'] | null;
  slice(s: SliceRequest): Promise<SliceResult>;
}

export type Adapter = InProcessAdapter | DriverAdapter;

export const SESSION_MS = 10_000;

/** `twin`: a second zkwarden client in the same run (`--clients zkwarden,twin`), an A/A comparison that shows how far two identical clients drift apart. */
export function zkwarden(twin = false): InProcessAdapter {
  let zk: ZooKeeperClient;
  return {
    kind: 'in-process',
    name: twin ? 'zkwarden (twin)' : 'zkwarden',
    async connect(cs) {
      zk = createZkwarden(cs, { sessionTimeoutMs: SESSION_MS, requestTimeoutMs: 60_000 });
      await zk.connect();
    },
    create: (p, d) => zk.create(p, d),
    get: (p) => zk.getData(p),
    set: (p, d) => zk.setData(p, d),
    del: (p) => zk.delete(p),
    async close() {
      await zk.close();
    },
  };
}

/** node-zookeeper-client: callbacks, wrapped in promises (the wrapping is part of using it from async code). */
export function nodeZookeeperClient(): InProcessAdapter {
  type Cb = (err: Error | null) => void;
  interface NzcClient {
    once(ev: string, fn: () => void): void;
    connect(): void;
    close(): void;
    create(p: string, d: Buffer, mode: number, cb: Cb): void;
    getData(p: string, cb: Cb): void;
    setData(p: string, d: Buffer, v: number, cb: Cb): void;
    remove(p: string, v: number, cb: Cb): void;
  }
  const lib = require('node-zookeeper-client') as {
    createClient(cs: string, o: object): NzcClient;
    CreateMode: { PERSISTENT: number };
  };
  let c: NzcClient;
  const call = (fn: (cb: Cb) => void): Promise<void> => new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
  return {
    kind: 'in-process',
    name: 'node-zookeeper-client',
    connect(cs) {
      c = lib.createClient(cs, { sessionTimeout: SESSION_MS, retries: 0 });
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('node-zookeeper-client: no connection in 20 s')), 20_000);
        c.once('connected', () => {
          clearTimeout(t);
          resolve();
        });
        c.connect();
      });
    },
    create: (p, d) => call((cb) => c.create(p, d, lib.CreateMode.PERSISTENT, cb)),
    get: (p) => call((cb) => c.getData(p, cb)),
    set: (p, d) => call((cb) => c.setData(p, d, -1, cb)),
    del: (p) => call((cb) => c.remove(p, -1, cb)),
    async close() {
      c.close();
    },
  };
}

/** zookeeper (native C client binding), promise API. */
export function nativeZookeeper(): InProcessAdapter | string {
  interface NativeZk {
    init(o: object): void;
    once(ev: string, fn: () => void): void;
    close(): void;
    create(p: string, d: Buffer, flags: number): Promise<string>;
    get(p: string, watch: boolean): Promise<unknown>;
    set(p: string, d: Buffer, v: number): Promise<unknown>;
    delete_(p: string, v: number): Promise<unknown>;
  }
  let Lib: (new (o: object) => NativeZk) & { constants: Record<string, number> };
  try {
    Lib = require('zookeeper');
    if (typeof Lib !== 'function') return 'the zookeeper package did not load';
  } catch (e) {
    return `the zookeeper package did not load: ${(e as Error).message.split('\n')[0]}`;
  }
  let zk: NativeZk;
  return {
    kind: 'in-process',
    name: 'zookeeper (native C)',
    connect(cs) {
      zk = new Lib({ connect: cs, timeout: SESSION_MS, debug_level: Lib.constants.ZOO_LOG_LEVEL_ERROR, host_order_deterministic: true });
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('zookeeper (native): no connection in 20 s')), 20_000);
        zk.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
        zk.init({});
      });
    },
    create: (p, d) => zk.create(p, d, 0),
    get: (p) => zk.get(p, false),
    set: (p, d) => zk.set(p, d, -1),
    del: (p) => zk.delete_(p, -1),
    async close() {
      zk.close();
    },
  };
}

/** The Java client's name in the tables; the goal treats it as the reference, not as one of the Node peers. */
export const JAVA = 'ZooKeeper Java client';

/** A client in a process of its own, started on connect. */
function driven(name: string, command: [string, string[]]): DriverAdapter {
  let driver: SliceDriver | null = null;
  return {
    kind: 'driver',
    name,
    get info() {
      return driver?.info ?? null;
    },
    async connect(cs) {
      driver = await SliceDriver.start(name, command);
      await driver.connect(cs, SESSION_MS);
    },
    slice: (s) => driver!.run(s),
    async close() {
      await driver?.close();
    },
  };
}

/** ZooKeeper's own Java client, in its own JVM (built here when its build is missing, see java-build.ts). */
export function javaClient(): Adapter | string {
  const build = buildJavaDriver((msg) => process.stderr.write(`${msg}\n`));
  return typeof build === 'string' ? build : driven(JAVA, javaCommand(build));
}

/**
 * `own-process`: zkwarden in a process of its own, driven like the Java client (node-driver.ts),
 * a control for the out-of-process path: beside the in-process zkwarden
 * (`--clients zkwarden,own-process`) it shows what hosting a client apart and driving it over a
 * pipe does to its figures, and whether /proc's CPU ticks agree with process.cpuUsage().
 */
export function zkwardenOwnProcess(): Adapter {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'node-driver.ts');
  return driven('zkwarden (own process)', [process.execPath, ['--import', 'tsx', script]]);
}

export type OpName = 'create' | 'getData' | 'setData' | 'delete';
export const ALL_OPS: OpName[] = ['create', 'getData', 'setData', 'delete'];

export function opFn(a: InProcessAdapter, op: OpName, base: string, data: Buffer): (i: number) => Promise<unknown> {
  switch (op) {
    case 'create':
      return (i) => a.create(`${base}/n${i}`, data);
    case 'getData':
      return (i) => a.get(`${base}/n${i}`);
    case 'setData':
      return (i) => a.set(`${base}/n${i}`, data);
    case 'delete':
      return (i) => a.del(`${base}/n${i}`);
  }
}
