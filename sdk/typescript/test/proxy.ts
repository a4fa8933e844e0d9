//! A TCP proxy for tests that can cut every connection through it, to drop a stream mid-way.
import { connect, createServer, type Server, type Socket } from "node:net";

/** A running proxy. */
export interface Proxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The first bytes of each request, in order (its request line and headers), on new and reused connections alike. */
  readonly requests: string[];
  /** Destroys every open connection, both sides. */
  cut(): void;
  close(): Promise<void>;
}

/** Forwards 127.0.0.1:<new port> to `target` (`http://host:port`). */
export function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server: Server = createServer((downstream) => {
    track(downstream);
    const upstream = connect(Number(port), hostname);
    track(upstream);
    // A chunk that starts with a method opens a request (a kept-alive connection carries several).
    downstream.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      if (/^(GET|POST|PUT|PATCH|DELETE) /.test(text)) requests.push(text);
    });
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const local = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${local}`,
        requests,
        cut: () => {
          for (const socket of sockets) socket.destroy();
        },
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
