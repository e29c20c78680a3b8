// Browser tests of the demo firm: `karya demo --days 2 --no-serve` builds a database, a real
// `karya serve` serves it, and Debian's chromium (headless) signs in with each role's printed
// demo login and visits every page of that role's navigation (and the first item, task or
// review a page links to), failing on an error status, an error page or a console error.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT, STARTUP_MS, binary, freePort } from "./harness.mjs";

/// How long building the two-day demo may take (a debug build on a slow machine).
const BUILD_MS = 600_000;
const ROLES = ["admin", "manager", "lead", "worker", "reviewer", "client_admin", "client_user", "auditor"];

let dir;
let server;
let base;
let browser;
let serverLog = "";
/// role → { email, password }, as `karya demo` printed them.
const logins = {};

before(async () => {
  if (!process.env.KARYA_BIN) {
    execFileSync("cargo", ["build", "-p", "karya", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  }
  dir = mkdtempSync(path.join(tmpdir(), "karya-demo-browser-"));
  const out = execFileSync(binary, ["demo", "--days", "2", "--no-serve", "--data-dir", dir], {
    cwd: dir,
    timeout: BUILD_MS,
    env: { ...process.env, KARYA_LOG: "warn" },
  }).toString();
  // The sign-in table: role, email, password, note.
  for (const line of out.split("\n")) {
    const [role, email, password] = line.trim().split(/\s+/);
    if (ROLES.includes(role) && email?.includes("@")) logins[role] = { email, password };
  }
  assert.deepEqual(Object.keys(logins).sort(), [...ROLES].sort(), `one login per role:\n${out}`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(binary, ["serve", "--db", `sqlite://${dir}/karya.db`, "--bind", `127.0.0.1:${port}`], {
    cwd: dir,
    env: { ...process.env, KARYA_LOG: "warn" },
  });
  server.stdout.on("data", (d) => (serverLog += d));
  server.stderr.on("data", (d) => (serverLog += d));
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    assert.ok(Date.now() - started < STARTUP_MS, `server did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/// Visits `url` and checks it rendered: a success status, the page's own layout, no console
/// or page errors so far.
async function visit(page, url) {
  const response = await page.goto(url.startsWith("http") ? url : `${base}${url}`);
  assert.ok(response, `no response for ${url}`);
  assert.ok(response.status() < 400, `${url} answered ${response.status()}`);
  await page.locator("nav.side").waitFor();
  assert.deepEqual(page.errors, [], `console errors on ${url}`);
}

for (const role of ROLES) {
  test(`the demo's ${role} signs in and every page of the navigation renders`, async () => {
    const { email, password } = logins[role];
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.errors = [];
    // Failed loads are reported by URL; the browser's own request for a site icon (the UI
    // declares none) is not a page's fault.
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (response.status() >= 400 && url.pathname !== "/favicon.ico") {
        page.errors.push(`${response.status()} ${url.pathname}`);
      }
    });
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        page.errors.push(message.text());
      }
    });
    page.on("pageerror", (error) => page.errors.push(String(error)));
    await page.goto(`${base}/login`);
    await page.fill("#email", email);
    await page.fill("#password", password);
    await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/login")), page.click("button[type=submit]")]);
    await page.locator("nav.side").waitFor();
    const links = await page.locator("nav.side ul a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    assert.ok(links.length >= 2, `${role} has a navigation: ${links}`);
    const details = [];
    for (const link of links) {
      await visit(page, link);
      // The first row a page links to (an item, a task, a review, a client), if any.
      const first = await page
        .locator("main table tbody a")
        .first()
        .getAttribute("href", { timeout: 500 })
        .catch(() => null);
      if (first && first.startsWith("/ui/") && !details.includes(first)) details.push(first);
    }
    for (const link of details.slice(0, 6)) {
      await visit(page, link);
    }
    await context.close();
  });
}
