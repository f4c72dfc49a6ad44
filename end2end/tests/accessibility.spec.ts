import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { jsEnabled, open, signUp, uniqueEmail } from './helpers';

async function expectNoSeriousViolations(page: import('@playwright/test').Page, name: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${name}: ${v.id} — ${v.help}`)).toEqual([]);
}

test('every page passes axe-core without serious or critical violations', async ({ page }, testInfo) => {
  // axe runs inside the page; the markup it checks is the same with JavaScript off.
  test.skip(!jsEnabled(testInfo), 'axe-core needs JavaScript to run in the page');
  for (const path of ['/', '/sign-in', '/sign-up', '/no-such-page']) {
    await open(page, testInfo, path);
    await expectNoSeriousViolations(page, path);
    await page.screenshot({ path: testInfo.outputPath(`page${path.replace(/\//g, '_') || '_home'}.png`), fullPage: true });
  }
  await signUp(page, testInfo, uniqueEmail('axe'), 'Grace Hopper');
  await expectNoSeriousViolations(page, '/account');
  await page.screenshot({ path: testInfo.outputPath('page_account.png'), fullPage: true });
  // Signed-in pages without a linked account (their populated states are checked in the linking and journey specs).
  for (const path of ['/linked-accounts', '/actions', '/activity', '/linked-accounts/disconnect?account=none']) {
    await open(page, testInfo, path);
    await expectNoSeriousViolations(page, path);
  }
});
