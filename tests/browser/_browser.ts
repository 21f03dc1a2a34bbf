/**
 * The browser of the console suite: Debian's Chromium driven by puppeteer-core.
 *
 * `.ci/run` installs the `chromium` package, and with `CI=true` the suite must run: a missing browser is a failure
 * there. Elsewhere, without `/usr/bin/chromium` (or without the permission to run it), the reason is printed once
 * and the tests are ignored by name, as `tests/_postgres.ts` does for PostgreSQL.
 *
 * Each browser gets a user-data-dir of its own in a temp dir, removed on dispose; it runs headless, and with
 * `--no-sandbox` when this process is root (Chromium refuses to start its sandbox as root).
 *
 * @module
 */
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "puppeteer-core";

/** Debian's Chromium: the only browser the suite runs. */
export const CHROMIUM = "/usr/bin/chromium";

/** Where the suite saves its screenshots (committed; the README shows them). */
export const SCREENSHOTS: string = new URL("./screenshots/", import.meta.url).pathname;

/** Bounds of the suite's waits, in milliseconds. */
export const BROWSER_BOUND = { launch: 60_000, wait: 15_000, close: 15_000 } as const;

/** Whether the browser tests run here, and why not. */
export interface BrowserAvailability {
  /** True when the tests are to be ignored. */
  ignore: boolean;
  /** What to add to a test's name: `""`, or `" (ignored: <reason>)"`. */
  suffix: string;
}

/**
 * Decides whether the browser tests run: they do when {@linkcode CHROMIUM} exists and this process may run it.
 * Otherwise the reason is printed and the tests are ignored, except under `CI=true`, where it is an error.
 *
 * @returns Whether to ignore, and the suffix for the test names.
 * @throws {Error} With `CI=true`, when Chromium is missing or may not be run.
 * @example Ignore the tests by name when there is no Chromium
 * ```ts ignore
 * const { ignore, suffix } = await browserAvailability();
 * Deno.test({ name: `the console signs in${suffix}`, ignore, fn: async () => {} });
 * ```
 */
export async function browserAvailability(): Promise<BrowserAvailability> {
  let reason: string | undefined;
  try {
    await Deno.stat(CHROMIUM);
    const run = await Deno.permissions.query({ name: "run", command: CHROMIUM });
    if (run.state !== "granted") reason = `this process may not run ${CHROMIUM} (grant --allow-run=${CHROMIUM})`;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    reason = `${CHROMIUM} is missing (apt-get install chromium)`;
  }
  if (reason === undefined) return { ignore: false, suffix: "" };
  if (Deno.env.get("CI") === "true") throw new Error(`Browser tests must run with CI=true, but ${reason}`);
  console.warn(`Browser tests ignored: ${reason}`);
  return { ignore: true, suffix: " (ignored: no Chromium)" };
}

/**
 * What a page logged that a console page must never log: errors, uncaught exceptions, CSP violations.
 *
 * Two kinds of console error are left out, as they are not faults of the page: Chromium's "Failed to load resource"
 * for a page navigated to that answered an error status on purpose (a 401 sign-in page, a 422 report: the tests
 * assert those statuses), and for `/favicon.ico` (Chromium asks for it at a time of its own choosing; the suite
 * checks the icon once, deterministically).
 */
export class PageProblems {
  readonly #entries: { text: string; url: string }[] = [];
  readonly #errorPages = new Set<string>();

  /** Records a problem; `url` is where it happened, when known. */
  add(text: string, url = ""): void {
    this.#entries.push({ text, url });
  }

  /** Records a navigation that answered an error status. */
  errorPage(url: string): void {
    this.#errorPages.add(url);
  }

  /** The problems so far, left out the two kinds above; the list is emptied. */
  take(): string[] {
    return this.#entries.splice(0).filter(({ text, url }) => {
      if (!text.startsWith("console.error: Failed to load resource")) return true;
      return !this.#errorPages.has(url) && !url.endsWith("/favicon.ico");
    }).map(({ text, url }) => url ? `${text} (${url})` : text);
  }
}

/** A page of a {@linkcode Chromium}, with what it logged wrongly. */
export interface WatchedPage {
  /** The puppeteer page. */
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations, as they happen. */
  problems: PageProblems;
}

/** Options of {@linkcode Chromium.launch}. */
export interface ChromiumOptions {
  /** Viewport of new pages. @default {{ width: 1280, height: 800 }} */
  viewport?: { width: number; height: number };
}

/**
 * A headless Chromium with a user-data-dir of its own; dispose closes it and removes the dir.
 *
 * @example Open a page and close everything after
 * ```ts ignore
 * await using chromium = await Chromium.launch();
 * const { page, problems } = await chromium.newPage();
 * await page.goto("http://127.0.0.1:8080/console/");
 * ```
 */
export class Chromium implements AsyncDisposable {
  /** The puppeteer browser. */
  readonly browser: Browser;
  readonly #dir: string;
  readonly #viewport: { width: number; height: number };

