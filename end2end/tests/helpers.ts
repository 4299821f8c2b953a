import { APIRequestContext, Page, expect } from "@playwright/test";
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
  await expect(page.getByRole("heading", { name: "Endpoints" })).toBeVisible();
}
