// Browser tests of karya's web UI. A real `karya serve` runs on a temporary SQLite database;
// users are added with `karya user add --password-stdin`, the rest of the firm through the
// API; Debian's chromium (headless) then walks the work of every role: a client submits an
// item, a worker takes it with Get next and submits each step, a reviewer passes each
// submission, and the client sees the item delivered with its trail, downloads the
// deliverable and reads the SLA report. Every main page must render without console errors.
// Screenshots of the main pages are written to docs/screenshots/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT, SHOTS, PASSWORD, STARTUP_MS, binary, freePort, runKarya, addUser as addUserIn, callApi } from "./harness.mjs";

/// Steps of the IT service desk pack a worker goes through (each is reviewed: new worker).
const STEPS_MAX = 4;
/// How long the processor job runner may take to take up the first step after intake.
const FIRST_STEP_MS = 15_000;

let dir;
let server;
let base;
let browser;
let serverLog = "";
const ids = {};

const karya = (args, input) => runKarya(dir, args, input);
const addUser = (...args) => addUserIn(dir, ...args);
const api = (method, url, body) => callApi(base, ids.adminToken, method, url, body);

before(async () => {
  if (!process.env.KARYA_BIN) {
    execFileSync("cargo", ["build", "-p", "karya", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  }
  dir = mkdtempSync(path.join(tmpdir(), "karya-browser-"));
  const db = `sqlite://${dir}/karya.db`;
  const admin = karya(
    ["user", "add", "--db", db, "--email", "ada@firm.example", "--name", "Ada Admin", "--role", "admin", "--password-stdin", "--token"],
    `${PASSWORD}\n`,
  );
  ids.adminToken = admin.match(/api token: (\S+)/)[1];

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(binary, ["serve", "--db", db, "--bind", `127.0.0.1:${port}`], {
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

  // The firm: a client with an IT service desk engagement on a round-the-clock calendar.
  const client = await api("POST", "/api/v1/clients", { name: "Northwind Retail", currency: "USD" });
  ids.client = client.id;
  const engagement = await api("POST", `/api/v1/clients/${client.id}/engagements`, {
    name: "Employee IT service desk",
    service_line: "it_helpdesk",
  });
  ids.engagement = engagement.id;
  const calendar = crypto.randomUUID();
  const day = [["00:00", "23:59"]];
  await api("PUT", `/api/v1/clients/${client.id}/calendars/${calendar}`, {
    name: "Round the clock",
    time_zone: "UTC",
    week: [day, day, day, day, day, day, day],
    holidays: [],
  });
  await api("PUT", `/api/v1/clients/${client.id}/engagements/${engagement.id}/sla`, {
    calendar_id: calendar,
    terms: [{ priority: "normal", first_response_minutes: 60, resolution_minutes: 480, on_time_target_bp: 9500 }],
    pricing: { kind: "per_item", rates: [{ priority: "normal", price_minor: 2500 }] },
    credit: { per_point_bp: 500, cap_bp: 2000 },
    reason: "signed statement of work",
  });
  // The QA policy as it comes: a new worker's work is always sampled for review.
  const policy = await api("GET", `/api/v1/clients/${client.id}/engagements/${engagement.id}/qa-policy`);
  assert.ok(policy.min_checks >= 1, JSON.stringify(policy));

  // Senior enough, qualified and skilled for both of the pack's L1 and L2 steps.
  const maker = await api("POST", "/api/v1/workers", { name: "Wendy Mehta", designation: "senior_analyst" });
  const reviewer = await api("POST", "/api/v1/workers", { name: "Rita Fernandes", designation: "senior_analyst" });
  const lead = await api("POST", "/api/v1/workers", { name: "Lena Okafor", designation: "team_lead" });
  const week = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, start: "00:00", minutes: 1440 }));
  for (const worker of [maker, reviewer, lead]) {
    await api("PUT", `/api/v1/workers/${worker.id}/profile`, {
      languages: ["en"],
      time_zone: "UTC",
      shifts: week,
      capacity_units: 4,
    });
    await api("POST", `/api/v1/workers/${worker.id}/presence`, { presence: "available" });
  }
  await api("POST", `/api/v1/workers/${maker.id}/qualifications`, {
    kind: "itil",
    issuer: "axelos",
    valid_from: "2020-01-01T00:00:00Z",
  });
  for (const [skill, level] of [
    ["windows_support", 5],
    ["m365_administration", 4],
    ["active_directory", 6],
    ["endpoint_management", 5],
  ]) {
    await api("PUT", `/api/v1/workers/${maker.id}/skills/${skill}`, { level });
  }

  addUser(db, "carol@northwind.example", "Carol Client", "client_user", ["--client", client.id]);
  addUser(db, "wendy@firm.example", "Wendy Mehta", "worker", ["--worker", maker.id]);
  addUser(db, "rita@firm.example", "Rita Fernandes", "reviewer", ["--worker", reviewer.id]);
  addUser(db, "lena@firm.example", "Lena Okafor", "lead", ["--worker", lead.id]);
  addUser(db, "omar@firm.example", "Omar Manager", "manager");
  addUser(db, "aud@firm.example", "Aditi Auditor", "auditor");

  mkdirSync(SHOTS, { recursive: true });
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

/// A signed-in page for one user, failing the test on any console error or page error.
async function signIn(email) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${base}/login`);
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/login")), page.click("button[type=submit]")]);
  page.errors = errors;
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

/// Closes a user's page; `refused` is how many form posts were meant to be refused (the
/// browser logs each 422 answer as a console error), and nothing else may have been logged.
async function done(page, refused = 0) {
  const is422 = (text) => text.includes("status of 422");
  assert.equal(page.errors.filter(is422).length, refused, `refused form posts on ${page.url()}`);
  assert.deepEqual(page.errors.filter((text) => !is422(text)), [], `console errors on ${page.url()}`);
  await page.context().close();
}

test("sign-in refuses a wrong password and sends anonymous visitors to it", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/ui/inbox`);
  assert.equal(new URL(page.url()).pathname, "/login");
  await page.fill("#email", "wendy@firm.example");
  await page.fill("#password", "not the password at all");
  await page.click("button[type=submit]");
  await page.getByText("Wrong email or password.").waitFor();
  await shot(page, "login");
  await context.close();
});

