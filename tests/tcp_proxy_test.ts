import assert from "node:assert/strict";
import { startTcpProxy } from "./_tcp_proxy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An echo server on 127.0.0.1: each connection gets back what it sends. */
function startEcho(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const served = (async () => {
    const echoes: Promise<void>[] = [];
    try {
      for await (const conn of listener) {
        conns.add(conn);
        echoes.push(conn.readable.pipeTo(conn.writable).catch(() => {}).finally(() => conns.delete(conn)));
      }
    } catch {
      // Closed.
    }
    await Promise.allSettled(echoes);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the echo.
        }
      }
      await served;
    },
  };
}

/** Sends `text` and reads until as many bytes came back (or the connection ended). */
async function roundTrip(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(encoder.encode(text));
  let received = "";
  const buffer = new Uint8Array(1024);
  while (received.length < text.length) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received += decoder.decode(buffer.subarray(0, n));
  }
  return received;
}

Deno.test("startTcpProxy() relays bytes both ways to the target", async () => {
  const echo = startEcho();
  const proxy = await startTcpProxy({ hostname: "127.0.0.1", port: echo.port });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(conn, "hello"), "hello");
    assert.equal(await roundTrip(conn, "again"), "again");
    assert.equal(proxy.connections(), 1);
    conn.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("TcpProxy.cut() ends open connections and refuses new ones; restore() accepts on the same port", async () => {
  const echo = startEcho();
  const proxy = await startTcpProxy({ hostname: "127.0.0.1", port: echo.port });
  try {
    const open = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(open, "before"), "before");
    proxy.cut();
    proxy.cut(); // idempotent
    // The open connection ends: a read sees end of stream or a reset, never data.
    const ended = await open.read(new Uint8Array(16)).then((n) => n, () => null);
    assert.equal(ended, null);
    open.close();
    assert.equal(proxy.connections(), 0);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: proxy.port }),
      Deno.errors.ConnectionRefused,
    );
    proxy.restore();
    proxy.restore(); // idempotent
    const again = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(again, "after"), "after");
    again.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("TcpProxy: a client whose target refuses sees its connection end", async () => {
  const echo = startEcho();
  const port = echo.port;
  await echo.close(); // nothing listens on port now
  await using proxy = await startTcpProxy({ hostname: "127.0.0.1", port });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const n = await conn.read(new Uint8Array(16)).then((n) => n, () => null);
  assert.equal(n, null);
  conn.close();
});

Deno.test("TcpProxy.close() ends every connection and stops listening", async () => {
  const echo = startEcho();
  const proxy = await startTcpProxy({ hostname: "127.0.0.1", port: echo.port });
  const conns = await Promise.all(
    Array.from({ length: 3 }, () => Deno.connect({ hostname: "127.0.0.1", port: proxy.port })),
  );
  for (const conn of conns) assert.equal(await roundTrip(conn, "x"), "x");
  await proxy.close();
  proxy.restore(); // refused after close
  for (const conn of conns) {
    assert.equal(await conn.read(new Uint8Array(4)).then((n) => n, () => null), null);
    conn.close();
  }
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: proxy.port }), Deno.errors.ConnectionRefused);
  await echo.close();
});
