/**
 * The gateway: keycard assembled from its configuration (registry, Cedar
 * engine, audit, host functions, plugin host) behind the HTTP app. Routes and
 * hook chains arrive here later.
 *
 * @module
 */
export { createGateway, type Gateway, type GatewayOptions } from "./create_gateway.ts";
