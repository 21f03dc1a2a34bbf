// keycard console: the little interaction server-rendered pages need (no framework, no inline code).
// Text from the server is always set with textContent, never parsed as HTML.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

// Audit: append live decisions from the console's SSE stream.
function startAuditTail() {
  const list = document.getElementById("audit-live");
  const status = document.getElementById("audit-status");
  if (!list || !globalThis.EventSource) return;
  const source = new EventSource(list.dataset.stream);
  source.addEventListener("ready", () => {
    if (status) status.textContent = "live";
    list.dataset.live = "true";
  });
  source.addEventListener("error", () => {
    if (status) status.textContent = "reconnecting…";
    list.dataset.live = "false";
  });
  source.addEventListener("decision", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const item = document.createElement("li");
    item.className = `event ${event.decision === "allow" ? "allow" : "deny"} new`;
    item.dataset.testid = "audit-event";
    item.setAttribute("data-testid", "audit-event");
    item.dataset.plugin = event.plugin;
    item.dataset.action = event.action;
    item.dataset.decision = event.decision;
    item.dataset.callId = event.callId;
    const parts = [
      ["time", event.time],
      ["decision", event.decision],
      ["plugin", event.plugin],
      ["action", event.action],
      ["resource mono", event.resource],
      ["caller", event.caller ? `by ${event.caller}` : ""],
      ["count", (event.count ?? 1) > 1 ? `×${event.count}` : ""],
      ["reason", event.decision === "deny" ? (event.reason ?? "") : (event.policies ?? []).join(", ")],
    ];
    for (const [cls, text] of parts) {
      if (!text) continue;
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = String(text);
      item.append(span, " ");
    }
    list.prepend(item);
    while (list.children.length > 200) list.lastElementChild.remove();
  });
}

// Policies: validate the editor's text as it is typed, show the error at line and column, and the plan of flips.
function startPolicyEditor() {
  const editor = document.getElementById("policy-editor");
  const nameInput = document.getElementById("policy-name");
  const errorBox = document.getElementById("policy-error");
  const planBox = document.getElementById("policy-plan");
  const apply = document.getElementById("policy-apply");
  if (!editor || !nameInput || !errorBox) return;
  let timer;
  let sequence = 0;
  const validate = async () => {
    const mine = ++sequence;
    errorBox.dataset.state = "pending";
    let result;
    try {
      const response = await fetch("/console/policies/validate", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrfToken(), accept: "application/json" },
        body: JSON.stringify({ name: nameInput.value || "untitled.cedar", text: editor.value }),
        credentials: "same-origin",
      });
      result = await response.json();
      if (!response.ok) result = { valid: false, message: result.detail ?? `HTTP ${response.status}` };
    } catch (error) {
      result = { valid: false, message: String(error) };
    }
    if (mine !== sequence) return; // a newer keystroke is being validated
    if (result.valid) {
      errorBox.textContent = "";
      errorBox.dataset.state = "valid";
      if (apply) apply.disabled = false;
    } else {
      // The engine's messages usually name the position already; say it once.
      const named = result.line === undefined || String(result.message).includes(`line ${result.line}`);
      const at = named ? "" : `line ${result.line}${result.column !== undefined ? `, column ${result.column}` : ""}: `;
      errorBox.textContent = at + result.message;
      errorBox.dataset.state = "invalid";
      if (result.line !== undefined) errorBox.dataset.line = String(result.line);
      if (result.column !== undefined) errorBox.dataset.column = String(result.column);
    }
    if (planBox) renderPlan(planBox, result.valid ? result.plan : undefined);
  };
  const schedule = () => {
    clearTimeout(timer);
    errorBox.dataset.state = "pending";
    timer = setTimeout(validate, 300);
  };
  editor.addEventListener("input", schedule);
  nameInput.addEventListener("input", schedule);
  if (editor.value) validate();
}

function renderPlan(box, plan) {
  box.replaceChildren();
  if (!plan) {
    box.dataset.state = "none";
    return;
  }
  box.dataset.state = "ready";
  const t = plan.totals;
  const head = document.createElement("p");
  head.id = "policy-plan-totals";
  head.textContent =
    `Plan over ${t.decisions} recorded decisions: ${t.widened} widened, ${t.narrowed} narrowed, ${t.reattributed} reattributed, ${t.unchanged} unchanged, ${t.skipped} skipped`;
  box.append(head);
  for (const [kind, groups] of [["widening", plan.widenings], ["narrowing", plan.narrowings]]) {
    if (!groups || groups.length === 0) continue;
    const list = document.createElement("ul");
    for (const group of groups) {
      const item = document.createElement("li");
      item.setAttribute("data-testid", `plan-${kind}`);
      item.textContent = `${kind}: ${group.label} (${group.count})`;
      list.append(item);
    }
    box.append(list);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  startAuditTail();
  startPolicyEditor();
});
