// Browser tests of the web UI's pages by role. A real `karya serve` runs on a temporary SQLite
// database with a site, a client on a round-the-clock calendar and users of every role; Debian's
// chromium (headless) then: accepts an offer the router made in a worker's inbox, reassigns the
// at-risk task with one click from the SLA risk list, uploads a good and a bad bulk file (the
// bad one shows its row report and imports nothing), toggles the worker's presence, and visits
// every page in every role's navigation, each rendering its heading without an error page or a
// console error. Screenshots of the new pages are written to docs/screenshots/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT, SHOTS, PASSWORD, STARTUP_MS, binary, freePort, runKarya, addUser as addUserIn, callApi } from "./harness.mjs";

/// How long the router (a loop in `karya serve`) may take to offer a new task.
const OFFER_MS = 40_000;

let dir;
let server;
let base;
let browser;
let serverLog = "";
const ids = {};

const karya = (args, input) => runKarya(dir, args, input);
const addUser = (...args) => addUserIn(dir, ...args);
const api = (method, url, body) => callApi(base, ids.adminToken, method, url, body);

/// A worker on shift round the clock in the site's zone; offline until told otherwise.
async function worker(name, designation) {
  const created = await api("POST", "/api/v1/workers", { name, designation, site_id: ids.site });
  const week = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, start: "00:00", minutes: 1440 }));
  await api("PUT", `/api/v1/workers/${created.id}/profile`, {
    languages: ["en"],
    time_zone: "Asia/Kolkata",
    shifts: week,
    capacity_units: 4,
  });
  // Qualified and skilled for the IT service desk pack's L1 step.
  await api("POST", `/api/v1/workers/${created.id}/qualifications`, {
    kind: "itil",
    issuer: "axelos",
    valid_from: "2020-01-01T00:00:00Z",
  });
  for (const [skill, level] of [
    ["windows_support", 5],
    ["m365_administration", 4],
  ]) {
    await api("PUT", `/api/v1/workers/${created.id}/skills/${skill}`, { level });
  }
  return created.id;
}

before(async () => {
  if (!process.env.KARYA_BIN) {
    execFileSync("cargo", ["build", "-p", "karya", "--quiet"], { cwd: ROOT, stdio: "inherit" });
  }
  dir = mkdtempSync(path.join(tmpdir(), "karya-pages-"));
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

  // The firm: a site in Pune, a client with an IT service desk engagement whose items are due
  // two hours after they arrive, on a round-the-clock calendar (so a new item is at SLA risk).
  ids.site = (await api("POST", "/api/v1/sites", { name: "Pune", time_zone: "Asia/Kolkata", country: "India" })).id;
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
    holidays: ["2026-12-25"],
  });
  await api("PUT", `/api/v1/clients/${client.id}/engagements/${engagement.id}/sla`, {
    calendar_id: calendar,
    terms: ["low", "normal", "high", "urgent"].map((priority) => ({
      priority,
      first_response_minutes: 30,
      resolution_minutes: 120,
      on_time_target_bp: 9500,
    })),
    pricing: { kind: "per_item", rates: [{ priority: "normal", price_minor: 2500 }] },
    reason: "signed statement of work",
  });

  ids.wendy = await worker("Wendy Mehta", "analyst");
  ids.otto = await worker("Otto Lindqvist", "analyst");
  const reviewer = await worker("Rita Fernandes", "senior_analyst");
  const lead = await worker("Lena Okafor", "team_lead");

  addUser(db, "carol@northwind.example", "Carol Client", "client_user", ["--client", client.id]);
  addUser(db, "cora@northwind.example", "Cora Client-Admin", "client_admin", ["--client", client.id]);
  addUser(db, "wendy@firm.example", "Wendy Mehta", "worker", ["--worker", ids.wendy]);
  addUser(db, "rita@firm.example", "Rita Fernandes", "reviewer", ["--worker", reviewer]);
  addUser(db, "lena@firm.example", "Lena Okafor", "lead", ["--worker", lead]);
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

/// A signed-in page for one user, collecting console errors and page errors.
async function signIn(email) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
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

/// Closes a user's page; `refused` is how many requests were meant to be refused with 422 (the
/// browser logs each as a console error), and nothing else may have been logged.
async function done(page, refused = 0) {
  const is422 = (text) => text.includes("status of 422");
  assert.equal(page.errors.filter(is422).length, refused, `refused requests on ${page.url()}`);
  assert.deepEqual(page.errors.filter((text) => !is422(text)), [], `console errors on ${page.url()}`);
  await page.context().close();
}

