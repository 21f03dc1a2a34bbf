/**
 * The gateway: keycard assembled from its configuration (registry, Cedar
 * engine, audit, host functions, plugin host) behind the HTTP app, and the
 * routes that put plugin hook chains in front of upstream services.
 *
 * @module
 */
export { createGateway, type Gateway, type GatewayOptions, type StartFailure } from "./create_gateway.ts";
export { type ConfiguredPlugin, readConfiguredPlugin, StartError } from "./read_configured_plugin.ts";
export { HOOK_BODY_BYTES, type HookInput, type HookOutput, RouteRunner, type RouteRunnerDeps } from "./route_runner.ts";
