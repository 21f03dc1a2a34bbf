/** @jsxImportSource hono/jsx */
// The page frame (header, navigation, sign-out) and the small pieces several pages share.
import type { Context } from "hono";
import { html } from "hono/html";
import type { Child } from "hono/jsx";
import type { ConsoleEnv } from "./_context.ts";
import type { ConsoleSession } from "./session_store.ts";

/** Which navigation entry a page is. */
export type Section = "plugins" | "audit" | "policies" | "health" | "playground" | "none";

const NAV: [Exclude<Section, "none">, string][] = [
  ["plugins", "Plugins"],
  ["audit", "Audit"],
  ["policies", "Policies"],
  ["health", "Health"],
  ["playground", "Playground"],
];

/** Renders a full page: doctype, head (stylesheet, script, CSRF meta), header with navigation and sign-out. */
export function page(
  c: Context<ConsoleEnv>,
  options: { title: string; section: Section; status?: number },
  body: Child,
): Response | Promise<Response> {
  const session = c.get("session");
  const node = (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{options.title} · keycard console</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/console/assets/console.css" />
        {session ? <meta name="csrf-token" content={session.csrf} /> : null}
        <script src="/console/assets/console.js" defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/console/">keycard</a>
          {session ? <Nav section={options.section} session={session} /> : null}
        </header>
        <main id="main">{body}</main>
      </body>
    </html>
  );
  return c.html(html`<!DOCTYPE html>${node}`, (options.status ?? 200) as 200);
}

function Nav(props: { section: Section; session: ConsoleSession }) {
  return (
    <nav class="nav">
      {NAV.map(([id, label]) => (
        <a id={`nav-${id}`} href={`/console/${id}`} class={props.section === id ? "current" : ""}>{label}</a>
      ))}
      <span id="whoami" class="whoami">{props.session.client.id}</span>
      <form id="sign-out-form" method="post" action="/console/sign-out" class="inline">
        <Csrf session={props.session} />
        <button id="sign-out" type="submit">Sign out</button>
      </form>
    </nav>
  );
}

/** The hidden CSRF field every console form carries. */
export function Csrf(props: { session: ConsoleSession | undefined }) {
  return props.session ? <input type="hidden" name="_csrf" value={props.session.csrf} /> : null;
}

/** A JSON value, pretty-printed in a `<pre>` (escaped by JSX). */
export function Json(props: { value: unknown; id?: string }) {
  return <pre id={props.id} class="json">{JSON.stringify(props.value, null, 2)}</pre>;
}
