import { APIRequestContext, Page, TestInfo, expect } from "@playwright/test";
import { readFileSync } from "node:fs";

export const ADMIN_PASSWORD = process.env.FLOWNEXUS_ADMIN_PASSWORD ?? "";
export const DEVICE_TOKEN = process.env.FLOWNEXUS_E2E_DEVICE_TOKEN ?? "";

/** A unique endpoint name per test, so tests never see each other's data. */
export function uniqueEndpoint(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}

/** Posts the contract's temperature payload for an endpoint with a value. */
export async function postTemperature(
  request: APIRequestContext,
  endpoint: string,
  value: number,
) {
  const body = JSON.parse(
    readFileSync(`${__dirname}/../../tests/payloads/single__test_temperature_3303_0_5700.json`, "utf8"),
  );
  body.ep = endpoint;
  body.val.value = String(value);
  const res = await request.post("/leshan_api/resource/single", {
    data: body,
    headers: { Authorization: `Bearer ${DEVICE_TOKEN}` },
  });
  expect(res.status(), await res.text()).toBe(201);
}

export async function login(page: Page) {
  await page.goto("/login");
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
}

/** Opens the endpoint table filtered to one name and returns its row. */
export async function endpointRow(page: Page, name: string) {
  await page.goto(`/endpoints?q=${encodeURIComponent(name)}`);
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name }) });
  await expect(row).toBeVisible();
  return row;
}

/** Posts one of the contract's example payloads for an endpoint. */
export async function postPayload(
  request: APIRequestContext,
  file: string,
  endpoint: string,
  edit: (body: any) => void = () => {},
) {
  const body = JSON.parse(readFileSync(`${__dirname}/../../tests/payloads/${file}`, "utf8"));
  body.ep = endpoint;
  edit(body);
  const kind = file.startsWith("composite") ? "composite" : "single";
  const res = await request.post(`/leshan_api/resource/${kind}`, {
    data: body,
    headers: { Authorization: `Bearer ${DEVICE_TOKEN}` },
  });
  expect(res.status(), await res.text()).toBe(201);
  return res.json();
}

/** Saves a full-page screenshot as a test artifact. */
export async function screenshot(page: Page, testInfo: TestInfo, name: string) {
  const path = testInfo.outputPath(`${name}-${testInfo.project.name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: "image/png" });
}
