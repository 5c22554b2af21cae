/**
 * A TCP proxy in front of one real ZooKeeper server that can lose a reply: armed with an op
 * code, it forwards the next request of that type, swallows everything the server sends back
 * from then on, and cuts the client's connection once the request's own reply has come (so the
 * server has applied it). The client sees ConnectionLoss: the ambiguous outcome recipes must
 * survive.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { OpCode } from '../../src/zk/index.ts';

/** Splits a stream of ZooKeeper frames (int32 length + body) into whole frames, length included. */
function framer(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
      pending = pending.subarray(frame.length);
      onFrame(frame);
    }
  };
}

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
    // The xid whose reply is swallowed; the connection is cut when that reply arrives.
    let swallowXid: number | null = null;
    let requests = 0;
    let replies = 0;
    const kill = (): void => {
      client.destroy();
      upstream.destroy();
    };
    // Frames: int32 length, then (after the handshake) int32 xid, int32 type.
    client.on(
      'data',
      framer((frame) => {
        upstream.write(frame);
        if (requests++ === 0) return; // the handshake
        if (this.armed !== null && frame.length >= 12 && frame.readInt32BE(8) === this.armed) {
          this.armed = null;
          this.lost++;
          swallowXid = frame.readInt32BE(4);
        }
      }),
    );
    // Frames: int32 length, then (after the handshake's reply) ReplyHeader { int32 xid, ... }.
    upstream.on(
      'data',
      framer((frame) => {
        const xid = replies++ > 0 && frame.length >= 8 ? frame.readInt32BE(4) : null;
        if (swallowXid === null) client.write(frame);
        else if (xid === swallowXid) kill();
      }),
    );
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
