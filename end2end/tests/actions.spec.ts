import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { jsEnabled, signUp, uniqueEmail } from './helpers';

// Acting for the user at the demo provider: list endpoints (paging and search in the URL), submit a transfer and
// see its task. Each project links its own demo identity (one identity belongs to one local user; the linking
// spec uses Grace and Alan).
test('list my endpoints, page and search them, and submit a transfer', async ({ page }, testInfo) => {
  const [who, username] = jsEnabled(testInfo)
    ? ['Ada Lovelace', 'ada@demo.globus.org']
    : ['Katherine Johnson', 'katherine@demo.globus.org'];
  await signUp(page, testInfo, uniqueEmail('actions'));
  await page.getByRole('link', { name: 'Linked accounts' }).click();
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();
  await page.getByLabel(new RegExp(who)).check();
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/linked-accounts\?linked=/);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Actions', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Actions', level: 1 })).toBeVisible();
  await expect(page.getByText(`Acting as ${username}`)).toBeVisible();
  const endpoints = page.getByRole('table', { name: /Endpoints 1–25/ });
  await expect(endpoints).toBeVisible();

  // Page 2, kept in the URL.
  await page.getByRole('link', { name: 'Next' }).click();
  await expect(page).toHaveURL(/offset=25/);
  await expect(page.getByRole('table', { name: /Endpoints 26–50/ })).toBeVisible();
  await page.getByRole('link', { name: 'Previous' }).click();
  await expect(page.getByRole('table', { name: /Endpoints 1–25/ })).toBeVisible();

  // Search every visible endpoint.
  await page.getByLabel('Show').selectOption('all');
  await page.getByLabel('Search').fill('cluster');
  await page.getByRole('button', { name: 'Search endpoints' }).click();
  await expect(page).toHaveURL(/scope=all&q=cluster/);
  await expect(page.getByRole('table', { name: /Endpoints 1–/ })).toBeVisible();

  // A transfer between two of my endpoints; a bad id first gets a clear message.
  await page.getByLabel('Show').selectOption('my-endpoints');
  await page.getByLabel('Search').fill('');
  await page.getByRole('button', { name: 'Search endpoints' }).click();
  await expect(page).toHaveURL(/scope=my-endpoints/);
  const mine = page.getByRole('table', { name: /Endpoints 1–25/ });
  await expect(mine).toBeVisible();
  const ids = await mine.locator('tbody code').allTextContents();
  expect(ids.length).toBe(25);
  await page.getByLabel('Source endpoint ID').fill('not-an-id');
  await page.getByLabel('Source path').fill('/~/data/');
  await page.getByLabel('Destination endpoint ID').fill(ids[1]);
  await page.getByLabel('Destination path').fill('/~/copy/');
  await page.getByRole('button', { name: 'Submit transfer' }).click();
  await expect(page.getByRole('alert')).toContainText('An endpoint id is a UUID');

  await page.getByLabel('Source endpoint ID').fill(ids[0]);
  await page.getByLabel('Destination endpoint ID').fill(ids[1]);
  await page.getByLabel('Label').fill('E2E copy');
  await page.getByLabel('Sync level').selectOption('checksum');
  await page.getByLabel(/copy recursively/).check();
  await page.getByRole('button', { name: 'Submit transfer' }).click();
  await expect(page.getByRole('status')).toContainText('Transfer submitted: task');
  await expect(page.getByRole('table', { name: 'Recent transfers' }).getByRole('rowheader', { name: 'E2E copy' })).toBeVisible();

  if (jsEnabled(testInfo)) {
    const results = await new AxeBuilder({ page }).analyze();
    const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.map((v) => `${v.id} — ${v.help}`)).toEqual([]);
  }
  await page.screenshot({ path: testInfo.outputPath('actions.png'), fullPage: true });
});