test("a client's item goes through work and review to delivery", async () => {
  // The client submits an item with the form generated from the pack's input schema.
  const client = await signIn("carol@northwind.example");
  assert.match(client.url(), /\/ui\/clients\/.+\/items$/);
  await client.getByText("No work items yet").waitFor();
  await client.click("#submit-work");
  await client.fill("#intake-form-title", "VPN drops every few minutes");
  // A bad ticket number is refused under its field, and nothing is stored.
  await client.fill("#intake-form-f\\.ticket_number", "12345");
  await client.selectOption("#intake-form-f\\.ticket_type", "incident");
  await client.selectOption("#intake-form-f\\.impact", "individual");
  await client.selectOption("#intake-form-f\\.urgency", "high");
  await client.selectOption("#intake-form-f\\.category", "vpn");
  await client.fill("#intake-form-f\\.short_description", "VPN disconnects on home Wi-Fi");
  await client.fill(
    "#intake-form-f\\.requester",
    JSON.stringify({ employee_id: "E10442", email: "sam.lee@northwind.example", department: "Finance" }),
  );
  await client.click("#intake-form button[type=submit]");
  await client.locator(".field.invalid #intake-form-f\\.ticket_number").waitFor();
  await shot(client, "client-submit-validation");
  await client.fill("#intake-form-f\\.ticket_number", "INC0012345");
  await Promise.all([client.waitForURL(/\/items\/[0-9a-f-]+$/), client.click("#intake-form button[type=submit]")]);
  await client.getByText("VPN drops every few minutes").first().waitFor();
  ids.itemUrl = client.url();
  ids.item = ids.itemUrl.split("/").pop();
  await done(client, 1);
  // The pack's first step, triage, is a processor's job; the job runner takes it up (and hands
  // it to a person when its processor is not installed) before the first task exists.
  const tasksUrl = `/api/v1/clients/${ids.client}/work-items/${ids.item}/tasks`;
  const started = Date.now();
  while ((await api("GET", tasksUrl)).items.length === 0) {
    assert.ok(Date.now() - started < FIRST_STEP_MS, "no task after the first step's job");
    await new Promise((r) => setTimeout(r, 200));
  }

  // The worker takes each step with Get next and submits; the reviewer passes each one.
  const worker = await signIn("wendy@firm.example");
  const reviewer = await signIn("rita@firm.example");
  let steps = 0;
  for (; steps < STEPS_MAX; steps++) {
    await worker.goto(`${base}/ui/inbox`);
    await worker.click("#get-next");
    const moved = await Promise.race([
      worker.waitForURL(/\/tasks\/[0-9a-f-]+$/).then(() => true),
      worker.locator("#flash .notice").waitFor().then(() => false),
    ]);
    if (!moved) break;
    if (steps === 0) await shot(worker, "worker-task");
    // Submitting without the required fields shows the pack's validation messages.
    await worker.click("#output-form button[type=submit]");
    await worker.locator("#output-form .field.invalid").first().waitFor();
    await worker.fill("#output-form-f\\.ticket_number", "INC0012345");
    await worker.selectOption("#output-form-f\\.state", "resolved");
    await worker.selectOption("#output-form-f\\.resolution_code", "solved_remotely");
    await worker.fill("#output-form-f\\.resolution_notes", "Re-issued the VPN profile; stable for 30 minutes.");
    await Promise.all([worker.waitForURL(/\/ui\/inbox$/), worker.click("#output-form button[type=submit]")]);
    if (steps === 0) await shot(worker, "worker-inbox");

    await reviewer.goto(`${base}/ui/reviews`);
    if (steps === 0) await shot(reviewer, "review-queue");
    await reviewer.click("#review-queue tbody tr:first-child a");
    await reviewer.getByText("Maker's output").waitFor();
    if (steps === 0) await shot(reviewer, "review");
    await Promise.all([
      reviewer.waitForURL(/\/ui\/reviews$/),
      reviewer.click("#review-form button[value=pass]"),
    ]);
  }
  // Every task of the item was worked: the two human steps, and triage when its processor is
  // not installed, in which case its job failed visibly.
  const tasks = (await api("GET", tasksUrl)).items.map((task) => task.step);
  assert.equal(steps, tasks.length, `worked ${steps} steps of ${tasks}`);
  assert.deepEqual(tasks.filter((step) => step !== "triage"), ["l1_resolution", "l2_resolution"]);
  const trail = (await api("GET", `/api/v1/clients/${ids.client}/work-items/${ids.item}/events`)).items;
  if (tasks.includes("triage")) {
    const events = await api("GET", `/api/v1/clients/${ids.client}/events?limit=500`);
    assert.ok(events.items.some((event) => event.kind === "job.failed"), "the triage job failed visibly");
  }
  assert.ok(trail.some((event) => event.kind === "work_item.transitioned"));
  await worker.goto(`${base}/ui/quality`);
  await worker.getByText("100.0 %").first().waitFor();
  await shot(worker, "worker-quality");
  await done(worker, steps);
  await done(reviewer);

  // The client sees the item delivered with its trail, downloads the deliverable, and reads
  // the SLA report.
  const back = await signIn("carol@northwind.example");
  await back.goto(ids.itemUrl);
  await back.locator(".pill", { hasText: "delivered" }).first().waitFor();
  await back.getByText("task sampled").first().waitFor();
  await shot(back, "client-item");
  const [download] = await Promise.all([back.waitForEvent("download"), back.click("#download-deliverable")]);
  const deliverable = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(deliverable.output.ticket_number, "INC0012345");
  assert.equal(deliverable.output.resolution_code, "solved_remotely");
  await back.click("nav >> text=SLA & accuracy");
  await back.locator("figure.chart svg").first().waitFor();
  await back.getByText("100.0 %").first().waitFor();
  await shot(back, "client-report");
  await back.click("nav >> text=Work items");
  await back.locator("#items .pill", { hasText: "delivered" }).waitFor();
  await shot(back, "client-items");
  await back.click("nav >> text=Policies");
  await back.locator("h1", { hasText: "Policies" }).waitFor();
  await done(back);
});

