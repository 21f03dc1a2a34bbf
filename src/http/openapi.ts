// The OpenAPI 3.1 document of keycard's HTTP API, served at /openapi.json.

const problem = { $ref: "#/components/responses/Problem" };
const auth = [{ bearer: [] }];
const name = {
  name: "name",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,128}$" },
};
const errors = { "400": problem, "401": problem, "403": problem };

/** The OpenAPI 3.1 description of the API. */
export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "keycard",
    version: "0.1.0",
    description:
      "Policy-as-code gateway for WebAssembly plugins. Every /v1 route is a Cedar API action decided for the bearer token's client; errors are application/problem+json (RFC 9457) with a stable type /problems/<kind>.",
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    responses: {
      Problem: {
        description: "An RFC 9457 problem",
        content: {
          "application/problem+json": {
            schema: {
              type: "object",
              required: ["type", "title", "status", "detail"],
              properties: {
                type: { type: "string" },
                title: { type: "string" },
                status: { type: "integer" },
                detail: { type: "string" },
              },
            },
          },
        },
      },
    },
    schemas: {
      Plugin: {
        type: "object",
        properties: {
          name: { type: "string" },
          version: { type: "string" },
          versions: { type: "array", items: { type: "string" } },
          sha256: { type: "string" },
          exports: { type: "array", items: { type: "string" } },
          grants: { type: "array" },
          capabilities: { type: "array", items: { type: "string" } },
          isolation: {
            description:
              '"plugin": its instances run in workers of its own; { group }: in the workers of that isolation group, ' +
              "shared with the group's other plugins (never an instance)",
            oneOf: [
              { const: "plugin" },
              {
                type: "object",
                required: ["group"],
                properties: { group: { type: "string" } },
                additionalProperties: false,
              },
            ],
          },
        },
      },
      Upload: {
        type: "object",
        required: ["wasm"],
        properties: {
          wasm: { type: "string", contentMediaType: "application/wasm" },
          manifest: { type: "string", description: "plugin.yaml text" },
        },
      },
      Decision: {
        type: "object",
        properties: {
          decision: { enum: ["allow", "deny"] },
          policies: { type: "array", items: { type: "string" } },
          errors: { type: "array", items: { type: "string" } },
          reason: { type: "string" },
          version: { type: "integer" },
          policySet: { type: "string", description: "sha256:<hex> of the policy set's sources" },
          deciding: {
            type: "array",
            items: {
              type: "object",
              properties: { id: { type: "string" }, source: { type: "string" }, line: { type: "integer" } },
            },
          },
        },
      },
    },
  },
  paths: {
    "/healthz": { get: { summary: "Liveness", responses: { "200": { description: "Alive" } } } },
    "/readyz": {
      get: {
        summary: "Readiness: policies and plugins loaded",
        responses: { "200": { description: "Ready" }, "503": problem },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics (audit.read; no token with server.metrics: open)",
        security: auth,
        responses: { "200": { description: "Prometheus text" }, ...errors },
      },
    },
    "/openapi.json": { get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1" } } } },
    "/v1/plugins": {
      get: {
        summary: "Installed plugins (plugin.read)",
        security: auth,
        responses: { "200": { description: "The plugins" }, ...errors },
      },
    },
    "/v1/plugins/{name}": {
      parameters: [name],
      get: {
        summary: "One plugin, latest version or ?version= (plugin.read)",
        security: auth,
        parameters: [{ name: "version", in: "query", schema: { type: "string" } }],
        responses: {
          "200": {
            description: "The plugin",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Plugin" } } },
          },
          ...errors,
          "404": problem,
        },
      },
      put: {
        summary: "Install: conformance first, then the registry (plugin.install)",
        security: auth,
        requestBody: {
          required: true,
          content: { "multipart/form-data": { schema: { $ref: "#/components/schemas/Upload" } } },
        },
        responses: {
          "201": { description: "Installed, with the report" },
          ...errors,
          "409": problem,
          "413": problem,
          "422": problem,
        },
      },
      delete: {
        summary: "Remove all versions or ?version= (plugin.remove)",
        security: auth,
        parameters: [{ name: "version", in: "query", schema: { type: "string" } }],
        responses: { "204": { description: "Removed" }, ...errors, "404": problem },
      },
    },
    "/v1/plugins/{name}/invoke/{export}": {
      parameters: [name, { name: "export", in: "path", required: true, schema: { type: "string" } }],
      post: {
        summary: "Call an export; the body is its input (plugin.call)",
        security: auth,
        requestBody: { content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
        responses: {
          "200": {
            description: "The output bytes; headers x-keycard-call-id and server-timing",
            content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
          },
          ...errors,
          "404": problem,
          "413": problem,
          "422": problem,
          "429": problem,
          "502": problem,
          "504": problem,
        },
      },
    },
    "/v1/conformance": {
      post: {
        summary: "Run the conformance suite on a module (conformance.run)",
        security: auth,
        requestBody: {
          content: {
            "application/wasm": { schema: { type: "string", format: "binary" } },
            "multipart/form-data": { schema: { $ref: "#/components/schemas/Upload" } },
          },
        },
        responses: { "200": { description: "The report, passing or not" }, ...errors },
      },
    },
    "/v1/policies": {
      get: {
        summary: "The effective policy set (policy.read)",
        security: auth,
        responses: { "200": { description: "Sources, policies, version" }, ...errors },
      },
    },
    "/v1/policies/plan": {
      post: {
        summary: "Plan a change of operator files: replay the recorded audit on it; nothing changes " +
          "(policy.read and audit.read)",
        security: auth,
        requestBody: {
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["files"],
                properties: {
                  files: { type: "object", additionalProperties: { type: "string" } },
                  remove: { type: "array", items: { type: "string" } },
                  last: { type: "integer", minimum: 1 },
                  since: { type: "string", format: "date-time" },
                },
              },
            },
          },
        },
        responses: { "200": { description: "The plan report (widenings, narrowings, skipped, totals)" }, ...errors },
      },
    },
    "/v1/policies/explain": {
      post: {
        summary: "Decide a request with the policies in force and explain each decision with its deciding policies " +
          "(policy.read): a Cedar request, or a host call as a plugin makes it (an HTTP fetch in its two phases), " +
          "as `deno task policy explain` takes it",
        security: auth,
        requestBody: {
          content: { "application/yaml": { schema: { type: "string" } }, "application/json": { schema: {} } },
        },
        responses: {
          "200": { description: "{ decisions: [{ phase?, request, decision, deciding }], refused?, note? }" },
          ...errors,
        },
      },
    },
    "/v1/policies/{name}": {
      parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
      put: {
        summary: "Validate and swap in an operator policy file (policy.write); with ?dryRun=true, validate and " +
          "return the plan of the change instead, changing nothing (also audit.read; ?last, ?since)",
        security: auth,
        parameters: ["dryRun", "last", "since"].map((n) => ({ name: n, in: "query", schema: { type: "string" } })),
        requestBody: { content: { "text/plain": { schema: { type: "string" } } } },
        responses: { "200": { description: "The new version, or { name, dryRun, plan }" }, ...errors },
      },
      delete: {
        summary: "Remove an operator policy file (policy.write)",
        security: auth,
        responses: { "204": { description: "Removed" }, ...errors, "404": problem },
      },
    },
    "/v1/authorize": {
      post: {
        summary: "Dry run of a Cedar request (policy.read)",
        security: auth,
        requestBody: { content: { "application/json": { schema: { type: "object" } } } },
        responses: {
          "200": {
            description: "The decision",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Decision" } } },
          },
          ...errors,
        },
      },
    },
    "/v1/audit": {
      get: {
        summary: "Recent decisions (audit.read)",
        security: auth,
        parameters: ["plugin", "action", "decision", "since", "limit"].map((n) => ({
          name: n,
          in: "query",
          schema: { type: "string" },
        })),
        responses: { "200": { description: "The events, newest first" }, ...errors },
      },
    },
    "/v1/audit/stream": {
      get: {
        summary: "Live decisions as server-sent events (audit.read)",
        security: auth,
        responses: { "200": { description: "text/event-stream of `decision` events" }, ...errors },
      },
    },
  },
} as const;
