/**
 * A TCP proxy on 127.0.0.1 for tests that need a server to go away and come
 * back without touching the server itself (a shared PostgreSQL): `cut()` ends
 * every proxied connection and closes the listening port, so new connections
 * are refused (ECONNREFUSED) as if the server were down; `restore()` listens on
 * the same port again.
 */

/** A running proxy; see {@linkcode startTcpProxy}. */
export interface TcpProxy extends AsyncDisposable {
  /** The port on 127.0.0.1 clients connect to instead of the target's. */
  readonly port: number;
  /** Ends every connection (both sides) and refuses new ones until {@linkcode TcpProxy.restore}. Idempotent. */
  cut(): void;
  /** Accepts connections on the same port again. Idempotent. */
  restore(): void;
  /** Active client connections being relayed now. */
  connections(): number;
  /** Ends every connection, stops listening and waits until every relay has stopped. */
  close(): Promise<void>;
}

interface Pair {
  client: Deno.Conn;
  upstream?: Deno.Conn;
}

/**
 * Starts a proxy that relays each connection to `target`.
 *
 * @param target Where connections go, e.g. the PostgreSQL server's host and port.
 * @returns The proxy, listening on a free port of 127.0.0.1.
 *
 * @example The database goes down and comes back
 * ```ts ignore
 * await using proxy = await startTcpProxy({ hostname: "127.0.0.1", port: 5432 });
 * const sql = postgres(`postgres://keycard@127.0.0.1:${proxy.port}/keycard`);
 * proxy.cut(); // queries fail: connections closed, new ones refused
 * proxy.restore(); // queries work again (on new connections)
 * ```
 */
export function startTcpProxy(target: { hostname: string; port: number }): Promise<TcpProxy> {
  try {
    return Promise.resolve(listenProxy(target));
  } catch (error) {
    return Promise.reject(error);
  }
}

function listenProxy(target: { hostname: string; port: number }): TcpProxy {
  const pairs = new Set<Pair>();
  const relays = new Set<Promise<void>>();
  let listener: Deno.Listener | undefined = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let closed = false;
  // Bumped by cut(): a connection accepted before a cut whose upstream connects after it is ended at once.
  let generation = 0;

  const track = (promise: Promise<void>) => {
    relays.add(promise);
    promise.finally(() => relays.delete(promise));
  };

  const end = (pair: Pair) => {
    pairs.delete(pair);
    for (const conn of [pair.client, pair.upstream]) {
      try {
        conn?.close();
      } catch {
        // Already closed by the relay.
      }
    }
  };

  const relay = async (client: Deno.Conn, born: number) => {
    const pair: Pair = { client };
    pairs.add(pair);
    try {
      pair.upstream = await Deno.connect({ hostname: target.hostname, port: target.port, transport: "tcp" });
      if (born !== generation || closed) return;
      // Each direction ends the other when it ends, whichever side closed first.
      await Promise.race([
        client.readable.pipeTo(pair.upstream.writable, { preventClose: true }).catch(() => {}),
        pair.upstream.readable.pipeTo(client.writable, { preventClose: true }).catch(() => {}),
      ]);
    } catch {
      // The target refused, or a side was closed by cut(): the client sees its connection end.
    } finally {
      end(pair);
    }
  };

  const accept = async (socket: Deno.Listener) => {
    try {
      for await (const client of socket) {
        if (closed) {
          client.close();
          continue;
        }
        track(relay(client, generation));
      }
    } catch {
      // The listener was closed by cut() or close().
    }
  };

  track(accept(listener));

  const cut = () => {
    generation++;
    try {
      listener?.close();
    } catch {
      // Already closed.
    }
    listener = undefined;
    for (const pair of [...pairs]) end(pair);
  };

  const close = async () => {
    closed = true;
    cut();
    while (relays.size > 0) await Promise.allSettled([...relays]);
  };

  return {
    port,
    cut,
    restore() {
      if (closed || listener !== undefined) return;
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      track(accept(listener));
    },
    connections: () => pairs.size,
    close,
    [Symbol.asyncDispose]: close,
  };
}
