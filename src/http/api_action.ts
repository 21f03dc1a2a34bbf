// How an API action is decided for a client, by the /v1 API and the console alike.
import { clientEntity, type Decision, type Entity } from "../policy/mod.ts";
import { ProblemError } from "./problem.ts";
import type { Client, GatewayServices } from "./services.ts";

/** The resource of API actions that concern no plugin. */
export const API: Entity = { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] };

/**
 * Decides an API action (`plugin.read`, `policy.write` ...) for a client with Cedar.
 *
 * @param services The gateway's services.
 * @param client The client.
 * @param action The action.
 * @param resource The resource. @default {API}
 * @returns The decision.
 *
 * @example
 * ```ts ignore
 * decideApiAction(services, { id: "app", roles: ["caller"] }, "plugin.call").decision; // "allow"
 * ```
 */
export function decideApiAction(
  services: GatewayServices,
  client: Client,
  action: string,
  resource: Entity = API,
): Decision {
  return services.authorize({
    principal: clientEntity({ id: client.id, roles: client.roles }),
    action,
    resource,
    context: {},
  });
}

/**
 * Decides an API action for a client and throws the 403 problem the API answers when Cedar denies.
 *
 * @param services The gateway's services.
 * @param client The client.
 * @param action The action.
 * @param resource The resource. @default {API}
 * @throws {ProblemError} `forbidden`, naming the client, action, resource and reason.
 *
 * @example
 * ```ts ignore
 * allowApiAction(services, { id: "viewer", roles: [] }, "policy.write"); // throws a forbidden problem
 * ```
 */
export function allowApiAction(
  services: GatewayServices,
  client: Client,
  action: string,
  resource: Entity = API,
): void {
  const decision = decideApiAction(services, client, action, resource);
  if (decision.decision === "deny") {
    throw new ProblemError(
      "forbidden",
      `Client "${client.id}" may not ${action} ${resource.uid.type}::${
        JSON.stringify(resource.uid.id)
      }: ${decision.reason}`,
      { action, policies: decision.policies },
    );
  }
}