  private constructor(browser: Browser, dir: string, viewport: { width: number; height: number }) {
    this.browser = browser;
    this.#dir = dir;
    this.#viewport = viewport;
  }

  /**
   * Launches {@linkcode CHROMIUM}, headless, bounded by {@linkcode BROWSER_BOUND}.launch.
   *
   * @param options The viewport of new pages.
   * @returns The browser; dispose it.
   * @throws {Error} When Chromium does not start in time (its temp dir is removed first).
   * @example Launch
   * ```ts ignore
   * await using chromium = await Chromium.launch({ viewport: { width: 390, height: 844 } });
   * ```
   */
  static async launch(options: ChromiumOptions = {}): Promise<Chromium> {
    const dir = await Deno.makeTempDir({ prefix: "keycard-chromium-" });
    try {
      const args = ["--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"];
      if (Deno.uid() === 0) args.push("--no-sandbox");
      // Imported here: its modules read environment variables as they load, so a run that ignores the suite
      // (no Chromium) needs no permission for them.
      const { default: puppeteer } = await import("puppeteer-core");
      const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        userDataDir: join(dir, "profile"),
        args,
        // Given explicitly: puppeteer would otherwise copy the whole environment, which the test task may not read.
        env: { HOME: dir, PATH: "/usr/bin:/bin" },
        timeout: BROWSER_BOUND.launch,
        protocolTimeout: BROWSER_BOUND.launch,
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
      return new Chromium(browser, dir, options.viewport ?? { width: 1280, height: 800 });
    } catch (error) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  /**
   * Opens a page (in `context` when given: an incognito context keeps its cookies apart) whose console errors,
   * uncaught exceptions and CSP violations are collected, with its waits bounded by {@linkcode BROWSER_BOUND}.wait.
   *
   * @param context A browser context of this browser. @default {the default context}
   * @returns The page and its problems.
   * @example A page of its own cookie jar
   * ```ts ignore
   * const { page } = await chromium.newPage(await chromium.browser.createBrowserContext());
   * ```
   */
  async newPage(context?: BrowserContext): Promise<WatchedPage> {
    const page = await (context ?? this.browser).newPage();
    page.setDefaultTimeout(BROWSER_BOUND.wait);
    page.setDefaultNavigationTimeout(BROWSER_BOUND.wait);
    await page.setViewport(this.#viewport);
    const problems = new PageProblems();
    page.on("console", (message) => {
      if (message.type() === "error") problems.add(`console.error: ${message.text()}`, message.location().url);
    });
    page.on("response", (response) => {
      if (response.request().isNavigationRequest() && response.status() >= 400) problems.errorPage(response.url());
    });
    page.on("pageerror", (error) => problems.add(`pageerror: ${String(error)}`));
    // Chromium logs CSP violations as console errors too; the event also catches those it does not (reports).
    await page.exposeFunction("__keycardCspViolation", (text: string) => problems.add(`csp: ${text}`));
    // A string: the test task type-checks without the DOM library, and this runs in the page.
    await page.evaluateOnNewDocument(`document.addEventListener("securitypolicyviolation", (event) => {
      __keycardCspViolation(event.violatedDirective + " blocked " + event.blockedURI + " at " + event.sourceFile +
        ":" + event.lineNumber);
    });`);
    return { page, problems };
  }

  /** Closes the browser (bounded; killed past the bound) and removes its user-data-dir. */
  async [Symbol.asyncDispose](): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.browser.close(),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.browser.process()?.kill("SIGKILL");
            resolve();
          }, BROWSER_BOUND.close);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Saves a PNG of the page's viewport as `tests/browser/screenshots/<name>.png`, scrolled to `options.scrollTo` first
 * when given.
 *
 * @param page The page.
 * @param name The file name without `.png`: lower case letters, digits and `-`.
 * @param options `scrollTo`: a selector of what the picture is about. @default {{} (the top of the page)}
 * @returns The path written.
 * @throws {TypeError} When `name` is not such a name.
 * @example After signing in
 * ```ts ignore
 * await screenshot(page, "plugins-1280");
 * ```
 */
export async function screenshot(page: Page, name: string, options: { scrollTo?: string } = {}): Promise<string> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new TypeError(`Cannot name a screenshot "${name}": use a-z, 0-9 and -`);
  if (options.scrollTo) await page.$eval(options.scrollTo, (element) => element.scrollIntoView({ block: "start" }));
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: path as `${string}.png`, type: "png" });
  return path;
}

/**
 * Polls `condition` every 25 ms until it holds, failing after `ms`: for what the test process sees only through
 * puppeteer's events (a page's problems arrive over the protocol after the page has run).
 *
 * @param condition What must become true.
 * @param what What is waited for, for the failure message.
 * @param ms The bound. @default {BROWSER_BOUND.wait}
 * @throws {Error} When `condition` does not hold within `ms`.
 * @example Wait for three problems
 * ```ts ignore
 * await waitUntil(() => seen.length >= 3, "three problems");
 * ```
 */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  ms: number = BROWSER_BOUND.wait,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
