import { ChildProcess, execFileSync, spawn } from "node:child_process";
import path from "node:path";

/** Where the fake LwM2M REST server listens; the server under test must
 * have FLOWNEXUS_LWM2M_REST_URL=http://127.0.0.1:18080 (scripts/test.sh). */
export const FAKE_LESHAN_PORT = Number(process.env.FAKE_LESHAN_PORT ?? 18080);

async function waitFor(url: string, what: string, child?: ChildProcess) {
  const deadline = Date.now() + 120_000;
  let last = "";
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} at ${url} did not answer: ${last}`);
}

// `cargo leptos end-to-end` starts the server and Playwright at the same
// time: wait until the server answers its health check. The fake LwM2M
// server, which the command dispatcher calls, runs for the whole session.
export default async function globalSetup() {
  const fakeUrl = `http://127.0.0.1:${FAKE_LESHAN_PORT}/api/clients`;
  let fake: ChildProcess | undefined;
  const running = await fetch(fakeUrl).then((r) => r.ok).catch(() => false);
  if (!running) {
    fake = spawn(process.execPath, [path.join(__dirname, "fake-leshan.mjs"), String(FAKE_LESHAN_PORT)], {
      stdio: "inherit",
    });
    await waitFor(fakeUrl, "the fake LwM2M server", fake);
  }
  const base = `http://${process.env.FLOWNEXUS_LISTEN_ADDR ?? "127.0.0.1:3000"}`;
  try {
    await waitFor(`${base}/api/v1/health`, "server");
  } catch (e) {
    fake?.kill();
    throw e;
  }
  // The tests' device token, made with the server's own CLI on the database
  // the server under test uses (FLOWNEXUS_DATA_DIR); the tests read it from
  // the environment, which Playwright hands from here to its workers.
  if (!process.env.FLOWNEXUS_E2E_DEVICE_TOKEN) {
    const server = path.join(__dirname, "..", "target", "release", "flownexus");
    try {
      process.env.FLOWNEXUS_E2E_DEVICE_TOKEN = execFileSync(
        server,
        ["token", "create", "--name", "e2e", "--scope", "device"],
        { encoding: "utf8" },
      ).trim();
    } catch (e) {
      fake?.kill();
      throw e;
    }
  }
  // Playwright runs the returned function as the global teardown.
  return async () => {
    fake?.kill();
  };
}
