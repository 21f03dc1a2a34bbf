import assert from "node:assert/strict";
import { HostCallError } from "../runtime/mod.ts";
import { FsCapability } from "./fs_capability.ts";

const encoder = new TextEncoder();

/** A temp dir with `data/` (the root, holding `notes/today.txt`) and `outside/secret.txt`; removed at the end. */
async function withCapability(body: (fs: FsCapability, base: string) => Promise<void>): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "keycard_fs_" }));
  try {
    await Deno.mkdir(`${base}/data/notes`, { recursive: true });
    await Deno.writeTextFile(`${base}/data/notes/today.txt`, "today");
    await Deno.mkdir(`${base}/outside`);
    await Deno.writeTextFile(`${base}/outside/secret.txt`, "secret");
    await body(await FsCapability.open(`${base}/data`), base);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function assertRefused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<HostCallError> {
  let caught: HostCallError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof HostCallError, `expected a HostCallError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    caught = error;
    return true;
  });
  return caught!;
}

Deno.test("FsCapability.open() resolves the root to its real path", async () => {
  await withCapability(async (fs, base) => {
    await Deno.symlink(`${base}/data`, `${base}/link`);
    assert.equal((await FsCapability.open(`${base}/link`)).root, `${base}/data`);
    await assert.rejects(FsCapability.open(`${base}/data/notes/today.txt`), TypeError);
    assert.equal(fs.root, `${base}/data`);
    assert.throws(() => new FsCapability("relative"), TypeError);
    assert.throws(() => new FsCapability(`${base}/data/`), TypeError);
  });
});

Deno.test("FsCapability.read() reads a file within the limit", async () => {
  await withCapability(async (fs) => {
    const path = await fs.resolve("/notes/today.txt");
    assert.equal(new TextDecoder().decode(await fs.read(path, 5)), "today");
    assert.equal(new TextDecoder().decode(await fs.read(path, 1024)), "today");
  });
});

Deno.test("FsCapability.read() refuses a file larger than maxBytes", async () => {
  await withCapability(async (fs) => {
    await assertRefused(
      fs.read(await fs.resolve("/notes/today.txt"), 4),
      "limit",
      /^Cannot read "\/notes\/today.txt": it is 5 bytes and reads are limited to 4 bytes$/,
    );
    await assert.rejects(fs.read(await fs.resolve("/notes/today.txt"), -1), RangeError);
  });
});

Deno.test("FsCapability.read() reads a file larger than one chunk", async () => {
  await withCapability(async (fs) => {
    const data = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) % 251);
    const path = await fs.resolve("big.bin");
    assert.equal(await fs.write(path, data), data.byteLength);
    assert.deepEqual(await fs.read(path, data.byteLength), data);
    await assertRefused(fs.read(path, data.byteLength - 1), "limit");
  });
});

Deno.test("FsCapability.read() refuses a directory and reports a missing file", async () => {
  await withCapability(async (fs) => {
    await assertRefused(fs.read(await fs.resolve("notes"), 1024), "invalid", /"\/notes": it is not a regular file/);
    await assertRefused(fs.read(await fs.resolve("missing.txt"), 1024), "not_found", /"\/missing.txt"/);
  });
});

Deno.test("FsCapability.write() replaces a file atomically and leaves no temporary file", async () => {
  await withCapability(async (fs, base) => {
    const path = await fs.resolve("notes/today.txt");
    assert.equal(await fs.write(path, encoder.encode("rewritten")), 9);
    assert.equal(await Deno.readTextFile(`${base}/data/notes/today.txt`), "rewritten");
    assert.equal(await fs.write(await fs.resolve("empty.txt"), new Uint8Array()), 0);
    assert.deepEqual(await fs.list(await fs.resolve("notes")), [{ name: "today.txt", kind: "file" }]);
    assert.deepEqual(await fs.list(await fs.resolve("/")), [
      { name: "empty.txt", kind: "file" },
      { name: "notes", kind: "dir" },
    ]);
  });
});

Deno.test("FsCapability.write() refuses a missing parent directory instead of creating it", async () => {
  await withCapability(async (fs, base) => {
    await assertRefused(
      fs.write(await fs.resolve("new/dir/file.txt"), encoder.encode("x")),
      "not_found",
      /^Cannot write "\/new\/dir\/file.txt": the parent directory "\/new\/dir" does not exist$/,
    );
    await assert.rejects(Deno.stat(`${base}/data/new`), Deno.errors.NotFound);
  });
});

Deno.test("FsCapability.write() refuses the root, a directory and a file as parent", async () => {
  await withCapability(async (fs) => {
    await assertRefused(fs.write(await fs.resolve("/"), encoder.encode("x")), "invalid");
    await assertRefused(fs.write(await fs.resolve("notes"), encoder.encode("x")), "invalid", /it is a directory/);
    await assertRefused(
      fs.write(await fs.resolve("notes/today.txt/x"), encoder.encode("x")),
      "invalid",
      /its parent "\/notes\/today.txt" is not a directory/,
    );
  });
});

Deno.test("FsCapability.write() through a dangling symlink inside writes the target inside", async () => {
  await withCapability(async (fs, base) => {
    await Deno.symlink("notes/later.txt", `${base}/data/later`);
    await fs.write(await fs.resolve("later"), encoder.encode("later"));
    assert.equal(await Deno.readTextFile(`${base}/data/notes/later.txt`), "later");
  });
});

Deno.test("FsCapability.list() sorts entries by name and reports symlinks unfollowed", async () => {
  await withCapability(async (fs, base) => {
    await Deno.writeTextFile(`${base}/data/b.txt`, "");
    await Deno.writeTextFile(`${base}/data/B.txt`, "");
    await Deno.writeTextFile(`${base}/data/a.txt`, "");
    await Deno.symlink(`${base}/outside`, `${base}/data/out`);
    assert.deepEqual(await fs.list(await fs.resolve("/")), [
      { name: "B.txt", kind: "file" },
      { name: "a.txt", kind: "file" },
      { name: "b.txt", kind: "file" },
      { name: "notes", kind: "dir" },
      { name: "out", kind: "symlink" },
    ]);
    // The link can be listed, but not followed.
    await assertRefused(fs.resolve("out"), "denied");
  });
});

Deno.test("FsCapability.list() refuses a file and reports a missing directory", async () => {
  await withCapability(async (fs) => {
    await assertRefused(fs.list(await fs.resolve("notes/today.txt")), "invalid", /it is not a directory/);
    await assertRefused(
      fs.list(await fs.resolve("nowhere")),
      "not_found",
      /^Cannot list "\/nowhere": it does not exist$/,
    );
  });
});

Deno.test("FsCapability.delete() deletes a file but refuses a directory and the root", async () => {
  await withCapability(async (fs, base) => {
    await fs.delete(await fs.resolve("notes/today.txt"));
    await assert.rejects(Deno.stat(`${base}/data/notes/today.txt`), Deno.errors.NotFound);
    await assertRefused(fs.delete(await fs.resolve("notes/today.txt")), "not_found");
    await assertRefused(fs.delete(await fs.resolve("notes")), "invalid", /it is a directory/);
    await assertRefused(fs.delete(await fs.resolve("/")), "denied", /data root is never deleted/);
    await assertRefused(fs.delete(await fs.resolve(".")), "denied");
    assert.ok((await Deno.stat(`${base}/data/notes`)).isDirectory);
  });
});

Deno.test("FsCapability refuses paths that canonicalizePath() did not produce for its root", async () => {
  await withCapability(async (fs, base) => {
    const attacks = [
      `${base}/outside/secret.txt`,
      `${base}/data/../outside/secret.txt`,
      `${base}/data/./notes/today.txt`,
      `${base}/data//notes/today.txt`,
      `${base}/data/notes/`,
      `${base}/data2/f`,
      `${base}/data-other`,
      "notes/today.txt",
      "/etc/passwd",
      "",
    ];
    for (const path of attacks) {
      const error = await assertRefused(fs.read(path, 1024), "denied", /not canonical inside the data root/);
      assert.ok(!error.message.includes(base), error.message);
      await assertRefused(fs.write(path, encoder.encode("x")), "denied");
      await assertRefused(fs.list(path), "denied");
      await assertRefused(fs.delete(path), "denied");
    }
    assert.equal(await Deno.readTextFile(`${base}/outside/secret.txt`), "secret");
  });
});

