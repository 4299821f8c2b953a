import { expect, test } from "@playwright/test";
import { endpointRow, login, postPayload, postTemperature, screenshot, uniqueEndpoint } from "./helpers";

// Issue 4: the operator dashboard's pages. Each test makes its own devices
// through the REST API. Tests tagged @no-js also run with JavaScript off.

test("@no-js the overview shows the fleet, the intake and the latest events", async ({ page, request }, testInfo) => {
  const name = uniqueEndpoint("overview");
  await postPayload(request, "single__registered_10240_0.json", name);
  await postTemperature(request, name, 21);
  await login(page);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  const online = Number(await page.getByTestId("Online").textContent());
  expect(online).toBeGreaterThanOrEqual(1);
  const points = Number(await page.getByTestId("Data points, last hour").textContent());
  expect(points).toBeGreaterThanOrEqual(2);
  await expect(page.getByRole("img", { name: /Data points per minute over the last hour/ })).toBeVisible();
  const events = page.getByRole("list", { name: "Events" });
  await expect(events.getByRole("link", { name }).first()).toBeVisible();
  await screenshot(page, testInfo, "overview");
  // A card leads to the endpoints it counts.
  await page.getByRole("link", { name: /Online/ }).click();
  await expect(page).toHaveURL(/\/endpoints\?presence=online/);
});

