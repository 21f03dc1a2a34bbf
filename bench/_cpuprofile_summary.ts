// Summary of a V8 `.cpuprofile` (written by `deno run --cpu-prof`): where one
// isolate's time went, as tables of self time by function and by file, and
// total (inclusive) time of keycard's own functions. Used by
// bench/throughput.ts --profile-summary=<file>. A thread blocked in a sync
// wait (a worker in Atomics.wait) shows as self time of the function that
// waits, not as `(idle)`: only the event loop's waits are idle.

/** A `.cpuprofile` as V8 writes it (the fields read here). */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** µs since the previous sample; the first is since `startTime`. */
  timeDeltas: number[];
}

/** Options of {@linkcode summarizeCpuProfile}. */
export interface SummaryOptions {
  /** Rows of the self-time table. @default {25} */
  top?: number;
}

const REPO = new URL("..", import.meta.url).href;
const IDLE = "(idle)";
const GC = "(garbage collector)";

/** A short location: repo-relative, `npm:<package>` for npm's cache, built-in modules as they are. */
function where(url: string, line: number): string {
  if (url === "") return "";
  let short = url;
  if (url.startsWith(REPO)) short = url.slice(REPO.length);
  else {
    const npm = /\/npm\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/([^/]+)\/(.*)$/.exec(url);
    if (npm) short = `npm:${npm[1]}@${npm[2]}/${npm[3]}`;
  }
  return line >= 0 ? `${short}:${line + 1}` : short;
}

function fileOf(url: string): string {
  return url === "" ? "(V8 / native)" : where(url, -1);
}

/**
 * Tables of where one isolate's time went. A sample's time is the gap to the
 * next sample (DevTools' convention); `(idle)` is time the thread waited.
 *
 * @param profile A parsed `.cpuprofile`.
 * @param options How many rows.
 * @returns Markdown text.
 */
export function summarizeCpuProfile(profile: CpuProfile, options: SummaryOptions = {}): string {
  const top = options.top ?? 25;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const keyOf = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const name = functionName || "(anonymous)";
    const at = where(url, lineNumber);
    return at ? `${name} ${at}` : name;
  };

  const self = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const us = profile.timeDeltas[i + 1] ?? 0;
    total += us;
    const key = keyOf(id);
    self.set(key, (self.get(key) ?? 0) + us);
    const name = byId.get(id)!.callFrame.functionName;
    if (name === IDLE) idle += us;
    else if (name === GC) gc += us;
    files.set(fileOf(byId.get(id)!.callFrame.url), (files.get(fileOf(byId.get(id)!.callFrame.url)) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      if (!byId.get(at)!.callFrame.url.startsWith(REPO)) continue;
      const k = keyOf(at);
      if (seen.has(k)) continue; // recursion counts once
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const ms = (us: number) => (us / 1000).toFixed(1);
  const pct = (us: number, of: number) => of > 0 ? `${((us / of) * 100).toFixed(1)}%` : "-";
  const rows = (map: Map<string, number>, n: number, skipIdle: boolean) =>
    [...map.entries()].filter(([k]) => !(skipIdle && k === IDLE)).sort((a, b) => b[1] - a[1]).slice(0, n);

  const out: string[] = [];
  out.push(
    `isolate: ${ms(total)} ms sampled (${profile.samples.length} samples); busy ${ms(busy)} ms ` +
      `(${pct(busy, total)}), idle ${pct(idle, total)}, GC ${pct(gc, total)}`,
  );
  out.push("", `top ${top} functions by self time (share of busy time)`, "", "| self ms | busy % | function |");
  out.push("|---|---|---|");
  for (const [k, us] of rows(self, top, true)) out.push(`| ${ms(us)} | ${pct(us, busy)} | ${k} |`);
  out.push("", "self time by file (share of busy time)", "", "| self ms | busy % | file |", "|---|---|---|");
  const fileRows = new Map([...files].map(([k, v]) => [k, k === "(V8 / native)" ? v - idle - gc : v]));
  for (const [k, us] of rows(fileRows, 12, false)) out.push(`| ${ms(us)} | ${pct(us, busy)} | ${k} |`);
  out.push("", "keycard functions by total time (self + callees, share of busy time)", "");
  out.push("| total ms | busy % | function |", "|---|---|---|");
  for (const [k, us] of rows(inclusive, 15, false)) out.push(`| ${ms(us)} | ${pct(us, busy)} | ${k} |`);
  return out.join("\n");
}
