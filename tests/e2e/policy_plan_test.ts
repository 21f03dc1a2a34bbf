// Planning a policy change through the shipped commands: `deno task start` records stamp's host calls (allowed,
// forbidden, denied by default) with their Cedar requests; the running gateway plans changes over the API without
// applying them; once it is stopped, `deno task policy plan <candidate dir>` replays its audit files.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bearer,
  expectProblem,
  expectStatus,
  type Keycard,
  makeSite,
  pluginDir,
  Run,
  type Site,
  startKeycard,
} from "./_server.ts";

const FORBID_SECRET = [
  "// Operator policy: stamp never reads its secret folder.",
  '@id("ops.no-secret")',
  'forbid (principal == Plugin::"stamp", action == Action::"fs.read", resource in Dir::"/data/stamp/secret");',
  "",
].join("\n");

/** Runs `deno task policy plan ...` to its end (bounded). */
async function plan(site: Site, candidate: string, ...args: string[]) {
  await using command = new Run(["task", "policy", "plan", candidate, "--config", site.configPath, ...args]);
  const status = await command.exit(60_000);
  return { code: status.code, stdout: command.stdout.text(), stderr: command.stderr.text(), output: command.output() };
}

/** A candidate policies dir: a copy of the site's `.cedar` files and schema, then `edit` applied. */
async function candidate(site: Site, name: string, edit: Record<string, string | null>): Promise<string> {
  const dir = join(site.dir, name);
  await Deno.mkdir(dir);
  for await (const entry of Deno.readDir(site.policiesDir)) {
    if (entry.isFile) await Deno.copyFile(join(site.policiesDir, entry.name), join(dir, entry.name));
  }
  for (const [file, text] of Object.entries(edit)) {
    if (text === null) await Deno.remove(join(dir, file));
    else await Deno.writeTextFile(join(dir, file), text);
  }
  return dir;
}

async function invoke(kc: Keycard, exportName: string, body: string): Promise<number> {
  const response = await kc.fetch(`/v1/plugins/stamp/invoke/${exportName}`, {
    method: "POST",
    headers: bearer(kc.site.callerToken),
    body,
  });
  await response.body?.cancel();
  return response.status;
}

/** What the API shows of the set in force, and the operator files on disk: a plan must change neither. */
async function inForce(kc: Keycard): Promise<string> {
  const response = await kc.fetch("/v1/policies", { headers: bearer(kc.adminToken) });
  const { version, sources } = JSON.parse(await expectStatus(kc, response, 200));
  const files: string[] = [];
  for await (const entry of Deno.readDir(kc.site.policiesDir)) files.push(entry.name);
  const disk = await Promise.all(
    files.sort().map(async (f) => `${f}:${await Deno.readTextFile(join(kc.site.policiesDir, f))}`),
  );
  return JSON.stringify({ version, sources, disk });
}

