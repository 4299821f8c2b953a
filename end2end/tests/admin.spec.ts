import { Browser, Page, TestInfo, expect, test } from "@playwright/test";
import { login, uniqueEndpoint } from "./helpers";

// Administration: users and roles, tokens, resource types, the own account.
// Names are unique per test, so the tests never see each other's data, and
// no test changes the admin's password or a seeded type other tests use.

/** A full-page screenshot, kept with the test's results. */
async function screenshot(page: Page, testInfo: TestInfo, name: string) {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: "image/png" });
}

/** The admin creates a user through the users page. */
async function createUser(page: Page, username: string, password: string, role: string) {
  await page.goto("/users");
  await expect(page.getByRole("heading", { name: "Users", level: 1 })).toBeVisible();
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Initial password", { exact: true }).fill(password);
  await page.getByRole("combobox", { name: "Role", exact: true }).selectOption(role);
  await page.getByRole("button", { name: "Create user" }).click();
  const row = page.getByRole("row").filter({ hasText: username });
  await expect(row).toBeVisible();
  await expect(row.getByRole("cell").nth(2)).toHaveText("active");
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

test("admin creates a viewer, who gets no admin pages and whose forged post is refused", async ({
  page,
  browser,
}, testInfo) => {
  const username = uniqueEndpoint("viewer");
  const password = `pw-${Date.now()}-viewer`;
  await login(page);
  await createUser(page, username, password, "viewer");
  await expect(page.getByRole("row").filter({ hasText: username }).getByLabel(`Role of ${username}`)).toHaveValue(
    "viewer",
  );
  await screenshot(page, testInfo, "users");

  const viewer = await signInFresh(browser, testInfo, username, password);
  await expect(viewer.getByTestId("current-user")).toHaveText(username);
  const nav = viewer.getByRole("navigation", { name: "Main", exact: true });
  await expect(nav.getByRole("link", { name: "Resource types" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "My account" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Users" })).toHaveCount(0);
  await expect(nav.getByRole("link", { name: "API tokens" })).toHaveCount(0);

  // Typing the address does not help: the server refuses the data.
  const response = await viewer.goto("/users");
  expect(response?.status()).toBe(403);
  await expect(viewer.getByRole("alert")).toContainText("You need the admin role");
  await expect(viewer.getByRole("button", { name: "Create user" })).toHaveCount(0);

  // Nor does calling the server function directly.
  const forged = uniqueEndpoint("forged");
  const status = await viewer.evaluate(async (name) => {
    const res = await fetch("/sfn/users/create", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ username: name, password: "forged-password-1", role: "admin" }),
    });
    return res.status;
  }, forged);
  expect(status).toBe(403);
  await page.reload();
  await expect(page.getByRole("row").filter({ hasText: username })).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: forged })).toHaveCount(0);
  await viewer.context().close();
});

test("@no-js admin creates a token, sees it once, and revokes it", async ({ page }, testInfo) => {
  const name = uniqueEndpoint("token");
  await login(page);
  await page.goto("/tokens");
  await page.getByLabel("Token name").fill(name);
  await page.getByLabel("Scope").selectOption("api");
  await page.getByRole("button", { name: "Create token" }).click();
  const shown = page.getByTestId("new-token");
  await expect(shown).toHaveText(/^\s*fxa_[0-9a-f]{48}\s*$/);
  const secret = (await shown.textContent())!.trim();
  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row).toBeVisible();
  await expect(row.getByRole("cell").nth(1)).toHaveText("api");
  await screenshot(page, testInfo, "tokens");

  const api = () => page.request.get("/api/v1/endpoints", { headers: { Authorization: `Bearer ${secret}` } });
  expect((await api()).status()).toBe(200);

  // Shown once: a reload does not show it again.
  await page.reload();
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  await expect(page.getByText(secret)).toHaveCount(0);

  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  await expect(row).toContainText("revoked");
  await expect.poll(async () => (await api()).status()).toBe(401);
});

test("@no-js admin adds a custom type, renames it, and finds it by search", async ({ page }, testInfo) => {
  // A custom object of its own: seeded types stay as the other tests expect.
  const object = String(30000 + Math.floor(Math.random() * 30000));
  const path = `/${object}/1`;
  const name = uniqueEndpoint("tank");
  const renamed = `${name}-renamed`;
  await login(page);
  await page.goto("/resource-types");
  await expect(page.getByRole("heading", { name: "Resource types", level: 1 })).toBeVisible();
  await page.getByLabel("Object ID").fill(object);
  await page.getByLabel("Resource ID").fill("1");
  await page.getByLabel("Type name").fill(name);
  await page.getByLabel("Data type").selectOption("FLOAT");
  await page.getByLabel("Unit", { exact: true }).fill("l");
  await page.getByRole("button", { name: "Add type" }).click();

  const nameInput = page.getByLabel(`Name of ${path}`);
  await expect(nameInput).toHaveValue(name);
  await nameInput.fill(renamed);
  await page.getByLabel(`Unit of ${path}`).fill("m3");
  await page.getByRole("button", { name: `Save ${path}` }).click();
  // The data API knows the type by its new name.
  await expect.poll(async () => (await page.request.get(`/leshan_api/data/${renamed}/`)).status()).toBe(200);

  await page.getByRole("searchbox", { name: "Search" }).fill(renamed);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await expect(page).toHaveURL(/\?q=/);
  const row = page.getByRole("row").filter({ has: page.getByLabel(`Name of ${path}`) });
  await expect(row.getByLabel(`Name of ${path}`)).toHaveValue(renamed);
  await expect(row.getByLabel(`Unit of ${path}`)).toHaveValue("m3");
  await expect(row).toContainText("custom");
  await expect(page.getByRole("row")).toHaveCount(2);
  await screenshot(page, testInfo, "resource-types");
});

test("@no-js a user changes their own password, which needs the current one", async ({
  page,
  browser,
}, testInfo) => {
  const username = uniqueEndpoint("self");
  const oldPassword = `pw-${Date.now()}-old`;
  const newPassword = `pw-${Date.now()}-new`;
  await login(page);
  await createUser(page, username, oldPassword, "operator");

  const user = await signInFresh(browser, testInfo, username, oldPassword);
  await user.goto("/account");
  await expect(user.getByRole("heading", { name: "My account", level: 1 })).toBeVisible();
  await user.getByLabel("Current password").fill("not-my-password");
  await user.getByLabel("New password").fill(newPassword);
  await user.getByRole("button", { name: "Change password" }).click();
  await expect(user.getByRole("alert")).toContainText("is not your current password");

  await user.getByLabel("Current password").fill(oldPassword);
  await user.getByLabel("New password").fill(newPassword);
  await user.getByRole("button", { name: "Change password" }).click();
  await expect(user.getByRole("status").filter({ hasText: "Password changed" })).toBeVisible();
  await screenshot(user, testInfo, "account");
  await user.context().close();

  const again = await signInFresh(browser, testInfo, username, newPassword);
  await expect(again.getByTestId("current-user")).toHaveText(username);
  await again.context().close();
});
