import { expect, Page, TestInfo } from '@playwright/test';

export const PASSWORD = 'correct horse battery';

export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.org`;
}

export function jsEnabled(testInfo: TestInfo): boolean {
  return testInfo.project.use.javaScriptEnabled !== false;
}

/** Opens `path` and, with JavaScript on, waits until the page is hydrated (so forms go through fetch). */
export async function open(page: Page, testInfo: TestInfo, path: string): Promise<void> {
  await page.goto(path);
  await settled(page, testInfo);
}

/** With JavaScript on, waits for hydration of the page now shown. */
export async function settled(page: Page, testInfo: TestInfo): Promise<void> {
  if (jsEnabled(testInfo)) {
    await expect(page.locator('html[data-hydrated]')).toHaveCount(1);
  }
}

/**
 * Clicks a submit button and checks how the form was sent: by the hydrated app (fetch) with JavaScript on, as a
 * plain HTML form post (document) with it off. Without this a page that failed to hydrate would still pass.
 */
export async function submit(page: Page, testInfo: TestInfo, button: string, endpoint: string): Promise<void> {
  const request = page.waitForRequest((r) => r.url().includes(`/api/${endpoint}`) && r.method() === 'POST');
  await page.getByRole('button', { name: button, exact: true }).click();
  expect((await request).resourceType()).toBe(jsEnabled(testInfo) ? 'fetch' : 'document');
}

export async function signUp(page: Page, testInfo: TestInfo, email: string, name = ''): Promise<void> {
  await open(page, testInfo, '/sign-up');
  await page.getByLabel('Email').fill(email);
  if (name) await page.getByLabel('Name').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password').fill(PASSWORD);
  await submit(page, testInfo, 'Create account', 'sign_up');
  await expect(page).toHaveURL(/\/account$/);
  await settled(page, testInfo);
}

export async function signIn(page: Page, testInfo: TestInfo, email: string, password: string): Promise<void> {
  await open(page, testInfo, '/sign-in');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await submit(page, testInfo, 'Sign in', 'sign_in');
}

export async function signOut(page: Page, testInfo: TestInfo): Promise<void> {
  await submit(page, testInfo, 'Sign out', 'sign_out');
  await expect(page).toHaveURL(/\/$/);
  await settled(page, testInfo);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sign in' })).toBeVisible();
}
