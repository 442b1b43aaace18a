// A single-page app on another origin calls the API from a real Chromium: fetch (with a
// preflight) to /graphql and the OAuth endpoints, and a graphql-transport-ws WebSocket.
//
// Usage: node tests/e2e/cors_browser.mjs <page-url> <api-base-url> <api-key> <client-id> <secret>
//
// Run by tests/e2e/test_cors_browser.py, which serves the page, starts the API and judges the
// JSON report printed here. It never downloads a browser: it uses /usr/bin/chromium (or $CHROMIUM).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const [pageUrl, apiBase, apiKey, clientId, clientSecret] = process.argv.slice(2);
if (!pageUrl || !apiBase || !apiKey || !clientId || !clientSecret) {
  console.error("usage: cors_browser.mjs <page-url> <api-base-url> <api-key> <client-id> <secret>");
  process.exit(2);
}

const report = { origin: null, error: null };

// Everything below runs inside the page, on its origin.
async function exercise({ apiBase, apiKey, clientId, clientSecret }) {
  const result = { origin: window.location.origin };
  const attempt = async (name, run) => {
    try {
      result[name] = await run();
    } catch (error) {
      result[name] = { failed: String(error) };
    }
  };
  await attempt("graphql", async () => {
    const response = await fetch(`${apiBase}/graphql`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ query: "{ me { email } }" }),
    });
    return {
      status: response.status,
      body: await response.json(),
      requestId: response.headers.get("X-Request-ID"),
    };
  });
  const basic = `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)}`;
  const form = (fields) => ({
    method: "POST",
    headers: { Authorization: basic, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  let token = null;
  await attempt("token", async () => {
    const response = await fetch(`${apiBase}/oauth/token`, form({ grant_type: "client_credentials" }));
    const body = await response.json();
    token = body.access_token || null;
    return { status: response.status, tokenType: body.token_type || null };
  });
  await attempt("introspect", async () => {
    const response = await fetch(`${apiBase}/oauth/introspect`, form({ token: token || "x" }));
    return { status: response.status, active: (await response.json()).active };
  });
  await attempt("revoke", async () => {
    const response = await fetch(`${apiBase}/oauth/revoke`, form({ token: token || "x" }));
    return { status: response.status };
  });
  await attempt("websocket", () =>
    new Promise((resolve) => {
      const seen = [];
      const socket = new WebSocket(`${apiBase.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
      const timer = setTimeout(() => resolve({ seen, timedOut: true }), 15000);
      socket.onopen = () =>
        socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${apiKey}` } }));
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        seen.push(message.type);
        if (message.type === "connection_ack") {
          socket.send(JSON.stringify({ type: "subscribe", id: "1", payload: { query: "{ me { email } }" } }));
        } else if (message.type === "next") {
          result.websocketData = message.payload;
        } else if (message.type === "complete") {
          socket.close(1000);
        }
      };
      socket.onerror = () => seen.push("error");
      socket.onclose = (event) => {
        clearTimeout(timer);
        resolve({ seen, closeCode: event.code });
      };
    }),
  );
  return result;
}

const userDataDir = mkdtempSync(join(tmpdir(), "ordergraph-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = await context.newPage();
  await page.goto(pageUrl);
  Object.assign(report, await page.evaluate(exercise, { apiBase, apiKey, clientId, clientSecret }));
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
