import { expect, test } from "@playwright/test";
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { login, screenshot, uniqueEndpoint } from "./helpers";

// The native LwM2M server with the built-in simulator (`flownexus
// simulate`) as the device: it registers over CoAP, the server reads and
// observes it, its notifications reach the page live, and commands from the
// page go to it over CoAP. scripts/test.sh gives the server under test a
// CoAP port of its own (FLOWNEXUS_LWM2M_COAP_ADDR).

const SERVER = path.join(__dirname, "..", "..", "target", "release", "flownexus");
const COAP = process.env.FLOWNEXUS_LWM2M_COAP_ADDR ?? "127.0.0.1:5683";

test("a simulated device registers natively, notifies the live chart, takes a write, a Reboot, an observe and a firmware update over CoAP", async ({
  page,
}, testInfo) => {
  test.setTimeout(200_000);
  const prefix = `${uniqueEndpoint("sim")}-`;
  const name = `${prefix}0`;
  // Provisioned like any device that registers over plain CoAP.
  execFileSync(SERVER, ["device", "add", name]);
  const simulator = spawn(
    SERVER,
    ["simulate", "--devices", "1", "--endpoint-prefix", prefix, "--server", `coap://${COAP}`, "--notify-every", "1", "--duration", "190"],
    { stdio: "inherit" },
  );
  try {
    await login(page);
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name }) });
    await expect(async () => {
      await page.goto(`/endpoints?q=${encodeURIComponent(name)}`);
      await expect(row).toBeVisible({ timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
    await expect(row.getByRole("cell").nth(1)).toHaveText("online");
    await row.getByRole("link", { name }).click();
    await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();

    const connection = page.getByRole("region", { name: "Connection" });
    await expect(connection).toContainText("Native LwM2M 1.1 over CoAP (no security)");
    await expect(connection.getByRole("list", { name: "Registered objects" })).toContainText("</3303/0>");
    await expect(connection.getByRole("list", { name: "Observed paths" })).toContainText("/3303/0/5700");

    // Notifications move the temperature chart without a reload.
    await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
    await page.evaluate(() => ((window as any).__noReload = true));
    const chart = page.getByRole("img", { name: /temperature \/3303\/0\/5700 .*chart, (\d+) points/ });
    await expect(chart).toBeVisible();
    const points = async () => Number((await chart.getAttribute("aria-label"))?.match(/(\d+) points/)?.[1] ?? 0);
    const before = await points();
    await expect.poll(points, { timeout: 15_000 }).toBeGreaterThan(before + 1);
    await screenshot(page, testInfo, "native-endpoint");

    // A write from the page reaches the device over CoAP.
    const write = page.getByRole("form", { name: "Write current_time" });
    await write.getByLabel("current_time (/3/0/13) (UTC)").fill("2024-05-31T16:08");
    await write.getByRole("button", { name: "Write" }).click();
    const commands = page.getByRole("table", { name: "Commands" }).getByRole("row");
    const written = commands.filter({ hasText: "/3/0/13" }).first();
    await expect(written.locator("[data-status]")).toHaveAttribute("data-status", "confirmed", { timeout: 20_000 });
    await expect(written).toContainText("CHANGED");

    // Reboot: confirmed, and the device registers again.
    await page.getByRole("button", { name: /^Execute Reboot/ }).click();
    const rebooted = commands.filter({ hasText: "/3/0/4" }).first();
    await expect(rebooted.locator("[data-status]")).toHaveAttribute("data-status", "confirmed", { timeout: 20_000 });
    expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);

    // Observe humidity from the Device management form, change its
    // attributes and cancel it from the Connection section.
    const manage = page.getByRole("form", { name: "Device management" });
    await manage.getByLabel("Operation").selectOption({ label: "Observe" });
    await manage.getByLabel("Path").fill("/3304/0/5701");
    await manage.getByRole("button", { name: "Send" }).click();
    const observed = commands.filter({ hasText: "/3304/0/5701" }).first();
    await expect(observed.locator("[data-status]")).toHaveAttribute("data-status", "confirmed", { timeout: 20_000 });
    await page.reload();
    const observedPaths = page.getByRole("region", { name: "Connection" }).getByRole("list", { name: "Observed paths" });
    await expect(observedPaths).toContainText("/3304/0/5701");
    // Change its notification attributes from there: a Write-Attributes,
    // shown beside the observation once the device confirmed it.
    const humidity = observedPaths.getByRole("listitem").filter({ hasText: "/3304/0/5701" });
    await expect(humidity).toContainText("no attributes");
    await humidity.getByLabel("New attributes of /3304/0/5701").fill("pmin=1&pmax=5");
    await humidity.getByRole("button", { name: "Set attributes of /3304/0/5701" }).click();
    const attributed = commands.filter({ hasText: "pmin=1" }).first();
    await expect(attributed.locator("[data-status]")).toHaveAttribute("data-status", "confirmed", { timeout: 20_000 });
    await page.reload();
    await expect(humidity).toContainText("pmin=1 pmax=5");
    await observedPaths.getByRole("button", { name: "Cancel observation of /3304/0/5701" }).click();
    await expect(async () => {
      await page.reload();
      await expect(observedPaths).not.toContainText("/3304/0/5701", { timeout: 1_000 });
    }).toPass({ timeout: 20_000 });

    // A firmware update, the image pulled over CoAP (Block2 from /fw/...).
    const version = `7.${Date.now() % 100000}.0`;
    const upload = await page.request.post("/api/v1/firmware", {
      multipart: {
        version,
        file: { name: "fw.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(3000, 7) },
      },
    });
    expect(upload.status(), await upload.text()).toBe(201);
    await page.reload();
    const start = page.getByRole("form", { name: "Start update" });
    await start.getByLabel("Firmware").selectOption({ label: version });
    await start.getByLabel("Download over").selectOption({ label: "CoAP" });
    await start.getByRole("button", { name: "Start update" }).click();
    const update = page.getByRole("region", { name: "Firmware updates" }).getByRole("row").filter({ hasText: version }).first();
    await expect(update.locator("[data-state]")).toHaveAttribute("data-state", "succeeded", { timeout: 60_000 });
    await expect(commands.filter({ hasText: "/5/0/1" }).first()).toContainText("coap://");
    await screenshot(page, testInfo, "native-update");
  } finally {
    simulator.kill("SIGINT");
  }
});
