import { Browser, Page, TestInfo, expect, test } from "@playwright/test";
import { endpointRow, login, postPayload, screenshot, uniqueEndpoint } from "./helpers";

// Issue 5, the dashboard's side of commands and firmware updates. The
// dispatcher sends commands to the fake LwM2M server (end2end/fake-leshan.mjs,
// started by the global setup); the server under test needs
// FLOWNEXUS_LWM2M_REST_URL=http://127.0.0.1:18080.

const FAKE = `http://127.0.0.1:${process.env.FAKE_LESHAN_PORT ?? 18080}`;

/** Tells the fake LwM2M server how to answer for one endpoint. */
async function fakeMode(
  request: import("@playwright/test").APIRequestContext,
  ep: string,
  mode: "ok" | "not_registered" | "device_error" | "timeout" | "server_error",
) {
  const res = await request.post(`${FAKE}/_control/${encodeURIComponent(ep)}`, { data: { mode } });
  expect(res.ok()).toBe(true);
}

/** A registered endpoint that reported object 3 (so 3/0/13..15 are writable
 * and 3/0/4 executable); returns its page's path. */
async function registeredDevice(page: Page, request: import("@playwright/test").APIRequestContext, name: string) {
  await postPayload(request, "single__registered_10240_0.json", name, (b) => (b.val.value = Date.now()));
  await postPayload(request, "composite__onboarding_read_object3.json", name);
  await endpointRow(page, name);
  await page.getByRole("link", { name, exact: true }).click();
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  return new URL(page.url()).pathname;
}

/** The admin creates a user through the users page. */
async function createUser(page: Page, username: string, password: string, role: string) {
  await page.goto("/users");
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Initial password", { exact: true }).fill(password);
  await page.getByRole("combobox", { name: "Role", exact: true }).selectOption(role);
  await page.getByRole("button", { name: "Create user" }).click();
  await expect(page.getByRole("row").filter({ hasText: username })).toBeVisible();
}

/** Signs a user in, in a fresh browser context of the same project. */
async function signInFresh(browser: Browser, testInfo: TestInfo, username: string, password: string) {
  const context = await browser.newContext({
    baseURL: testInfo.project.use.baseURL,
    javaScriptEnabled: testInfo.project.use.javaScriptEnabled,
  });
  const page = await context.newPage();
  await page.goto("/login");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  return page;
}

/** The row of the newest command on `path` in the page's Commands table. */
function commandRow(page: Page, path: string) {
  return page
    .getByRole("table", { name: "Commands" })
    .getByRole("row")
    .filter({ hasText: path })
    .first();
}

test("a viewer sees no command or update actions, and a forged send is refused", async ({
  page,
  browser,
  request,
}, testInfo) => {
  const name = uniqueEndpoint("cmd-viewer");
  await login(page);
  const endpointPath = await registeredDevice(page, request, name);
  // Something in each list, so that rows (without actions) are shown.
  await page.getByRole("form", { name: "Read" }).getByRole("button", { name: "Read" }).click();
  await expect(commandRow(page, "/3")).toBeVisible();

  const username = uniqueEndpoint("cmd-viewer-user");
  const password = `pw-${Date.now()}-viewer`;
  await createUser(page, username, password, "viewer");
  const viewer = await signInFresh(browser, testInfo, username, password);

  await viewer.goto(endpointPath);
  await expect(viewer.getByRole("heading", { name, level: 1 })).toBeVisible();
  await expect(viewer.getByRole("heading", { name: "Commands" })).toBeVisible();
  await expect(commandRow(viewer, "/3")).toBeVisible();
  await expect(viewer.getByRole("heading", { name: "Send command" })).toHaveCount(0);
  await expect(viewer.getByRole("form")).toHaveCount(0);
  for (const button of ["Write", "Read", "Cancel", "Retry", "Start update"]) {
    await expect(viewer.getByRole("button", { name: button })).toHaveCount(0);
  }
  await expect(viewer.getByRole("button", { name: /^Execute/ })).toHaveCount(0);

  await viewer.goto(`/commands?endpoint=${encodeURIComponent(name)}`);
  await expect(viewer.getByRole("heading", { name: "Commands", level: 1 })).toBeVisible();
  await expect(viewer.getByRole("link", { name })).toBeVisible();
  await expect(viewer.getByRole("button", { name: /Cancel|Retry/ })).toHaveCount(0);

  await viewer.goto("/updates");
  await expect(viewer.getByRole("heading", { name: "Firmware updates", level: 1 })).toBeVisible();
  await expect(viewer.getByRole("button", { name: /Cancel|Retry/ })).toHaveCount(0);

  await viewer.goto("/endpoints");
  await expect(viewer.getByRole("checkbox")).toHaveCount(0);
  await expect(viewer.getByRole("button", { name: "Start update" })).toHaveCount(0);

  // Calling the server function directly does not help either.
  const status = await viewer.evaluate(async (ep) => {
    const res = await fetch("/sfn/commands/send", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ endpoint: ep, kind: "execute", path: "/3/0/4" }),
    });
    return res.status;
  }, name);
  expect(status).toBe(403);
  await viewer.context().close();
});