test("the overview updates live when a device registers", async ({ page, request }) => {
  await login(page);
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
  await page.evaluate(() => ((window as any).__noReload = true));
  const name = uniqueEndpoint("overview-live");
  await postPayload(request, "single__registered_10240_0.json", name);
  const events = page.getByRole("list", { name: "Events" });
  await expect(events.getByRole("link", { name })).toBeVisible({ timeout: 5_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("@no-js the endpoint table searches, filters by presence, sorts and pages in the URL", async ({ page, request }, testInfo) => {
  const prefix = uniqueEndpoint("table");
  // Three registered, two never registered (offline).
  for (const i of [1, 2, 3]) await postPayload(request, "single__registered_10240_0.json", `${prefix}-${i}`);
  for (const i of [4, 5]) await postTemperature(request, `${prefix}-${i}`, i);
  await login(page);
  await page.goto("/endpoints");
  await page.getByLabel("Search by name").fill(prefix);
  await page.getByRole("combobox", { name: /^Presence/ }).selectOption("online");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/presence=online/);
  await expect(page.getByRole("link", { name: new RegExp(`^${prefix}-`) })).toHaveCount(3);
  await expect(page.getByTestId("endpoint-count")).toHaveText("1–3 of 3");

  // Sort by name, descending, by clicking the header twice.
  await page.getByRole("link", { name: "Name" }).click();
  await expect(page).toHaveURL(/sort=name/);
  await page.getByRole("link", { name: /Name/ }).click();
  await expect(page).toHaveURL(/dir=desc/);
  await expect(page.getByRole("columnheader", { name: /Name/ })).toHaveAttribute("aria-sort", "descending");
  await expect(page.getByRole("row").nth(1).getByRole("link")).toHaveText(`${prefix}-3`);

  // Pagination keeps the filter: one per page.
  await page.goto(`/endpoints?q=${encodeURIComponent(prefix)}&sort=name&per_page=2`);
  await expect(page.getByTestId("endpoint-count")).toHaveText("1–2 of 5");
  await page.getByRole("link", { name: "Next" }).click();
  await expect(page).toHaveURL(/page=2/);
  await expect(page.getByTestId("endpoint-count")).toHaveText("3–4 of 5");
  await expect(page.getByRole("row").nth(1).getByRole("link")).toHaveText(`${prefix}-3`);
  await screenshot(page, testInfo, "endpoints");
});

test("@no-js the endpoint page shows identity, grouped values, charts with ranges and CSV", async ({ page, request }, testInfo) => {
  const name = uniqueEndpoint("detail");
  await postPayload(request, "composite__onboarding_read_object3.json", name);
  await postTemperature(request, name, 20.5);
  await postTemperature(request, name, 22.0);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  const identity = page.getByRole("region", { name: "Identity" });
  await expect(identity.getByText("Manufacturer")).toBeVisible();
  await expect(page.getByRole("table", { name: "Object 3 / instance 0" })).toBeVisible();
  await expect(page.getByRole("table", { name: "Object 3303 / instance 0" })).toBeVisible();
  const chart = page.getByRole("img", { name: /temperature \/3303\/0\/5700 \(Cel\) chart, 2 points/ });
  await expect(chart).toBeVisible();

  // Range buttons change the chart: nothing in a custom range in the past.
  await page.getByRole("group", { name: "Chart range" }).getByRole("link", { name: "15 min" }).click();
  await expect(page).toHaveURL(/range=15m/);
  await expect(page.getByRole("group", { name: "Chart range" }).getByRole("link", { name: "15 min" })).toHaveAttribute(
    "aria-current",
    "true",
  );
  await expect(page.getByRole("img", { name: /temperature .* chart, 2 points/ })).toBeVisible();
  const id = page.url().match(/\/endpoints\/(\d+)/)![1];
  await page.goto(`/endpoints/${id}?from=2020-01-01T00:00&to=2020-01-02T00:00`);
  await expect(page.getByRole("img", { name: /temperature .* chart, 0 points/ })).toBeVisible();
  await page.goto(`/endpoints/${id}`);

  // CSV of the chart's range.
  const csv = await request.get(
    (await page.getByRole("figure").filter({ hasText: "temperature" }).getByRole("link", { name: "CSV" }).getAttribute("href"))!,
    { headers: { Cookie: (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ") } },
  );
  expect(csv.status()).toBe(200);
  const text = await csv.text();
  expect(text.split(/\r?\n/)[0]).toBe("received_at,received_at_ms,value,measured_at,measured_at_ms");
  expect(text).toContain(",20.5");
  expect(text).toContain(",22");
  await screenshot(page, testInfo, "endpoint");
});

test("the chart's CSV link downloads and hovering reads out the nearest point", async ({ page, request }) => {
  const name = uniqueEndpoint("csv");
  await postTemperature(request, name, 18.25);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  const chart = page.getByRole("img", { name: /temperature .* chart, 1 points/ });
  await chart.hover();
  await expect(page.getByTestId("chart-readout").first()).toContainText("18.25 Cel");
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "CSV" }).first().click();
  const file = await (await download).path();
  const { readFileSync } = await import("node:fs");
  expect(readFileSync(file!, "utf8")).toContain(",18.25");
});

test("presence on the endpoint page follows registration events live", async ({ page, request }) => {
  const name = uniqueEndpoint("presence-live");
  await postTemperature(request, name, 1);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
  const badge = page.locator("header [data-presence]");
  await expect(badge).toHaveText("offline");
  await postPayload(request, "single__registered_10240_0.json", name);
  await expect(badge).toHaveText("online", { timeout: 2_000 });
  await postPayload(request, "single__unregistered_10240_1.json", name);
  await expect(badge).toHaveText("offline", { timeout: 2_000 });
});

test("@no-js the events page filters by endpoint and type and pages back", async ({ page, request }, testInfo) => {
  const name = uniqueEndpoint("events");
  await postPayload(request, "single__registered_10240_0.json", name);
  await postPayload(request, "composite__onboarding_read_object3.json", name);
  await login(page);
  await page.goto("/events");
  await page.getByLabel("Endpoint").fill(name);
  await page.getByLabel("Type").fill("registered");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/type=registered/);
  const list = page.getByRole("list", { name: "Events" });
  await expect(list.getByRole("listitem")).toHaveCount(1);
  await expect(list.getByText("/10240/0/0")).toBeVisible();
  await page.goto(`/events?endpoint=${encodeURIComponent(name)}`);
  await expect(list.getByRole("listitem")).toHaveCount(2);
  await screenshot(page, testInfo, "events");
});

test("new events appear on the events page without a reload", async ({ page, request }) => {
  const name = uniqueEndpoint("events-live");
  await postTemperature(request, name, 1);
  await login(page);
  await page.goto(`/events?endpoint=${encodeURIComponent(name)}`);
  await expect(page.getByRole("status", { name: "Live updates" })).toHaveAttribute("data-live", "live");
  await page.evaluate(() => ((window as any).__noReload = true));
  const list = page.getByRole("list", { name: "Events" });
  await expect(list.getByRole("listitem")).toHaveCount(0);
  await postPayload(request, "single__registered_10240_0.json", name);
  await expect(list.getByRole("listitem")).toHaveCount(1, { timeout: 3_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});