Deno.test("policy plan: the gateway records replayable decisions; the API and deno task policy plan report flips", async (t) => {
  await using site = await makeSite({ plugins: [pluginDir("stamp")], routes: [] });
  await Deno.writeTextFile(join(site.policiesDir, "ops.cedar"), FORBID_SECRET);
  const files = join(site.dataDir, "files", "data", "stamp");
  await Deno.mkdir(join(files, "secret"), { recursive: true });
  await Deno.writeTextFile(join(files, "hello.txt"), "hello");
  await Deno.writeTextFile(join(files, "secret", "key.txt"), "key");

  {
    await using kc = await startKeycard(site);
    const admin = bearer(kc.adminToken);

    await t.step("stamp's host calls: allowed, forbidden by ops.no-secret, denied by default", async () => {
      assert.equal(await invoke(kc, "stamp", "x"), 200); // clock.now, random.get, log.write
      assert.equal(await invoke(kc, "read_file", "data/stamp/hello.txt"), 200);
      for (let i = 0; i < 3; i++) assert.notEqual(await invoke(kc, "read_file", "data/stamp/secret/key.txt"), 200);
      assert.notEqual(await invoke(kc, "read_file", "data/other.txt"), 200);
      const response = await kc.fetch("/v1/audit?plugin=stamp&action=fs.read&decision=deny", { headers: admin });
      const { events } = JSON.parse(await expectStatus(kc, response, 200));
      const forbidden = events.find((e: { resource: string }) => e.resource === 'File::"/data/stamp/secret/key.txt"');
      assert.ok(forbidden, JSON.stringify(events));
      assert.match(forbidden.policySet, /^sha256:[0-9a-f]{64}$/);
      assert.equal(forbidden.deciding[0].id, "ops.no-secret");
      assert.equal(forbidden.deciding[0].source, "ops.cedar");
      assert.equal(forbidden.deciding[0].line, 2);
      assert.equal(forbidden.request.principal.uid.id, "stamp");
      assert.equal(forbidden.request.resource.uid.id, "/data/stamp/secret/key.txt");
      assert.deepEqual(forbidden.request.context, { caller: "app" });
    });

    await t.step("POST /v1/policies/plan reports removing the forbid as a widening; nothing changes", async () => {
      const before = await inForce(kc);
      const response = await kc.fetch("/v1/policies/plan", {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ files: { "ops.cedar": "// no forbid any more\n" } }),
      });
      const report = JSON.parse(await expectStatus(kc, response, 200));
      assert.equal(report.totals.widened, 3, JSON.stringify(report.totals));
      assert.equal(report.totals.narrowed, 0);
      assert.deepEqual(
        report.widenings.map((g: { plugin: string; action: string; before: { reason: string } }) => [
          g.plugin,
          g.action,
          g.before.reason,
        ]),
        [["stamp", "fs.read", "forbidden by ops.no-secret"]],
      );
      assert.equal(report.widenings[0].policies[0].source, "grants/stamp");
      assert.equal(report.widenings[0].examples[0].resource, 'File::"/data/stamp/secret/key.txt"');
      assert.notEqual(report.candidate.policySet, report.current.policySet);
      assert.equal(await inForce(kc), before);
    });

    await t.step("PUT /v1/policies/{name}?dryRun=true returns the plan of that change; nothing changes", async () => {
      const before = await inForce(kc);
      const wide = '@id("ops.read-all")\npermit (principal, action == Action::"fs.read", resource);\n';
      const response = await kc.fetch("/v1/policies/wide.cedar?dryRun=true", {
        method: "PUT",
        headers: admin,
        body: wide,
      });
      const body = JSON.parse(await expectStatus(kc, response, 200));
      assert.deepEqual([body.name, body.dryRun], ["wide.cedar", true]);
      // The default-denied read widens; the forbid still wins over the new permit.
      assert.equal(body.plan.totals.widened, 1, JSON.stringify(body.plan.totals));
      assert.deepEqual(body.plan.widenings[0].policies, [{ id: "ops.read-all", source: "wide.cedar", line: 1 }]);
      assert.equal(body.plan.widenings[0].examples[0].resource, 'File::"/data/other.txt"');
      assert.equal(await inForce(kc), before);
      assert.equal(await Deno.stat(join(site.policiesDir, "wide.cedar")).catch(() => "absent"), "absent");

      const bad = await kc.fetch("/v1/policies/wide.cedar?dryRun=true", {
        method: "PUT",
        headers: admin,
        body: "permit (principal, action,\n  resource) when { 1 + };",
      });
      const problem = await expectProblem(bad, 400);
      assert.match(String(problem.detail), /wide\.cedar.*line 2/);
      assert.equal(await inForce(kc), before);
    });

    await t.step("planning needs audit.read on top of policy.read or policy.write", async () => {
      const viewer = bearer(site.viewerToken);
      const post = await kc.fetch("/v1/policies/plan", {
        method: "POST",
        headers: { ...viewer, "content-type": "application/json" },
        body: JSON.stringify({ files: {} }),
      });
      await expectProblem(post, 403, "forbidden");
      const bad = await kc.fetch("/v1/policies/plan", {
        method: "POST",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ files: { "../x": "" } }),
      });
      await expectProblem(bad, 400, "bad-request");
    });

    assert.equal((await kc.stop()).code, 0, kc.run.output());
  }

  await t.step(
    "a candidate that removes a forbid and adds a wide permit widens: exit 1, 0 with --allow-widening",
    async () => {
      const dir = await candidate(site, "widen", {
        "ops.cedar": null,
        "wide.cedar": '@id("ops.read-all")\npermit (principal, action == Action::"fs.read", resource);\n',
      });
      const result = await plan(site, dir);
      assert.equal(result.code, 1, result.output);
      assert.match(result.stdout, /^WIDENING: 4 decisions denied now would be allowed$/m);
      assert.match(result.stdout, /^ {2}stamp fs\.read: 3 decisions \(3 events\)$/m);
      assert.match(result.stdout, /was forbidden by ops\.no-secret \(.*ops\.cedar:2\)/);
      assert.match(result.stdout, /now permitted by .*ops\.read-all \(.*widen\/wide\.cedar:1\)/);
      assert.match(result.stdout, /pass --allow-widening to accept/);

      const allowed = await plan(site, dir, "--allow-widening", "--format", "json");
      assert.equal(allowed.code, 0, allowed.output);
      const report = JSON.parse(allowed.stdout);
      assert.equal(report.totals.widened, 4);
      assert.equal(report.totals.replayed, 8, JSON.stringify(report.totals)); // 3 of the stamp export, 5 reads
      assert.deepEqual(report.audit.files, [join(site.dataDir, "audit.jsonl")]);

      const last = await plan(site, dir, "--last", "1", "--format", "json");
      assert.equal(JSON.parse(last.stdout).totals.events, 1, last.output);
    },
  );

  await t.step("a narrowing candidate is reported with the permits that allowed: exit 0", async () => {
    const dir = await candidate(site, "narrow", {
      "no-clock.cedar": '@id("ops.no-clock")\nforbid (principal, action == Action::"clock.now", resource);\n',
    });
    const result = await plan(site, dir);
    assert.equal(result.code, 0, result.output);
    assert.match(result.stdout, /^NARROWING: 1 decision allowed now would be denied$/m);
    assert.match(result.stdout, /^ {2}stamp clock\.now: 1 decision \(1 event\)$/m);
    assert.match(
      result.stdout,
      /was permitted by grant\.stamp\.\d+ \(grants\/stamp:\d+, compiled from .*plugin\.yaml\)/,
    );
    assert.match(result.stdout, /now forbidden by ops\.no-clock \(.*narrow\/no-clock\.cedar:1\)/);
    assert.match(result.stdout, /^Result: no recorded decision would widen \(1 would narrow\)$/m);
  });

  await t.step("an identical candidate reports no flip", async () => {
    const dir = await candidate(site, "same", {});
    const result = await plan(site, dir, "--format", "json");
    assert.equal(result.code, 0, result.output);
    const report = JSON.parse(result.stdout);
    assert.equal(report.candidate.policySet, report.current.policySet);
    assert.deepEqual([report.totals.widened, report.totals.narrowed, report.totals.reattributed], [0, 0, 0]);
    assert.equal(report.totals.unchanged, report.totals.replayed);
    assert.equal(report.totals.replayed, 8);
  });

  await t.step("a candidate with a syntax error exits 2 with file:line:column", async () => {
    const dir = await candidate(site, "broken", {
      "ops.cedar": FORBID_SECRET + "\npermit (principal, action,\n  resource) when { 1 + };\n",
    });
    const result = await plan(site, dir);
    assert.equal(result.code, 2, result.output);
    assert.match(result.stderr, /broken\/ops\.cedar:6:\d+: /);
    assert.equal(result.stdout, "");
    const missing = await plan(site, join(site.dir, "nope"));
    assert.equal(missing.code, 2, missing.output);
    assert.match(missing.stderr, /no such directory/);
  });
});
