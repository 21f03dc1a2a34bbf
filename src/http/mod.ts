/**
 * keycard's HTTP API: a Hono app over {@linkcode GatewayServices}, with
 * problem+json errors, bearer-token clients decided by Cedar, metrics and the
 * OpenAPI document. It knows nothing of Extism or storage.
 *
 * @module
 */
export { AuthThrottle, type AuthThrottleOptions } from "./auth_throttle.ts";
export { createApp } from "./create_app.ts";
export { Metrics, type MetricsSnapshot } from "./metrics.ts";
export { OPENAPI } from "./openapi.ts";
export { type Problem, problem, ProblemError, problemKind, PROBLEMS, type ProblemType, toProblem } from "./problem.ts";
export type { Client, GatewayServices, PluginView, PolicySourceView, ReportLike, StoreView } from "./services.ts";
