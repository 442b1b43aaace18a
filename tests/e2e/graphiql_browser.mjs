// Drives the GraphiQL page in a real Chromium, offline, and reports what happened as JSON.
//
// Usage: node tests/e2e/graphiql_browser.mjs <base-url> <query> <request-id> [screenshot.png]
//
// Run by tests/e2e/test_graphiql_browser.py, which starts the server and judges the report; this
// script only observes. It never downloads a browser: it uses the system's /usr/bin/chromium (or
// $CHROMIUM), and every request to a host other than loopback is aborted and recorded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const [baseUrl, query, requestId, screenshot] = process.argv.slice(2);
if (!baseUrl || !query || !requestId) {
  console.error("usage: graphiql_browser.mjs <base-url> <query> <request-id> [screenshot.png]");
  process.exit(2);
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const isLoopback = (url) => {
  const { protocol, hostname } = new URL(url);
  // data: and blob: URLs never leave the browser.
  return protocol === "data:" || protocol === "blob:" || LOOPBACK.has(hostname);
};

const report = {
  blocked: [], // non-loopback URLs the page tried to reach
  requests: [], // every URL the page asked for
  graphqlPosts: [], // request ids the server echoed on POST /graphql
  consoleErrors: [],
  pageErrors: [],
  cspViolations: [],
  title: null,
  headersEditorVisible: false,
  response: null, // the result pane's text after running the query
  canaryBlocked: false, // the guard aborted a deliberate non-loopback request
};

const userDataDir = mkdtempSync(join(tmpdir(), "ordergraph-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
  });

  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    report.blocked.push(url);
    return route.abort("blockedbyclient");
  });
  await context.routeWebSocket(/.*/, (ws) => {
    if (isLoopback(ws.url().replace(/^ws/, "http"))) return ws.connectToServer();
    report.blocked.push(ws.url());
    return ws.close();
  });
  context.on("request", (request) => report.requests.push(request.url()));
  context.on("response", (response) => {
    const request = response.request();
    if (request.method() === "POST" && new URL(request.url()).pathname === "/graphql") {
      report.graphqlPosts.push(response.headers()["x-request-id"] ?? null);
    }
  });
  // Playwright's init scripts are exempt from the page's CSP, so this listener sees every
  // violation the page itself commits.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations = window.__cspViolations || [];
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.pageErrors.push(String(error)));

  await page.goto(`${baseUrl}/graphql`, { waitUntil: "load" });
  report.title = await page.title();

  // GraphiQL has started once its query editor (CodeMirror) exists and the schema has loaded.
  const queryEditor = page.locator(".graphiql-query-editor .CodeMirror").first();
  await queryEditor.waitFor({ state: "visible", timeout: 30_000 });

  // Replace the query by typing it: select all, then insert the text like a paste would.
  await queryEditor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(query);

  // The headers editor is open by default; put a request id in it to prove headers are sent.
  const headersEditor = page.locator(
    'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror',
  );
  report.headersEditorVisible = await headersEditor.isVisible();
  if (report.headersEditorVisible) {
    await headersEditor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(JSON.stringify({ "X-Request-ID": requestId }));
  }

  await page.locator("button.graphiql-execute-button").click();
  await page.waitForFunction(
    () => {
      const pane = document.querySelector(".graphiql-response .CodeMirror");
      return pane && pane.CodeMirror && pane.CodeMirror.getValue().includes('"data"');
    },
    null,
    { timeout: 30_000 },
  );
  report.response = await page.evaluate(
    () => document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue(),
  );
  report.cspViolations = await page.evaluate(() => window.__cspViolations || []);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // Prove the guard works: a deliberate request to a non-loopback address (TEST-NET-1, which
  // routes nowhere) must be aborted and recorded. It is counted apart from the page's requests.
  const pageBlocked = report.blocked.splice(0);
  const canary = await context.newPage();
  const canaryUrl = "http://192.0.2.1/ordergraph-canary";
  await canary.goto(canaryUrl).catch(() => null);
  report.canaryBlocked = report.blocked.includes(canaryUrl);
  report.requests = report.requests.filter((url) => url !== canaryUrl);
  report.blocked = pageBlocked;
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
