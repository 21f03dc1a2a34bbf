// Which of Cedar's constructs the generated policies exercised, counted on cedar-wasm's EST of each policy (what was
// parsed, not what the generator meant), and which outcomes the requests reached.

/** Every construct the DRT must hit: scope forms, clauses, annotations, operators, methods, extension functions. */
export const CONSTRUCTS: readonly string[] = [
  "principal:All",
  "principal:==",
  "principal:in",
  "principal:is",
  "principal:is-in",
  "action:All",
  "action:==",
  "action:in",
  "action:in-set",
  "resource:All",
  "resource:==",
  "resource:in",
  "resource:is",
  "resource:is-in",
  "when",
  "unless",
  "@id",
  "@annotation",
  "@annotation-no-value",
  "value:bool",
  "value:long",
  "value:long>2^53",
  "value:string",
  "value:entity",
  "var:principal",
  "var:action",
  "var:resource",
  "var:context",
  "!",
  "neg",
  "==",
  "!=",
  "in",
  "<",
  "<=",
  ">",
  ">=",
  "&&",
  "||",
  "+",
  "-",
  "*",
  "contains",
  "containsAll",
  "containsAny",
  "isEmpty",
  "getTag",
  "hasTag",
  ".",
  "has",
  "has a.b",
  "like",
  "like *",
  "like \\*",
  "is",
  "is-in",
  "if-then-else",
  "Set",
  "Record",
  "decimal",
  "lessThan",
  "lessThanOrEqual",
  "greaterThan",
  "greaterThanOrEqual",
  "ip",
  "isIpv4",
  "isIpv6",
  "isLoopback",
  "isMulticast",
  "isInRange",
  "datetime",
  "offset",
  "durationSince",
  "toDate",
  "toTime",
  "duration",
  "toMilliseconds",
  "toSeconds",
  "toMinutes",
  "toHours",
  "toDays",
];

/** Outcomes the requests must reach. */
export const OUTCOMES: readonly string[] = [
  "allow",
  "deny",
  "error:overflow",
  "error:missing-attribute",
  "error:missing-tag",
  "error:absent-entity",
  "error:extension",
  "error:type",
  "refused:request",
];

/** Counts of constructs and outcomes. */
export class Coverage {
  readonly counts: Map<string, number> = new Map();

  /** Counts one hit of `name`. */
  hit(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  /** Counts every construct of one policy's EST (cedar-wasm's JSON policy format). */
  policy(est: unknown): void {
    const p = est as Record<string, Record<string, unknown>> & { conditions: { kind: string; body: unknown }[] };
    for (const slot of ["principal", "action", "resource"] as const) {
      const c = p[slot]!;
      if (c.op === "is" && c.in !== undefined) this.hit(`${slot}:is-in`);
      else if (c.op === "in" && Array.isArray(c.entities)) this.hit(`${slot}:in-set`);
      else this.hit(`${slot}:${c.op}`);
    }
    for (const [key, value] of Object.entries((p.annotations ?? {}) as Record<string, unknown>)) {
      this.hit(key === "id" ? "@id" : value === null ? "@annotation-no-value" : "@annotation");
    }
    for (const clause of p.conditions) {
      this.hit(clause.kind);
      this.expr(clause.body);
    }
  }

  /** Counts every construct of one expression. */
  expr(e: unknown): void {
    if (e === null || typeof e !== "object") return;
    const [key, body] = Object.entries(e as Record<string, unknown>)[0] ?? [];
    if (key === undefined) return;
    switch (key) {
      case "Value":
        return this.value(body);
      case "Var":
        return this.hit(`var:${body}`);
      case "has": {
        const b = body as { left: unknown; attr: unknown };
        this.hit(Array.isArray(b.attr) && b.attr.length > 1 ? "has a.b" : "has");
        return this.expr(b.left);
      }
      case "like": {
        const b = body as { left: unknown; pattern: unknown[] };
        this.hit("like");
        if (b.pattern.includes("Wildcard")) this.hit("like *");
        if (
          b.pattern.some((p) => typeof p === "object" && p !== null && (p as { Literal: string }).Literal.includes("*"))
        ) {
          this.hit("like \\*");
        }
        return this.expr(b.left);
      }
      case "is": {
        const b = body as { left: unknown; in?: unknown };
        this.hit(b.in === undefined ? "is" : "is-in");
        this.expr(b.left);
        return this.expr(b.in);
      }
      case "Set":
        this.hit("Set");
        for (const item of body as unknown[]) this.expr(item);
        return;
      case "Record":
        this.hit("Record");
        for (const item of Object.values(body as Record<string, unknown>)) this.expr(item);
        return;
      case "if-then-else": {
        this.hit("if-then-else");
        const b = body as Record<string, unknown>;
        this.expr(b.if);
        this.expr(b.then);
        return this.expr(b.else);
      }
      default:
        this.hit(key);
        if (Array.isArray(body)) {
          for (const arg of body) this.expr(arg); // an extension function or method: its arguments
        } else if (body !== null && typeof body === "object") {
          for (const part of Object.values(body as Record<string, unknown>)) this.expr(part);
        }
    }
  }

  #valueKind(v: unknown): void {
    if (typeof v === "boolean") this.hit("value:bool");
    else if (typeof v === "number" || typeof v === "bigint") {
      this.hit(Math.abs(Number(v)) > 2 ** 53 ? "value:long>2^53" : "value:long");
    } else if (typeof v === "string") this.hit("value:string");
    else if (v !== null && typeof v === "object" && "__entity" in v) this.hit("value:entity");
  }

  value(v: unknown): void {
    this.#valueKind(v);
  }

  /** Constructs or outcomes of `names` never hit. */
  missing(names: readonly string[]): string[] {
    return names.filter((n) => !this.counts.has(n));
  }

  /** A one-line summary: hit / total constructs, and what was missed. */
  summary(): string {
    const missed = this.missing(CONSTRUCTS);
    const outcomes = this.missing(OUTCOMES);
    return `constructs ${CONSTRUCTS.length - missed.length}/${CONSTRUCTS.length}` +
      (missed.length > 0 ? ` (missed ${missed.join(", ")})` : "") +
      `, outcomes ${OUTCOMES.length - outcomes.length}/${OUTCOMES.length}` +
      (outcomes.length > 0 ? ` (missed ${outcomes.join(", ")})` : "");
  }

  /** Every count, for the long report: `name n` pairs, least hit first. */
  table(): string {
    return [...this.counts].sort((a, b) => a[1] - b[1]).map(([k, v]) => `${k} ${v}`).join(", ");
  }
}
