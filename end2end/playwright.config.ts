import { defineConfig } from "@playwright/test";

// Runs against the release build that `cargo leptos end-to-end --release`
// starts. scripts/test.sh sets FLOWNEXUS_LISTEN_ADDR and the admin password.
const baseURL = `http://${process.env.FLOWNEXUS_LISTEN_ADDR ?? "127.0.0.1:3000"}`;

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  timeout: 30_000,
  expect: { timeout: 5_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium; Playwright never downloads a browser here.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [
    { name: "hydrated", use: { javaScriptEnabled: true } },
    { name: "no-js", use: { javaScriptEnabled: false }, grep: /@no-js/ },
  ],
});
