import { APIRequestContext, Page, expect, test } from "@playwright/test";
import { readFileSync } from "node:fs";
import { DEVICE_TOKEN, endpointRow, login, uniqueEndpoint } from "./helpers";

// Issue 3 seen from the operator's side: what devices post through the REST
// API (as Leshan forwards it) shows up as presence and values in the pages,
// rendered on the server (these run with JavaScript off too).

function payload(file: string, endpoint: string): any {
  const body = JSON.parse(readFileSync(`${__dirname}/../../tests/payloads/${file}`, "utf8"));
  body.ep = endpoint;
  return body;
}

async function post(request: APIRequestContext, kind: "single" | "composite", body: unknown) {
  const res = await request.post(`/leshan_api/resource/${kind}`, {
    data: body,
    headers: { Authorization: `Bearer ${DEVICE_TOKEN}` },
  });
  expect(res.status(), await res.text()).toBe(201);
  return res.json();
}

/** The presence badge in the endpoint list's row for this endpoint. */
async function listedPresence(page: Page, name: string) {
  await page.goto(`/endpoints?q=${encodeURIComponent(name)}`);
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name }) });
  await expect(row).toBeVisible();
  return row.getByRole("cell").nth(1);
}

test("@no-js presence follows registration, deregistration and an expired lifetime", async ({ page, request }) => {
  const name = uniqueEndpoint("presence");
  await login(page);

  const registered = await post(request, "single", payload("single__registered_10240_0.json", name));
  expect(registered.events).toEqual(["registered"]);
  await expect(await listedPresence(page, name)).toHaveText("online");
  await page.getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  await expect(page.locator("[data-presence]").first()).toHaveText("online");

  await post(request, "single", payload("single__unregistered_10240_1.json", name));
  await expect(await listedPresence(page, name)).toHaveText("offline");

  // Registered again with a 2 s lifetime (LwM2M server object 1/0/1): online
  // until the lifetime runs out without a registration update.
  await post(request, "single", {
    ep: name,
    obj_id: 1,
    val: { kind: "singleResource", id: 1, type: "INTEGER", value: 2 },
  });
  await post(request, "single", payload("single__registration_update_10240_2.json", name));
  await expect(await listedPresence(page, name)).toHaveText("online");
  await page.waitForTimeout(2_500);
  await expect(await listedPresence(page, name)).toHaveText("offline");
});

test("@no-js a composite onboarding read shows every stored value on the endpoint page", async ({ page, request }) => {
  const name = uniqueEndpoint("onboard");
  const receipt = await post(request, "composite", payload("composite__onboarding_read_object3.json", name));
  expect(receipt.endpoint).toBe(name);
  expect(receipt.events).toEqual(["device"]);
  await login(page);
  await (await endpointRow(page, name)).getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  // Every value the receipt echoed is a row of the latest-values table,
  // including both instances of the multi-instance resource /3/0/6.
  const table = page.getByRole("table").filter({ has: page.getByRole("columnheader", { name: "Path" }) });
  for (const r of receipt.resources) {
    await expect(table.getByRole("row").filter({ has: page.getByRole("cell", { name: r.path, exact: true }) })).toHaveCount(1);
  }
  await expect(table.getByRole("cell", { name: "/3/0/6/1", exact: true })).toBeVisible();
});

test("a malformed post is refused with a JSON error naming the field", async ({ request }) => {
  const body = payload("single__test_temperature_3303_0_5700.json", uniqueEndpoint("bad"));
  body.val.value = "not a number";
  const res = await request.post("/leshan_api/resource/single", {
    data: body,
    headers: { Authorization: `Bearer ${DEVICE_TOKEN}` },
  });
  expect(res.status()).toBe(422);
  const error = await res.json();
  expect(error.details[0].path).toBe("val.value");
  expect(error.details[0].reason).toMatch(/not a decimal number/);
});
