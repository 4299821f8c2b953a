import { expect, test } from "@playwright/test";
import { createHash, randomBytes } from "node:crypto";
import { login, screenshot, uniqueEndpoint } from "./helpers";

// The firmware page: an admin uploads an image through the plain multipart
// form (the same with and without JavaScript), sees its SHA-256, downloads
// a range of it from its absolute URL, and deletes it.

test("@no-js admin uploads firmware, downloads a range of it and deletes it", async ({ page }, testInfo) => {
  const version = uniqueEndpoint(`fw-${testInfo.project.name}`);
  const bytes = randomBytes(4096);
  const sha256 = createHash("sha256").update(bytes).digest("hex");

  await login(page);
  await page.getByRole("navigation", { name: "Main", exact: true }).getByRole("link", { name: "Firmware" }).click();
  await expect(page.getByRole("heading", { name: "Firmware", level: 1 })).toBeVisible();
  await expect(page.getByText("up to 16 MiB")).toBeVisible();

  await page.getByLabel("Version", { exact: true }).fill(version);
  await page.getByLabel("Firmware file", { exact: true }).setInputFiles({
    name: "image.bin",
    mimeType: "application/octet-stream",
    buffer: bytes,
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page).toHaveURL(/\/firmware\?uploaded=/);
  await expect(page.getByRole("status").filter({ hasText: `Uploaded firmware ${version}.` })).toBeVisible();

  const row = page.getByRole("row").filter({ hasText: version });
  await expect(row).toBeVisible();
  await expect(row).toContainText(sha256);
  await expect(row).toContainText("image.bin");
  await expect(row).toContainText("4 KiB");
  await expect(row).toContainText("0 updates");
  await screenshot(page, testInfo, "firmware");

  // The download link is absolute and public; ask for a range of it.
  const href = await row.getByRole("link", { name: `Download firmware ${version}` }).getAttribute("href");
  expect(href).toMatch(/^http:\/\/[^/]+\/binaries\/.+\.bin$/);
  const partial = await page.request.get(href!, { headers: { Range: "bytes=10-19" } });
  expect(partial.status()).toBe(206);
  expect(partial.headers()["content-range"]).toBe("bytes 10-19/4096");
  expect(partial.headers()["etag"]).toBe(`"${sha256}"`);
  expect(Buffer.compare(await partial.body(), bytes.subarray(10, 20))).toBe(0);

  // A second upload of the same version is refused, and says why.
  await page.getByLabel("Version", { exact: true }).fill(version);
  await page.getByLabel("Firmware file", { exact: true }).setInputFiles({
    name: "other.bin",
    mimeType: "application/octet-stream",
    buffer: randomBytes(16),
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page).toHaveURL(/\/firmware\?error=/);
  await expect(page.getByRole("alert").filter({ hasText: "exists already" })).toBeVisible();

  await page
    .getByRole("row")
    .filter({ hasText: version })
    .getByRole("button", { name: `Delete firmware ${version}` })
    .click();
  await expect(page.getByRole("row").filter({ hasText: version })).toHaveCount(0);
  expect((await page.request.get(href!)).status()).toBe(404);
});
