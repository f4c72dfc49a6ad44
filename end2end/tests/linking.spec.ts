import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { open, signUp, uniqueEmail, jsEnabled } from './helpers';

// The built-in demo provider runs next to the app (see playwright.config.ts); its consent page is plain HTML.
test('connect a demo Globus account through the consent page and see it listed', async ({ page }, testInfo) => {
  // One external identity belongs to one local user, and both projects share the app's database: each project
  // signs in at the provider as its own demo identity.
  const [who, username] = jsEnabled(testInfo)
    ? ['Hedy Lamarr', 'hedy@demo.globus.org']
    : ['Radia Perlman', 'radia@demo.globus.org'];
  const escaped = username.replace(/\./g, '\\.');
  await signUp(page, testInfo, uniqueEmail('link'), 'Ada');
  await page.getByRole('link', { name: 'Linked accounts' }).click();
  await expect(page.getByRole('heading', { name: 'Linked accounts', level: 1 })).toBeVisible();
  await expect(page.getByText('No account linked yet.')).toBeVisible();
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();

  // At the provider: choose who to be, then Allow.
  await expect(page.getByRole('heading', { name: /Allow onbehalf to act for you/ })).toBeVisible();
  await page.getByLabel(new RegExp(who)).check();
  await page.screenshot({ path: testInfo.outputPath('demo_consent.png'), fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();

  await expect(page).toHaveURL(/\/linked-accounts\?linked=/);
  await expect(page.getByRole('status')).toContainText(`Linked Demo Globus account ${username}`);
  const card = page.getByRole('article', { name: new RegExp(`Demo Globus account ${escaped}`) });
  await expect(card.getByText('Active')).toBeVisible();
  await expect(card.getByRole('rowheader', { name: 'transfer.api.globus.org' })).toBeVisible();
  await expect(card.getByText('urn:globus:auth:scope:transfer.api.globus.org:all')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Connect another Demo Globus account' })).toBeVisible();
  if (jsEnabled(testInfo)) {
    const results = await new AxeBuilder({ page }).analyze();
    const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.map((v) => `${v.id} — ${v.help}`)).toEqual([]);
  }
  await page.screenshot({ path: testInfo.outputPath('linked_accounts.png'), fullPage: true });
});

test('denying consent shows a clear message and links nothing', async ({ page }, testInfo) => {
  await signUp(page, testInfo, uniqueEmail('deny'));
  await open(page, testInfo, '/linked-accounts');
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page).toHaveURL(/\/linked-accounts\?error=access_denied/);
  await expect(page.getByRole('alert')).toHaveText('You declined access at Demo Globus, so nothing was linked.');
  await expect(page.getByText('No account linked yet.')).toBeVisible();
});