test("every role's main pages render without console errors", async () => {
  // An urgent item left open, so the queues have something to show.
  const client = await signIn("carol@northwind.example");
  await client.click("nav >> text=Submit work");
  await client.fill("#intake-form-title", "New starter needs a laptop and accounts");
  await client.selectOption("#intake-form-priority", "urgent");
  await client.fill("#intake-form-f\\.ticket_number", "REQ0004711");
  await client.selectOption("#intake-form-f\\.ticket_type", "service_request");
  await client.selectOption("#intake-form-f\\.impact", "individual");
  await client.selectOption("#intake-form-f\\.urgency", "medium");
  await client.fill("#intake-form-f\\.short_description", "Laptop, email and VPN for a new analyst");
  await client.fill("#intake-form-f\\.requester", JSON.stringify({ employee_id: "E10519", email: "li.wei@northwind.example" }));
  await Promise.all([client.waitForURL(/\/items\/[0-9a-f-]+$/), client.click("#intake-form button[type=submit]")]);
  await done(client);

  const lead = await signIn("lena@firm.example");
  assert.match(lead.url(), /\/ui\/board$/);
  // The board is refreshed by server-sent events.
  await lead.locator(".live[data-refreshed] #board").waitFor();
  await shot(lead, "lead-board");
  for (const [nav, name] of [
    ["SLA risk", "lead-sla-risk"],
    ["Workforce", "lead-workforce"],
    ["QA board", "lead-qa"],
  ]) {
    await lead.click(`nav >> text=${nav}`);
    await lead.locator("h1", { hasText: nav }).waitFor();
    await shot(lead, name);
  }
  await lead.goto(ids.itemUrl);
  await lead.click("#tasks tbody tr:first-child a");
  await lead.locator("h1", { hasText: "Why this task went where it went" }).waitFor();
  await lead.locator("pre.code").first().waitFor();
  await shot(lead, "lead-explanation");
  await done(lead);

  const manager = await signIn("omar@firm.example");
  await manager.click("nav >> text=Admin: clients");
  await manager.getByText("Northwind Retail").waitFor();
  await done(manager);

  const admin = await signIn("ada@firm.example");
  await admin.click("nav >> text=Admin: users");
  await admin.getByText("carol@northwind.example").waitFor();
  await shot(admin, "admin-users");
  await admin.click("nav >> text=API tokens");
  await admin.fill("#token-form-name", "nightly export");
  await admin.click("#token-form button[type=submit]");
  await admin.getByText(/Copy it now; it is not shown again: kt_/).waitFor();
  await done(admin);

  const auditor = await signIn("aud@firm.example");
  await auditor.getByRole("link", { name: "Event trail" }).click();
  await auditor.getByText(/Chain intact: \d+ events verified/).waitFor();
  await shot(auditor, "auditor-trail");
  await done(auditor);
});
