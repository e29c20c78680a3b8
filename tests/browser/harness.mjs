// What the browser test files share: where the repository and the `karya` binary are, a free
// port for a server, running the binary's commands, and calling the API with a token.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SHOTS = path.join(ROOT, "docs", "screenshots");
/// The password every test user signs in with.
export const PASSWORD = "correct horse battery staple";
/// How long the server may take to answer its health check after start.
export const STARTUP_MS = 30_000;

export const binary =
  process.env.KARYA_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug", "karya");

/// A port nothing listens on at the moment of asking.
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/// Runs `karya ARGS` in `dir` with `input` on its standard input; its standard output.
export function runKarya(dir, args, input) {
  return execFileSync(binary, args, {
    cwd: dir,
    input: input ?? "",
    env: { ...process.env, KARYA_LOG: "warn" },
  }).toString();
}

/// Adds a user with the shared test password.
export function addUser(dir, db, email, name, role, extra = []) {
  runKarya(
    dir,
    ["user", "add", "--db", db, "--email", email, "--name", name, "--role", role, ...extra, "--password-stdin"],
    `${PASSWORD}\n`,
  );
}

/// Calls the API as the holder of `token`; the JSON answer (failing the test on an error status).
export async function callApi(base, token, method, url, body) {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
