// The console's own script and stylesheet, read once from the files beside this module (no CDN, no inline code).
import { Hono } from "hono";
import type { ConsoleEnv } from "./_context.ts";

const FILES: Record<string, string> = {
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
};

/** The `/console/assets` sub-app: a fixed list of files, nothing else is looked up. */
export function assets(): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();
  const cache = new Map<string, Promise<Uint8Array>>();
  app.get("/:file", async (c) => {
    const file = c.req.param("file");
    const type = Object.hasOwn(FILES, file) ? FILES[file] : undefined;
    if (type === undefined) return c.text("Not found", 404);
    let bytes = cache.get(file);
    if (!bytes) cache.set(file, bytes = Deno.readFile(new URL(`./assets/${file}`, import.meta.url)));
    return c.body(await bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": type,
      "cache-control": "no-cache",
    });
  });
  return app;
}