test("a worker accepts the router's offer from the inbox", async () => {
  // An item with a task ready for a person; Wendy is the only worker available.
  const item = await api("POST", `/api/v1/clients/${ids.client}/work-items`, {
    engagement_id: ids.engagement,
    title: "Printer on floor 3 jams every page",
    input: {
      ticket_number: "INC0020417",
      ticket_type: "incident",
      impact: "individual",
      urgency: "medium",
      short_description: "Jams since the toner change",
      requester: { employee_id: "E10877", email: "priya.nair@northwind.example", department: "Facilities" },
    },
  });
  ids.item = item.id;
  // The pack's first step (triage) is a processor's job; its completion opens the L1 task.
  await api("POST", `/api/v1/workers/${ids.wendy}/presence`, { presence: "available" });

  const wendy = await signIn("wendy@firm.example");
  assert.match(wendy.url(), /\/ui\/inbox$/);
  const started = Date.now();
  while (!(await wendy.locator("#offers button", { hasText: "Accept" }).count())) {
    assert.ok(Date.now() - started < OFFER_MS, `no offer came:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 500));
    await wendy.reload();
  }
  await wendy.locator("#offers", { hasText: "Printer on floor 3 jams every page" }).waitFor();
  await shot(wendy, "worker-inbox-offer");
  await Promise.all([
    wendy.waitForURL(/\/tasks\/[0-9a-f-]+$/),
    wendy.locator("#offers button", { hasText: "Accept" }).first().click(),
  ]);
  await wendy.locator("#output-form").waitFor();
  await wendy.goto(`${base}/ui/inbox`);
  await wendy.getByText("No offers waiting").waitFor();
  await wendy.locator("#inbox", { hasText: "Printer on floor 3 jams every page" }).waitFor();
  await done(wendy);
});

test("a lead reassigns the at-risk task with one click", async () => {
  // Otto comes on; the item is due within two hours, so it is on the risk list, held by Wendy.
  await api("POST", `/api/v1/workers/${ids.otto}/presence`, { presence: "available" });
  const lead = await signIn("lena@firm.example");
  await lead.click("nav >> text=SLA risk");
  const row = lead.locator("#sla-risk tbody tr", { hasText: "Printer on floor 3 jams every page" });
  await row.locator("td", { hasText: "Wendy Mehta" }).waitFor();
  await row.locator("button", { hasText: "Reassign" }).click();
  await lead.locator("#flash .notice-ok", { hasText: "Otto Lindqvist now holds" }).waitFor();
  await lead.reload();
  await row.locator("td", { hasText: "Otto Lindqvist" }).waitFor();
  await shot(lead, "lead-sla-risk-reassign");
  // The page behind Choose… ranks who could take it and records a named worker with a reason.
  await row.locator("a", { hasText: "Choose…" }).click();
  await lead.locator("h1", { hasText: "Reassign: Printer on floor 3 jams every page" }).waitFor();
  await lead.locator("#candidates", { hasText: "Wendy Mehta" }).waitFor();
  await shot(lead, "lead-reassign");
  await lead.selectOption("#reassign-form-worker_id", { label: "Wendy Mehta" });
  await lead.fill("#reassign-form-reason", "Back from her break; knows this printer");
  await Promise.all([lead.waitForURL(/\/ui\/sla-risk$/), lead.click("#reassign-form button[type=submit]")]);
  await row.locator("td", { hasText: "Wendy Mehta" }).waitFor();
  await done(lead);
  const events = await api("GET", `/api/v1/clients/${ids.client}/events?limit=500`);
  const reasons = events.items.filter((e) => e.kind === "task.reassigned").map((e) => e.payload.reason);
  assert.deepEqual(reasons, ["SLA risk: moved to the best eligible worker", "Back from her break; knows this printer"]);
});

test("bulk upload imports a good file and lists the rows of a bad one", async () => {
  const client = await signIn("carol@northwind.example");
  await client.click("nav >> text=Bulk upload");
  await client.locator("h1", { hasText: "Bulk upload" }).waitFor();
  const count = async () =>
    (await api("GET", `/api/v1/clients/${ids.client}/work-items?limit=500`)).items.length;
  const before = await count();

  // The engagement runs on the IT helpdesk pack: rows fill its intake form, the requester (a
  // nested object of the form) as a JSON cell.
  const requester = (id, email) => `"{""employee_id"": ""${id}"", ""email"": ""${email}""}"`;
  const good = [
    "title,priority,external_ref,ticket_number,ticket_type,requester,impact,urgency,short_description",
    `Laptop will not boot,high,INC-1042,INC0001042,incident,${requester("E1001", "anna@northwind.example")},individual,high,Black screen after update`,
    `VPN drops every hour,normal,INC-1043,INC0001043,incident,${requester("E1002", "raj@northwind.example")},department,medium,Since Monday`,
    `New starter needs accounts,low,REQ-2001,REQ0002001,service_request,${requester("E1003", "li@northwind.example")},individual,low,Starts on the 1st`,
  ].join("\n");
  await client.setInputFiles("#bulk-upload-file", { name: "tickets.csv", mimeType: "text/csv", buffer: Buffer.from(good) });
  await client.click("#bulk-upload button[type=submit]");
  await client.locator("#bulk-upload .upload-result .notice-ok", { hasText: "Imported 3 work items" }).waitFor();
  assert.equal(await client.locator("#bulk-upload progress").getAttribute("value"), "100");
  assert.equal(await count(), before + 3);

  // A bad file: a row without a title, an unknown priority, and a reference given twice.
  const bad = [
    '{"title": "Outlook asks for the password again", "external_ref": "INC-2001"}',
    '{"priority": "high", "external_ref": "INC-2002"}',
    '{"title": "Teams camera is black", "priority": "whenever"}',
    '{"title": "Second copy", "external_ref": "INC-2001"}',
  ].join("\n");
  await client.setInputFiles("#bulk-upload-file", {
    name: "tickets.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(bad),
  });
  await client.click("#bulk-upload button[type=submit]");
  await client.locator("#bulk-upload .notice-bad", { hasText: "nothing was imported" }).waitFor();
  const report = client.locator("#upload-errors tbody tr");
  await report.first().waitFor();
  const rows = await report.allInnerTexts();
  assert.ok(rows.some((r) => r.startsWith("2") && r.includes("title is required")), rows.join("\n"));
  assert.ok(rows.some((r) => r.startsWith("3") && r.includes("unknown priority")), rows.join("\n"));
  assert.equal(await count(), before + 3, "nothing of the bad file was imported");
  await shot(client, "client-bulk-upload");
  await done(client, 1);
});

test("a worker sees the week's shifts and toggles presence", async () => {
  const wendy = await signIn("wendy@firm.example");
  await wendy.click("nav >> text=My shift");
  await wendy.locator("#my-week .pill", { hasText: "today" }).waitFor();
  await wendy.getByText("Pune · times in Asia/Kolkata").waitFor();
  // Her days meet at midnight: one shift round the clock, not one ending every midnight.
  await wendy.getByText("with no end this week").waitFor();
  // The page says what happens to work in hand at a break and at the shift's end.
  await wendy.getByText("goes back to the queue with the work you saved", { exact: false }).waitFor();
  await Promise.all([
    wendy.waitForURL(/\/ui\/shift$/),
    wendy.click("#presence-form button[value=break]"),
  ]);
  await wendy.locator(".stat .value", { hasText: "break" }).waitFor();
  await Promise.all([
    wendy.waitForURL(/\/ui\/shift$/),
    wendy.click("#presence-form button[value=available]"),
  ]);
  await wendy.locator(".stat .value", { hasText: "available" }).waitFor();
  await shot(wendy, "worker-shift");
  await done(wendy);
});

test("every role's pages render from its navigation", async () => {
  const users = [
    ["carol@northwind.example", "client_user"],
    ["cora@northwind.example", "client_admin"],
    ["wendy@firm.example", "worker"],
    ["rita@firm.example", "reviewer"],
    ["lena@firm.example", "lead"],
    ["omar@firm.example", "manager"],
    ["ada@firm.example", "admin"],
    ["aud@firm.example", "auditor"],
  ];
  const shots = {
    "/ui/board": "lead-board-sites",
    "/ui/workforce": "lead-workforce-sites",
    "/ui/admin/sites": "admin-sites",
    "/ui/packs": "packs",
  };
  for (const [email, role] of users) {
    const page = await signIn(email);
    const links = await page.locator("nav.side ul a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    assert.ok(links.length >= 2, `${role} has a navigation`);
    for (const href of links) {
      const response = await page.goto(`${base}${href}`);
      assert.equal(response.status(), 200, `${role} ${href}`);
      const heading = (await page.locator("main header.page-head h1").first().innerText()).trim();
      assert.ok(heading.length > 0, `${role} ${href} has a heading`);
      assert.ok(!/^(Not found|Not allowed|Something went wrong|Request refused)$/.test(heading), `${role} ${href}: ${heading}`);
      if (role === "admin" && shots[href]) {
        if (href === "/ui/board") await page.locator(".live[data-refreshed] #board-sites").waitFor();
        await shot(page, shots[href]);
      }
    }
    if (role === "admin") {
      await page.goto(`${base}/ui/packs`);
      await page.click("#packs a >> text=IT service desk");
      await page.locator("h2", { hasText: "Steps" }).waitFor();
      await page.locator("#pack-steps tbody tr").nth(2).waitFor();
      await shot(page, "pack-detail");
      await page.goto(`${base}/ui/admin/clients/${ids.client}/calendars`);
      await page.locator("#calendars", { hasText: "Round the clock" }).waitFor();
      await page.click("#calendars a >> text=Edit");
      await page.fill("#calendar-form-holidays", "2026-12-25\n2027-01-01");
      await Promise.all([
        page.waitForURL(/\/calendars$/),
        page.click("#calendar-form button[type=submit]"),
      ]);
      await page.locator("#calendars", { hasText: "2 (next" }).waitFor();
      await shot(page, "admin-calendars");
    }
    await done(page);
  }
});
