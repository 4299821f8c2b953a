// `cargo leptos end-to-end` starts the server and Playwright at the same
// time: wait until the server answers its health check.
export default async function globalSetup() {
  const base = `http://${process.env.FLOWNEXUS_LISTEN_ADDR ?? "127.0.0.1:3000"}`;
  const deadline = Date.now() + 120_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/api/v1/health`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`server at ${base} did not become healthy: ${last}`);
}
