// What every /v1 sub-app shares: its Hono env (the authenticated client) and the Cedar check of an API action.
import type { Context } from "hono";
import { clientEntity, type Entity } from "../policy/mod.ts";
import { ProblemError } from "./problem.ts";
import type { Client, GatewayServices } from "./services.ts";

/** The Hono env of the API: the client the bearer token names. */
export type ApiEnv = { Variables: { client: Client } };

/** The resource of API actions that concern no plugin. */
export const API: Entity = { uid: { type: "Api", id: "keycard" }, attrs: {}, parents: [] };

/** Decides an API action for the current client; throws a 403 problem when Cedar denies. */
export type Allow = (c: Context<ApiEnv>, action: string, resource?: Entity) => void;

/** The {@linkcode Allow} of a gateway's services. */
export function authorizer(services: GatewayServices): Allow {
  return (c, action, resource = API) => {
    const client = c.get("client");
    const decision = services.authorize({
      principal: clientEntity({ id: client.id, roles: client.roles }),
      action,
      resource,
      context: {},
    });
    if (decision.decision === "deny") {
      throw new ProblemError(
        "forbidden",
        `Client "${client.id}" may not ${action} ${resource.uid.type}::${
          JSON.stringify(resource.uid.id)
        }: ${decision.reason}`,
        { action, policies: decision.policies },
      );
    }
  };
}
