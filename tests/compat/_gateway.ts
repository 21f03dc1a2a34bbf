// A gateway in a temp dir serving one compat plugin (a built .wasm with its
// manifest beside it), with the repo's policies and an admin token.
import { loadConfig } from "../../src/config/mod.ts";
import { createGateway } from "../../src/gateway/mod.ts";
import { copyPolicies } from "../_test_utils.ts";

const ADMIN = "compat-admin-token-0123456789";

/** Starts the gateway; `data/x/a.txt` ("in x") exists in its data root. */
export async function compatGateway(name: string, wasm: Uint8Array, manifest: string) {
  const dir = await Deno.makeTempDir({ prefix: "keycard-compat-" });
  const policies = await copyPolicies(dir);
  await Deno.mkdir(`${dir}/plugins`);
  await Deno.writeFile(`${dir}/plugins/${name}.wasm`, wasm);
  await Deno.writeTextFile(`${dir}/plugins/${name}.yaml`, manifest);
  await Deno.mkdir(`${dir}/data/files/data/x`, { recursive: true });
  await Deno.writeTextFile(`${dir}/data/files/data/x/a.txt`, "in x");
  await Deno.writeTextFile(
    `${dir}/keycard.yaml`,
    `dataDir: ${dir}/data\npolicies: ${policies}\nplugins:\n  - path: ${dir}/plugins/${name}.wasm\n`,
  );
  const { config } = await loadConfig({ path: `${dir}/keycard.yaml`, env: {} });
  const gw = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0 });
  const request = (path: string, init: RequestInit = {}) =>
    gw.app.request(`http://keycard.test${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN}`, ...init.headers },
    });
  return {
    dir,
    request,
    /** Audit events of this plugin for one action. */
    async audit(action: string) {
      const body = await (await request(`/v1/audit?plugin=${name}&action=${action}&limit=100`)).json();
      return body.events as { decision: string; resource: string; reason?: string }[];
    },
    async close() {
      await gw.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
