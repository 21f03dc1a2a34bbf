import { problem, type ProblemType } from "../http/mod.ts";

/** An `application/problem+json` response of a kind, as the routes answer their own failures. */
export function problemResponse(kind: ProblemType, detail: string, extensions: Record<string, unknown> = {}): Response {
  const body = problem(kind, detail, extensions);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": "application/problem+json" },
  });
}
