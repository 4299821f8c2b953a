import { test, expect } from "@playwright/test";
import { endpointRow, login, postPayload, postTemperature, uniqueEndpoint } from "./helpers";

test("@no-js login is required and works without JavaScript", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("definitely wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole("alert")).toHaveText(/wrong username or password/);
  await login(page);
  await expect(page.getByTestId("current-user")).toHaveText("admin");
});

test("@no-js the endpoint list shows endpoints that posted", async ({ page, request }) => {
  const name = uniqueEndpoint("list");
  await postTemperature(request, name, 21.5);
  await login(page);
  const row = await endpointRow(page, name);
  await expect(row.getByRole("cell").last()).toHaveText("1");
});

test("@no-js the endpoint page has a server-rendered chart", async ({ page, request }) => {
  const name = uniqueEndpoint("chart");
  await postTemperature(request, name, 20.0);
  await postTemperature(request, name, 22.5);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  const chart = page.getByRole("img", { name: /temperature \/3303\/0\/5700 \(Cel\) chart, 2 points/ });
  await expect(chart).toBeVisible();
  // One series line (plotters draws the grid with polylines too).
  await expect(chart.locator('svg polyline[stroke="#2563EB"]')).toHaveCount(1);
});

test("a REST POST appears on the open endpoint page without a reload", async ({ page, request }) => {
  const name = uniqueEndpoint("live");
  await postTemperature(request, name, 19.0);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
  // Mark the document: a reload would lose the mark.
  await page.evaluate(() => ((window as any).__noReload = true));
  const chart = page.getByRole("img", { name: /chart, 1 points/ });
  await expect(chart).toBeVisible();

  await postTemperature(request, name, 23.25);
  await expect(page.getByTestId("latest-value").first()).toHaveText("23.25 Cel", { timeout: 1_000 });
  await expect(page.getByRole("img", { name: /chart, 2 points/ })).toBeVisible({ timeout: 1_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

// The filter form is a plain GET form (the router's <Form> panicked some
// server renders), so searching loads the filtered page; hydrating that page
// must log no errors.
test("hydration: the endpoint table hydrates cleanly and searching loads the filtered page", async ({ page, request }) => {
  const consoleErrors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));
  const prefix = uniqueEndpoint("filter");
  await postTemperature(request, `${prefix}-alpha`, 1);
  await postTemperature(request, `${prefix}-beta`, 2);
  await login(page);
  await page.goto("/endpoints");
  await expect(page.getByRole("link", { name: `${prefix}-alpha` })).toBeVisible();
  await page.getByLabel("Search by name").fill(`${prefix}-beta`);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/q=filter-/);
  await expect(page.getByRole("link", { name: `${prefix}-alpha` })).toHaveCount(0);
  await expect(page.getByRole("link", { name: `${prefix}-beta` })).toBeVisible();
  await expect(page.getByLabel("Search by name")).toHaveValue(`${prefix}-beta`);
  expect(consoleErrors).toEqual([]);
});

test("@no-js signing out ends the session", async ({ page }) => {
  await login(page);
  await page.getByRole("link", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
});

// Plain forms: the same steps with JavaScript (hydrated) and without.
test("@no-js an operator pins and hides charts; constants are listed, not charted", async ({ page, request }) => {
  const name = uniqueEndpoint("pin");
  await postTemperature(request, name, 20.0);
  await postPayload(request, "composite__onboarding_read_object3.json", name);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();

  // Temperature is observed: charted. Battery level never changed: listed.
  const temperature = page.getByRole("img", { name: /^temperature \/3303\/0\/5700/ });
  const battery = page.getByRole("img", { name: /^battery_level \/3\/0\/9/ });
  const notCharted = page.getByRole("list", { name: "Not charted" });
  await expect(temperature).toBeVisible();
  await expect(battery).toHaveCount(0);
  await expect(notCharted).toContainText("battery_level");

  await page.getByRole("button", { name: "Pin chart battery_level" }).click();
  await expect(battery).toBeVisible();
  await expect(notCharted).not.toContainText("battery_level");

  await page.getByRole("button", { name: "Hide chart temperature" }).click();
  await expect(temperature).toHaveCount(0);
  await expect(notCharted).toContainText(/temperature.*hidden/);

  await page.getByRole("button", { name: "Unhide chart temperature" }).click();
  await expect(temperature).toBeVisible();
  await page.getByRole("button", { name: "Unpin chart battery_level" }).click();
  await expect(battery).toHaveCount(0);
});
