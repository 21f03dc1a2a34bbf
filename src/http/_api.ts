// What every /v1 sub-app shares: its Hono env (the authenticated client) and the Cedar check of an API action.
import type { Context } from "hono";
import type { Entity } from "../policy/mod.ts";
import { allowApiAction, API } from "./api_action.ts";
import type { Client, GatewayServices } from "./services.ts";

export { API } from "./api_action.ts";

/** The Hono env of the API: the client the bearer token names. */
export type ApiEnv = { Variables: { client: Client } };

/** Decides an API action for the current client; throws a 403 problem when Cedar denies. */
export type Allow = (c: Context<ApiEnv>, action: string, resource?: Entity) => void;

/** The {@linkcode Allow} of a gateway's services. */
export function authorizer(services: GatewayServices): Allow {
  return (c, action, resource = API) => allowApiAction(services, c.get("client"), action, resource);
}