test("an operator writes a resource and watches it reach confirmed without a reload", async ({
  page,
  request,
}, testInfo) => {
  const name = uniqueEndpoint("cmd-write");
  await fakeMode(request, name, "ok");
  await login(page);
  await registeredDevice(page, request, name);
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
  await page.evaluate(() => ((window as any).__noReload = true));

  const form = page.getByRole("form", { name: "Write timezone" });
  await form.getByLabel("timezone (/3/0/15)").fill("Europe/Berlin");
  await form.getByRole("button", { name: "Write" }).click();
  await expect(page.getByRole("status").filter({ hasText: /Command \d+ queued/ })).toBeVisible();

  const row = commandRow(page, "/3/0/15");
  await expect(row).toContainText("Europe/Berlin");
  await expect(row.locator("[data-status]")).toHaveAttribute("data-status", "confirmed", { timeout: 15_000 });
  await expect(row).toContainText("CHANGED");
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

  // The server's refusal shows on the card, naming the field.
  const read = page.getByRole("form", { name: "Read" });
  await read.getByLabel("Path to read").fill("/abc");
  await read.getByRole("button", { name: "Read" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "path:" })).toContainText("not an LwM2M path");
  // TIME takes a UTC date and time.
  const time = page.getByRole("form", { name: "Write current_time" });
  await expect(time.getByLabel("current_time (/3/0/13) (UTC)")).toHaveAttribute("type", "datetime-local");
  await screenshot(page, testInfo, "endpoint-commands");

  // The Commands page lists it, filtered by endpoint and status.
  await page.goto(`/commands?endpoint=${encodeURIComponent(name)}&status=confirmed`);
  await expect(commandRow(page, "/3/0/15")).toBeVisible();
  await expect(page.getByLabel("Status")).toHaveValue("confirmed");
});

test("@no-js an operator executes a resource without JavaScript", async ({ page, request }) => {
  const name = uniqueEndpoint("cmd-exec");
  await fakeMode(request, name, "ok");
  await login(page);
  const path = await registeredDevice(page, request, name);
  await page.getByRole("button", { name: /^Execute Reboot/ }).click();
  // The plain form post comes back to the endpoint page.
  await expect(page).toHaveURL(new RegExp(`${path}\\??$`));
  await expect(async () => {
    await page.reload();
    await expect(commandRow(page, "/3/0/4").locator("[data-status]")).toHaveAttribute("data-status", "confirmed", {
      timeout: 1_000,
    });
  }).toPass({ timeout: 15_000 });
});

