import net, { type AddressInfo } from 'node:net';

/**
 * A TCP proxy between the app and PostgreSQL that a test can break for real:
 * - `hold()`: connections stay open but nothing the app sends reaches the server (queries in
 *   flight wait), until `cut()` or `release()`;
 * - `cut()`: every connection is destroyed and the port refuses new ones (ECONNREFUSED);
 * - `blackhole()`: the port accepts connections that never answer (connect timeouts);
 * - `restore()`: forwards again, on the same port.
 */
export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private holding = false;
  private holdFrom: ((chunk: Buffer) => boolean) | undefined;
  private held: { upstream: net.Socket; chunk: Buffer }[] = [];
  private mode: 'forward' | 'blackhole' = 'forward';
  /** Bytes the app sent that the proxy is holding back. */
  heldBytes = 0;
  /** Connections accepted since start. */
  accepted = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    public port = 0,
  ) {
    this.server = this.createServer();
  }

  /** Starts a proxy to `databaseUrl`'s host and port; `url` is the same URL through the proxy. */
  static async start(databaseUrl: string): Promise<TcpProxy> {
    const parsed = new URL(databaseUrl);
    const proxy = new TcpProxy({
      host: parsed.hostname,
      port: Number(parsed.port || 5432),
    });
    await proxy.listen();
    return proxy;
  }

  /** `databaseUrl` pointed at this proxy. */
  url(databaseUrl: string): string {
    const parsed = new URL(databaseUrl);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  hold(): void {
    this.holding = true;
  }

  /** Forwards until a chunk from the app matches, then holds from that chunk on. */
  holdFromFirst(matches: (chunk: Buffer) => boolean): void {
    this.holdFrom = matches;
  }

  /** Chunks held back so far. */
  get heldChunks(): number {
    return this.held.length;
  }

  /** Sends on what was held and forwards again. */
  release(): void {
    this.holding = false;
    this.holdFrom = undefined;
    for (const { upstream, chunk } of this.held.splice(0)) {
      upstream.write(chunk);
    }
    this.heldBytes = 0;
  }

  /** Destroys every connection and stops listening. */
  async cut(): Promise<void> {
    this.holding = false;
    this.holdFrom = undefined;
    this.held = [];
    this.heldBytes = 0;
    for (const socket of this.sockets) {
      socket.destroy();
    }
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again, accepting connections that never get an answer. */
  async blackhole(): Promise<void> {
    this.mode = 'blackhole';
    await this.listen();
  }

  /** Forwards again on the same port (after `cut()` or `blackhole()`). */
  async restore(): Promise<void> {
    if (this.mode === 'blackhole') {
      await this.cut();
    }
    this.mode = 'forward';
    await this.listen();
  }

  async close(): Promise<void> {
    if (this.server.listening) {
      await this.cut();
    }
  }

  private createServer(): net.Server {
    return net.createServer((client) => {
      this.accepted += 1;
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
      if (this.mode === 'blackhole') {
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.on('data', (chunk: Buffer) => {
        if (this.holdFrom?.(chunk)) {
          this.holding = true;
          this.holdFrom = undefined;
        }
        if (this.holding) {
          this.held.push({ upstream, chunk });
          this.heldBytes += chunk.length;
        } else {
          upstream.write(chunk);
        }
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
    });
  }

  private async listen(): Promise<void> {
    if (this.server.listening) {
      return;
    }
    this.server = this.createServer();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
