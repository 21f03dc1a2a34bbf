import assert from "node:assert/strict";
import { HostCallError } from "../runtime/mod.ts";
import { canonicalizePath } from "./canonicalize_path.ts";

/**
 * A temp dir holding `data/` (the root, with `notes/today.txt`), a sibling
 * `data2/f` and `outside/secret.txt`; removed at the end.
 */
async function withTree(body: (dirs: { base: string; root: string }) => Promise<void>): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "keycard_canonicalize_" }));
  try {
    const root = `${base}/data`;
    await Deno.mkdir(`${root}/notes`, { recursive: true });
    await Deno.writeTextFile(`${root}/notes/today.txt`, "today");
    await Deno.mkdir(`${base}/data2`);
    await Deno.writeTextFile(`${base}/data2/f`, "sibling");
    await Deno.mkdir(`${base}/outside`);
    await Deno.writeTextFile(`${base}/outside/secret.txt`, "secret");
    await body({ base, root });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function assertRefused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof HostCallError, `expected a HostCallError, got ${error}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });
}

Deno.test("canonicalizePath() resolves a relative path inside the root", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "notes/today.txt"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "notes/today.txt", { mustExist: true }), `${root}/notes/today.txt`);
  });
});

Deno.test("canonicalizePath() reads a leading slash as the root", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "/notes/today.txt"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "/"), root);
    assert.equal(await canonicalizePath(root, "."), root);
    assert.equal(await canonicalizePath(root, "notes/.."), root);
  });
});

Deno.test("canonicalizePath() keeps an absolute-looking /etc/passwd inside the root", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "/etc/passwd"), `${root}/etc/passwd`);
    await assertRefused(canonicalizePath(root, "/etc/passwd", { mustExist: true }), "not_found", /"\/etc\/passwd"/);
  });
});

Deno.test("canonicalizePath() collapses duplicate slashes, dot segments and a trailing slash", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "//notes///./today.txt"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "notes/"), `${root}/notes`);
    assert.equal(await canonicalizePath(root, "a/b/../../notes/x/../today.txt"), `${root}/notes/today.txt`);
  });
});

Deno.test("canonicalizePath() returns a missing path unless mustExist is set", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "notes/new/deeper.txt"), `${root}/notes/new/deeper.txt`);
    await assertRefused(
      canonicalizePath(root, "notes/new.txt", { mustExist: true }),
      "not_found",
      /^Path "notes\/new.txt" does not exist$/,
    );
  });
});

Deno.test("canonicalizePath() refuses .. above the root", async () => {
  await withTree(async ({ root }) => {
    for (const attack of ["..", "../etc/passwd", "a/../../x", "/../../x", "notes/../../data/notes", "./.."]) {
      await assertRefused(
        canonicalizePath(root, attack),
        "denied",
        new RegExp(`^Path ${RegExp.escape(JSON.stringify(attack))} escapes the data root$`),
      );
    }
  });
});

Deno.test("canonicalizePath() refuses a sibling directory that shares the root's name as a prefix", async () => {
  await withTree(async ({ base, root }) => {
    await assertRefused(canonicalizePath(root, "../data2/f"), "denied");
    await Deno.symlink(`${base}/data2`, `${root}/sibling`);
    await assertRefused(canonicalizePath(root, "sibling/f"), "denied", /escapes the data root/);
    await assertRefused(canonicalizePath(root, "sibling"), "denied");
  });
});

Deno.test("canonicalizePath() refuses empty, control characters, backslashes and long paths", async () => {
  await withTree(async ({ root }) => {
    await assertRefused(canonicalizePath(root, ""), "invalid", /is empty/);
    await assertRefused(
      canonicalizePath(root, "a\u0000b"),
      "invalid",
      /^Path "a\\u0000b" contains .*U\+0000 at index 1/,
    );
    await assertRefused(canonicalizePath(root, "notes/today.txt\u0000.png"), "invalid", /U\+0000/);
    await assertRefused(canonicalizePath(root, "a\nb"), "invalid", /U\+000A/);
    await assertRefused(canonicalizePath(root, "a\tb"), "invalid", /U\+0009/);
    await assertRefused(canonicalizePath(root, "a\u007fb"), "invalid", /U\+007F/);
    await assertRefused(canonicalizePath(root, "..\\..\\etc"), "invalid", /backslash at index 2/);
    await assertRefused(canonicalizePath(root, "a/".repeat(2049)), "invalid", /limited to 4096 bytes/);
    // Bytes, not characters: 2049 two-byte characters are 4098 bytes.
    await assertRefused(canonicalizePath(root, "é".repeat(2049)), "invalid", /4098 bytes/);
  });
});

Deno.test("canonicalizePath() accepts a path of exactly 4096 bytes", async () => {
  await withTree(async ({ root }) => {
    const requested = "/" + "a/".repeat(2047) + "b";
    assert.equal(new TextEncoder().encode(requested).byteLength, 4096);
    assert.equal(await canonicalizePath(root, requested), root + requested);
  });
});

Deno.test("canonicalizePath() does not decode percent-encoding", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "%2e%2e/%2e%2e/etc/passwd"), `${root}/%2e%2e/%2e%2e/etc/passwd`);
    assert.equal(await canonicalizePath(root, "..%2f..%2fetc"), `${root}/..%2f..%2fetc`);
    assert.equal(await canonicalizePath(root, "%252e%252e"), `${root}/%252e%252e`);
  });
});

Deno.test("canonicalizePath() refuses a file symlink that points outside the root", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink(`${base}/outside/secret.txt`, `${root}/absolute.txt`);
    await Deno.symlink("../outside/secret.txt", `${root}/relative.txt`);
    for (const link of ["absolute.txt", "/relative.txt"]) {
      await assertRefused(canonicalizePath(root, link), "denied", /escapes the data root/);
      await assertRefused(canonicalizePath(root, link, { mustExist: true }), "denied");
    }
  });
});

Deno.test("canonicalizePath() refuses a directory symlink that points outside the root", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink(`${base}/outside`, `${root}/out`);
    await assertRefused(canonicalizePath(root, "out"), "denied");
    await assertRefused(canonicalizePath(root, "out/secret.txt"), "denied");
    // A file that does not exist yet behind the link would be created outside.
    await assertRefused(canonicalizePath(root, "out/new/file.txt"), "denied");
    await Deno.symlink("/", `${root}/slash`);
    await assertRefused(canonicalizePath(root, "slash/etc/passwd"), "denied");
  });
});

Deno.test("canonicalizePath() refuses a chain of symlinks that ends outside the root", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink("c2", `${root}/c1`);
    await Deno.symlink("notes/../c3", `${root}/c2`);
    await Deno.symlink(`${base}/outside/secret.txt`, `${root}/c3`);
    await assertRefused(canonicalizePath(root, "c1"), "denied");
    await Deno.symlink("d2", `${root}/d1`);
    await Deno.symlink(`${base}/outside`, `${root}/d2`);
    await assertRefused(canonicalizePath(root, "d1/secret.txt"), "denied");
  });
});

Deno.test("canonicalizePath() refuses a dangling symlink whose target would be created outside", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink(`${base}/outside/created-by-plugin.txt`, `${root}/dangling`);
    await assertRefused(canonicalizePath(root, "dangling"), "denied");
    await Deno.symlink("dangling", `${root}/to-dangling`);
    await assertRefused(canonicalizePath(root, "to-dangling"), "denied");
    await Deno.symlink("../outside/new-dir", `${root}/dangling-dir`);
    await assertRefused(canonicalizePath(root, "dangling-dir/file.txt"), "denied");
  });
});

Deno.test("canonicalizePath() follows a symlink that stays inside the root", async () => {
  await withTree(async ({ root }) => {
    await Deno.symlink("notes/today.txt", `${root}/today`);
    await Deno.symlink(`${root}/notes`, `${root}/n`);
    await Deno.symlink("today", `${root}/chain`);
    await Deno.symlink("notes/later.txt", `${root}/later`);
    assert.equal(await canonicalizePath(root, "today", { mustExist: true }), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "n/today.txt"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "chain"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(root, "n/new.txt"), `${root}/notes/new.txt`);
    // A dangling link inside resolves to its target, where a write would land.
    assert.equal(await canonicalizePath(root, "later"), `${root}/notes/later.txt`);
    await assertRefused(canonicalizePath(root, "later", { mustExist: true }), "not_found");
  });
});

Deno.test("canonicalizePath() resolves .. lexically before following a symlink", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink(`${base}/outside`, `${root}/out`);
    // The system would resolve out/.. to the base directory; lexically it is the root.
    assert.equal(await canonicalizePath(root, "out/../notes/today.txt"), `${root}/notes/today.txt`);
  });
});

Deno.test("canonicalizePath() refuses a symlink loop", async () => {
  await withTree(async ({ root }) => {
    await Deno.symlink("loop2", `${root}/loop1`);
    await Deno.symlink("loop1", `${root}/loop2`);
    await Deno.symlink("self", `${root}/self`);
    await assertRefused(canonicalizePath(root, "loop1"), "invalid", /more than 40 symbolic links/);
    await assertRefused(canonicalizePath(root, "self/x"), "invalid", /symbolic-link loops/);
  });
});

Deno.test("canonicalizePath() accepts a root reached through a symlink", async () => {
  await withTree(async ({ base, root }) => {
    await Deno.symlink(root, `${base}/root-link`);
    assert.equal(await canonicalizePath(`${base}/root-link`, "notes/today.txt"), `${root}/notes/today.txt`);
    assert.equal(await canonicalizePath(`${base}/root-link/`, "/"), root);
  });
});

Deno.test("canonicalizePath() refuses a missing root without naming its host path", async () => {
  await withTree(async ({ base }) => {
    await assert.rejects(canonicalizePath(`${base}/missing`, "a.txt"), (error: unknown) => {
      assert.ok(error instanceof HostCallError);
      assert.equal(error.code, "io");
      assert.ok(!error.message.includes(base), error.message);
      return true;
    });
  });
  await assert.rejects(canonicalizePath("relative/root", "a.txt"), TypeError);
});

Deno.test("canonicalizePath() returns a missing path below a file as missing", async () => {
  await withTree(async ({ root }) => {
    assert.equal(await canonicalizePath(root, "notes/today.txt/x"), `${root}/notes/today.txt/x`);
    await assertRefused(canonicalizePath(root, "notes/today.txt/x", { mustExist: true }), "not_found");
  });
});