test("a command for a sleeping device waits for it to wake and can be cancelled", async ({ page, request }) => {
  const name = uniqueEndpoint("cmd-sleep");
  // The LwM2M server says the client is not registered (asleep).
  await fakeMode(request, name, "not_registered");
  await login(page);
  await registeredDevice(page, request, name);
  const form = page.getByRole("form", { name: "Write utc_offset" });
  await form.getByLabel("utc_offset (/3/0/14)").fill("+01:00");
  await form.getByRole("button", { name: "Write" }).click();

  const row = commandRow(page, "/3/0/14");
  await expect(async () => {
    await page.reload();
    await expect(row).toContainText("waits for the device to wake", { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(row.locator("[data-status]")).toHaveAttribute("data-status", "queued");
  await row.getByRole("button", { name: /Cancel command/ }).click();
  await expect(row.locator("[data-status]")).toHaveAttribute("data-status", "cancelled");
  await expect(row.getByRole("button", { name: /Cancel command/ })).toHaveCount(0);
});

test("the Commands and Updates pages filter in the URL, page and look right", async ({ page, request }, testInfo) => {
  const name = uniqueEndpoint("cmd-pages");
  await fakeMode(request, name, "device_error");
  await login(page);
  await registeredDevice(page, request, name);
  await page.getByRole("button", { name: /^Execute Reboot/ }).click();
  const row = commandRow(page, "/3/0/4");
  await expect(row.locator("[data-status]")).toHaveAttribute("data-status", "failed", { timeout: 15_000 });
  await expect(row.getByRole("button", { name: /Retry command/ })).toBeVisible();

  await page.goto("/commands");
  await page.getByLabel("Endpoint").fill(name);
  await page.getByLabel("Status").selectOption("failed");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/status=failed/);
  await expect(commandRow(page, "/3/0/4")).toContainText("NOT_FOUND");
  await screenshot(page, testInfo, "commands");

  await page.goto("/updates");
  await expect(page.getByRole("heading", { name: "Firmware updates", level: 1 })).toBeVisible();
  await page.getByLabel("Active only").check();
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/active=1/);
  await screenshot(page, testInfo, "updates");

  // The overview's cards lead here.
  await page.goto("/");
  await page.getByRole("link", { name: /Pending commands/ }).click();
  await expect(page).toHaveURL(/\/commands\?status=queued/);
  await page.goto("/");
  await page.getByRole("link", { name: /Active firmware updates/ }).click();
  await expect(page).toHaveURL(/\/updates\?active=1/);
});

test("an operator starts a firmware update and watches it progress to success", async ({ page, request }, testInfo) => {
  const name = uniqueEndpoint("ota");
  const version = `9.${Date.now() % 100000}.0`;
  await fakeMode(request, name, "ok");
  await login(page);
  await registeredDevice(page, request, name);
  // An image to update to, uploaded with the admin's session.
  const upload = await page.request.post("/api/v1/firmware", {
    multipart: {
      version,
      file: { name: "fw.bin", mimeType: "application/octet-stream", buffer: Buffer.from(`image ${version}`) },
    },
  });
  expect(upload.status(), await upload.text()).toBe(201);
  await page.reload();
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");

  const start = page.getByRole("form", { name: "Start update" });
  await start.getByLabel("Firmware").selectOption({ label: version });
  await start.getByRole("button", { name: "Start update" }).click();

  const updates = page.getByRole("region", { name: "Firmware updates" });
  const row = updates.getByRole("row").filter({ hasText: version }).first();
  const state = row.locator("[data-state]");
  // The package URI write goes out to the (fake) LwM2M server and is confirmed.
  await expect(commandRow(page, "/5/0/1").locator("[data-status]")).toHaveAttribute("data-status", "confirmed", {
    timeout: 15_000,
  });
  await expect(state).toHaveAttribute("data-state", "pending");

  // The device reports its progress; the page follows without a reload.
  const report = (file: string, value: string) =>
    postPayload(request, file, name, (b) => (b.val.value = value));
  await report("single__observe_fw_state_5_0_3.json", "1");
  await expect(state).toHaveAttribute("data-state", "downloading", { timeout: 10_000 });
  await report("single__observe_fw_state_5_0_3.json", "2");
  await expect(state).toHaveAttribute("data-state", "downloaded", { timeout: 10_000 });
  // At "downloaded" the server executes 5/0/2.
  await expect(commandRow(page, "/5/0/2").locator("[data-status]")).toHaveAttribute("data-status", "confirmed", {
    timeout: 15_000,
  });
  await report("single__observe_fw_state_5_0_3.json", "3");
  await expect(state).toHaveAttribute("data-state", "updating", { timeout: 10_000 });
  await report("single__observe_fw_update_result_5_0_5.json", "1");
  await expect(state).toHaveAttribute("data-state", "succeeded", { timeout: 10_000 });

  // The Updates page shows the whole timeline.
  await page.goto(`/updates?endpoint=${encodeURIComponent(name)}`);
  await expect(page.getByText("Package URI written").first()).toBeVisible();
  await expect(page.getByText(/Succeeded/).first()).toBeVisible();
  await screenshot(page, testInfo, "update-succeeded");
});
