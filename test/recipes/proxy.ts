/**
 * A TCP proxy in front of one real ZooKeeper server that can lose a reply: armed with an op
 * code, it forwards the next request of that type, swallows everything the server sends back
 * from then on, and cuts the client's connection a moment later. The server applies the
 * request; the client sees ConnectionLoss: the ambiguous outcome recipes must survive.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { OpCode } from '../../src/zk/index.ts';

export class LossyProxy {
  private server: Server | null = null;
  private armed: number | null = null;
  private readonly sockets = new Set<Socket>();
  /** Requests whose replies were swallowed. */
  lost = 0;
  port = 0;

  constructor(
    readonly host: string,
    readonly upstreamHost: string,
    readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, this.host, resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Lose the reply of the next request with this op code (e.g. OpCode.create2). */
  loseNextReply(op: number = OpCode.create2): void {
    this.armed = op;
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: this.upstreamHost, port: this.upstreamPort });
    this.sockets.add(client).add(upstream);
    let swallow = false;
    let handshakeSeen = false;
    let pending = Buffer.alloc(0);
    const kill = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      // Frames: int32 length, then (after the handshake) int32 xid, int32 type.
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const len = pending.readInt32BE(0);
        const frame = pending.subarray(0, 4 + len);
        pending = pending.subarray(4 + len);
        upstream.write(frame);
        if (!handshakeSeen) {
          handshakeSeen = true;
          continue;
        }
        if (this.armed !== null && len >= 8 && frame.readInt32BE(8) === this.armed) {
          this.armed = null;
          this.lost++;
          swallow = true;
          setTimeout(kill, 300);
        }
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!swallow) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
