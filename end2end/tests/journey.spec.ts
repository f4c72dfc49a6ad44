import AxeBuilder from '@axe-core/playwright';
import { APIRequestContext, expect, Page, test, TestInfo } from '@playwright/test';
import { jsEnabled, open, settled, signUp, submit, uniqueEmail } from './helpers';

// The whole journey of an end user against the demo provider: connect, act, survive an expired token and a
// revoked grant, grant a collection's consent, disconnect. Each project links its own demo identity (one identity
// belongs to one local user; the linking spec uses Hedy and Radia, the example platform Grace and Alan).
const demo = `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 3210) + 1}/demo/control`;

async function control(request: APIRequestContext, path: string, data: object = {}): Promise<void> {
  const res = await request.post(`${demo}${path}`, { data });
  expect(res.ok()).toBeTruthy();
}

async function revocations(request: APIRequestContext): Promise<number> {
  const res = await request.get(`${demo}/counters`);
  return (await res.json()).revocations;
}

async function noSeriousViolations(page: Page, testInfo: TestInfo): Promise<void> {
  if (!jsEnabled(testInfo)) return;
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id} — ${v.help}`)).toEqual([]);
}

/** At the demo provider's consent page: choose who to be, then Allow. */
async function allowAs(page: Page, who: string): Promise<void> {
  await expect(page.getByRole('heading', { name: /Allow onbehalf to act for you/ })).toBeVisible();
  await page.getByLabel(new RegExp(who)).check();
  await page.getByRole('button', { name: 'Allow' }).click();
}

async function lastRefreshed(page: Page, card: ReturnType<Page['getByRole']>): Promise<string> {
  await page.goto('/linked-accounts');
  const time = card.locator('.account-times > div').filter({ hasText: 'Last refreshed' }).locator('time');
  return (await time.getAttribute('datetime')) ?? '';
}

test('connect, act, recover from expiry and revocation, grant consent, disconnect', async ({ page, request }, testInfo) => {
  test.setTimeout(120_000);
  const [who, username, sub] = jsEnabled(testInfo)
    ? ['Ada Lovelace', 'ada@demo.globus.org', '3b9c4a7e-6f21-4d0b-8a5e-1c2f7e9d0a11']
    : ['Katherine Johnson', 'katherine@demo.globus.org', 'e95f2b6c-71d8-4a03-9e4f-3a6c0b8d2e44'];
  const escaped = username.replace(/\./g, '\\.');
  await signUp(page, testInfo, uniqueEmail('journey'));

  // Connect, and see what was granted, in words.
  await page.getByRole('link', { name: 'Linked accounts' }).click();
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();
  await allowAs(page, who);
  await expect(page).toHaveURL(/\/linked-accounts\?linked=/);
  const card = page.getByRole('article', { name: new RegExp(`Demo Globus account ${escaped}`) });
  await expect(card.getByText('Active')).toBeVisible();
  await expect(card.getByText(/Use Globus Transfer: list your collections/)).toBeVisible();
  await expect(card.getByText('Missing')).toHaveCount(0);
  await expect(card.locator('time.countdown').first()).toContainText(/^in /);
  await noSeriousViolations(page, testInfo);
  await page.screenshot({ path: testInfo.outputPath('linked_accounts.png'), fullPage: true });
  // The card on a 360 px phone: everything wraps, nothing scrolls sideways.
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: testInfo.outputPath('linked_accounts_360.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });

  // My endpoints: page 2 and back, then a full-text search, all in the URL.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Actions', exact: true }).click();
  await expect(page.getByText(`Acting as ${username}`)).toBeVisible();
  await expect(page.getByRole('table', { name: /Endpoints 1–25/ })).toBeVisible();
  await page.getByRole('link', { name: 'Next' }).click();
  await expect(page).toHaveURL(/offset=25/);
  await expect(page.getByRole('table', { name: /Endpoints 26–50/ })).toBeVisible();
  await page.getByRole('link', { name: 'Previous' }).click();
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
  await settled(page, testInfo);
  const ids = await mine.locator('tbody code').allTextContents();
  expect(ids.length).toBe(25);
  await page.getByLabel('Source endpoint ID').fill('not-an-id');
  await page.getByLabel('Source path').fill('/~/data/');
  await page.getByLabel('Destination endpoint ID').fill(ids[1]);
  await page.getByLabel('Destination path').fill('/~/copy/');
  await submit(page, testInfo, 'Submit transfer', 'globus_submit_transfer');
  await expect(page.getByRole('alert')).toContainText('An endpoint id is a UUID');
  await page.getByLabel('Source endpoint ID').fill(ids[0]);
  await page.getByLabel('Destination endpoint ID').fill(ids[1]);
  await page.getByLabel('Label').fill('E2E copy');
  await page.getByLabel('Sync level').selectOption('checksum');
  await page.getByLabel(/copy recursively/).check();
  await submit(page, testInfo, 'Submit transfer', 'globus_submit_transfer');
  const submitted = page.getByRole('status').filter({ hasText: 'Transfer submitted: task' });
  await expect(submitted).toBeVisible();
  // The demo's tasks finish after 3 s. With JavaScript on the form answered in place (a fetch, no page load) and
  // the status follows by itself; without it, a reload shows the news.
  if (jsEnabled(testInfo)) {
    await expect(submitted).toContainText('SUCCEEDED', { timeout: 15_000 });
  } else {
    await page.waitForTimeout(3_500);
  }
  await page.reload();
  const task = page.getByRole('table', { name: 'Recent transfers' }).getByRole('row', { name: /E2E copy/ });
  await expect(task).toContainText('SUCCEEDED', { timeout: 15_000 });
  await noSeriousViolations(page, testInfo);
  await page.screenshot({ path: testInfo.outputPath('actions.png'), fullPage: true });

  // The provider expires the access token: listing still works (one refresh behind the scenes), and the card's
  // "Last refreshed" moves.
  const before = await lastRefreshed(page, card);
  await control(request, '/expire-tokens', { identity: sub });
  await page.goto('/actions');
  await expect(page.getByRole('table', { name: /Endpoints 1–25/ })).toBeVisible();
  const after = await lastRefreshed(page, card);
  expect(Date.parse(after)).toBeGreaterThan(Date.parse(before));

  // The provider revokes the grant: the next use finds out, the card says so, Reconnect fixes it.
  await control(request, '/revoke-grants', { identity: sub });
  await page.goto('/actions');
  await expect(page.getByRole('alert').first()).toContainText(/reconnect/i);
  await page.goto('/linked-accounts');
  await expect(card.getByText('Needs reconnect')).toBeVisible();
  await card.getByRole('button', { name: `Reconnect ${username}` }).click();
  await allowAs(page, who);
  await expect(page).toHaveURL(/\/linked-accounts\?relinked=/);
  await expect(card.getByText('Active')).toBeVisible();

  // A collection demands consent: the submission waits, Grant access asks for it, the retry goes through.
  await control(request, '/require-consent', { collection_id: ids[2] });
  await open(page, testInfo, '/actions');
  await page.getByLabel('Source endpoint ID').fill(ids[0]);
  await page.getByLabel('Source path').fill('/~/data/');
  await page.getByLabel('Destination endpoint ID').fill(ids[2]);
  await page.getByLabel('Destination path').fill('/~/consented/');
  await page.getByLabel('Label').fill('E2E consent');
  await submit(page, testInfo, 'Submit transfer', 'globus_submit_transfer');
  // With JavaScript on too, the page that offers the fix loads (Grant access is a trip to the provider anyway).
  await expect(page).toHaveURL(/\/actions\?account=.*transfer=/);
  await expect(page.getByText('not submitted yet')).toBeVisible();
  await page.getByRole('button', { name: 'Grant access' }).first().click();
  await allowAs(page, who);
  await expect(page).toHaveURL(/\/actions\?account=.*transfer=/);
  await settled(page, testInfo);
  await submit(page, testInfo, 'Retry submission', 'globus_submit_transfer');
  await expect(page.getByRole('status').filter({ hasText: 'Transfer submitted: task' })).toBeVisible();

  // Disconnect, after a confirmation: in the card with JavaScript on (no page load), on a page of its own without.
  // The provider's revocation endpoint is down for this identity meanwhile: the account and its tokens are gone from
  // the site at once, the outcome says the provider did not confirm, and "Revocation pending" offers a retry, which
  // works once the provider is back. Then the provider has counted the revocations.
  const revokedBefore = await revocations(request);
  await control(request, '/revocation-fault', { identity: sub });
  await open(page, testInfo, '/linked-accounts');
  await card.getByRole('link', { name: `Disconnect ${username}` }).click();
  const notConfirmed = /but Demo Globus did not confirm revoking \d+ tokens?\./;
  if (jsEnabled(testInfo)) {
    const confirm = page.getByRole('group', { name: 'Confirm disconnect' });
    await expect(confirm.getByRole('button', { name: 'Confirm disconnect' })).toBeFocused();
    await noSeriousViolations(page, testInfo);
    await page.screenshot({ path: testInfo.outputPath('disconnect.png'), fullPage: true });
    const sent = page.waitForRequest((r) => r.url().includes('/api/disconnect_account'));
    await confirm.getByRole('button', { name: 'Confirm disconnect' }).click();
    expect((await sent).resourceType()).toBe('fetch');
    const outcome = page.getByText(notConfirmed);
    await expect(outcome).toBeVisible();
    await expect(outcome).toBeFocused();
    await expect(outcome).toHaveClass(/alert-error/);
    await expect(outcome).toContainText('Reload the page to retry.');
    await expect(page).toHaveURL(/\/linked-accounts$/);
    await open(page, testInfo, '/linked-accounts');
  } else {
    await expect(page.getByRole('heading', { name: `Disconnect Demo Globus account ${username}?` })).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('disconnect.png'), fullPage: true });
    await page.getByRole('button', { name: `Disconnect ${username}` }).click();
    await expect(page).toHaveURL(/\/linked-accounts\?disconnected=demo/);
    await expect(page.getByRole('alert')).toContainText(notConfirmed);
    await expect(page.getByRole('alert')).toContainText('Retry below.');
  }
  await expect(card).toBeHidden();
  const pending = page.getByRole('region', { name: 'Revocation pending' });
  await expect(pending).toContainText(`Demo Globus account ${username}`);
  await noSeriousViolations(page, testInfo);
  const clear = await request.delete(`${demo}/revocation-fault`, { data: { identity: sub } });
  expect(clear.ok()).toBeTruthy();
  await pending.getByRole('button', { name: 'Retry revocation' }).click();
  const done = page.getByText(/Revocation done: \d+ tokens? revoked\./);
  await expect(done).toBeVisible();
  await expect(done).toHaveClass(/alert-success/);
  expect(await revocations(request)).toBeGreaterThanOrEqual(revokedBefore + 2);
  await open(page, testInfo, '/linked-accounts');
  await expect(page.getByRole('region', { name: 'Revocation pending' })).toBeHidden();

  // The activity page tells the story.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByText(`Disconnected Demo Globus account ${username}.`)).toBeVisible();
  await page.getByLabel('Show').selectOption('links');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/kind=links/);
  await expect(page.getByText(`Reconnected Demo Globus account ${username}.`)).toBeVisible();
  await expect(page.getByText(`Granted more access to Demo Globus account ${username}.`)).toBeVisible();
  await page.getByLabel('Show').selectOption('problems');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/kind=problems/);
  await expect(page.getByText(/now needs attention/).first()).toBeVisible();
  await noSeriousViolations(page, testInfo);
  await page.screenshot({ path: testInfo.outputPath('activity.png'), fullPage: true });
});