Deno.test("FsCapability never names the host path of the root in its errors", async () => {
  await withCapability(async (fs, base) => {
    const operations = {
      read: (path: string) => fs.read(path, 10),
      write: (path: string) => fs.write(path, encoder.encode("x")),
      list: (path: string) => fs.list(path),
      delete: (path: string) => fs.delete(path),
    };
    // Missing files, a file used as a directory (an "io" error from the system) and a directory used as a file.
    const failures: [string, keyof typeof operations][] = [
      ["missing.txt", "read"],
      ["missing.txt", "list"],
      ["missing.txt", "delete"],
      ["gone/x", "write"],
      ["notes/today.txt/x", "read"],
      ["notes/today.txt/x", "write"],
      ["notes/today.txt/x", "list"],
      ["notes/today.txt/x", "delete"],
      ["notes", "read"],
      ["notes", "write"],
      ["notes", "delete"],
    ];
    for (const [requested, operation] of failures) {
      await assert.rejects(operations[operation](await fs.resolve(requested)), (error: unknown) => {
        assert.ok(error instanceof HostCallError);
        assert.ok(!error.message.includes(base), error.message);
        assert.ok(error.message.includes(JSON.stringify(`/${requested}`)), error.message);
        return true;
      });
    }
    await assertRefused(fs.read(await fs.resolve("notes/today.txt/x"), 10), "io", /\(NotADirectory\)$/);
  });
});
