import { execFileSync } from 'node:child_process';
import { APIRequestContext, expect, Page, test } from '@playwright/test';
import { jsEnabled, settled } from './helpers';

// A research platform's user, end to end: the example platform (examples/platform, a Flask app standing for
// InvenioRDM, started by playwright.config.ts on E2E_PORT + 2) links the user's Globus account through an onbehalf
// connect session, lists their endpoints and submits a transfer through the service API, and sends them back
// through onbehalf to reconnect after the provider revoked the grant, which onbehalf told the platform by webhook
// (examples/platform/e2e-server registers the platform's endpoint). The platform's pages are plain HTML either
// way; onbehalf's and the demo provider's pages in between run with JavaScript on and off.
const port = Number(process.env.E2E_PORT ?? 3210);
const onbehalf = `http://127.0.0.1:${port}`;
const platform = `http://127.0.0.1:${port + 2}`;
const demo = `http://127.0.0.1:${port + 1}/demo/control`;

async function control(request: APIRequestContext, path: string, data: object = {}): Promise<void> {
  const res = await request.post(`${demo}${path}`, { data });
  expect(res.ok()).toBeTruthy();
}

/**
 * A service API key made with the command line against the test server's database (see playwright.config), for the
 * part of the platform's backend that works without its pages (a scheduled job, say).
 */
function serviceKey(name: string): string {
  const out = execFileSync('./target/release/onbehalf', ['apikey', 'create', '--name', name, '--provider', 'demo'], {
    cwd: '..',
    encoding: 'utf8',
    env: { ...process.env, ONBEHALF_DATABASE__URL: 'sqlite://target/e2e/onbehalf.db', RUST_LOG: 'warn' },
  });
  const key = /^key \(shown once, store it now\): (obk_\S+)$/m.exec(out)?.[1];
  expect(key, `no key in the output of apikey create:\n${out}`).toBeTruthy();
  return key as string;
}

/**
 * onbehalf's page at a fresh connect link (opening it uses nothing up): it says what the platform opens for which
 * user, and Continue uses the link and goes on (to the provider's consent, or to the linked accounts).
 */
async function confirm(page: Page, heading: string, user: string): Promise<void> {
  await expect(page).toHaveURL(new RegExp(`^${onbehalf}/connect/[^/?#]+$`));
  await expect(page.getByRole('heading', { name: heading })).toBeVisible();
  await expect(page.locator('body')).toContainText('Example Platform');
  await expect(page.locator('body')).toContainText(user);
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** At the demo provider's consent page (reached through onbehalf): choose who to be, then Allow. */
async function allowAs(page: Page, who: string): Promise<void> {
  await expect(page.getByRole('heading', { name: /Allow onbehalf to act for you/ })).toBeVisible();
  await page.getByLabel(new RegExp(who)).check();
  await page.getByRole('button', { name: 'Allow' }).click();
}

/** Back at the platform's transfer page with the account linked: its endpoints are listed. */
async function endpointsListed(page: Page): Promise<void> {
  await expect(page).toHaveURL(new RegExp(`^${platform}/transfer\\?result=linked&account=`));
  await expect(page.getByRole('status')).toContainText('Your Globus account is linked.');
  const endpoints = page.getByRole('table', { name: 'Your endpoints' });
  await expect(endpoints).toBeVisible();
  expect(await endpoints.locator('tbody tr').count()).toBeGreaterThan(1);
}

test('a platform user links Globus through onbehalf, transfers, and reconnects after a revoked grant', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(90_000);
  // Each project is its own platform user with its own demo identity (one identity belongs to one onbehalf user).
  const [user, who, username, sub] = jsEnabled(testInfo)
    ? ['Ada Lovelace', 'Grace Hopper', 'grace@demo.globus.org', '7e2d1f90-48ac-4b6e-b3d1-95c0a4e8f622']
    : ['Charles Babbage', 'Alan Turing', 'alan@demo.globus.org', 'c41a8e37-0d5b-4f9e-a26c-8b7f3e1d5a33'];

  // The platform's own sign-in, then its Globus page: nothing linked yet.
  await page.goto(`${platform}/`);
  await page.getByRole('button', { name: `Sign in as ${user}` }).click();
  await expect(page.getByText(`Signed in as ${user}`)).toBeVisible();
  await page.getByRole('link', { name: 'Transfer with Globus' }).click();
  await expect(page.getByRole('heading', { name: 'Transfer with Globus' })).toBeVisible();

  // Connect: the platform's connect session sends the browser to onbehalf, which asks to Continue and goes on to the
  // provider's consent; at the end a page of onbehalf's moves the browser back to the platform with the new account.
  await page.getByRole('button', { name: 'Connect your Globus account' }).click();
  await confirm(page, 'Link an account', user);
  await allowAs(page, who);
  await endpointsListed(page);
  const account = new URL(page.url()).searchParams.get('account') ?? '';
  expect(account).not.toBe('');
  await page.screenshot({ path: testInfo.outputPath('platform_linked.png'), fullPage: true });

  // A transfer between two of the user's endpoints, through onbehalf's `transfer` action.
  await page.getByLabel('Source path').fill('/~/data/');
  await page.getByLabel('Destination path').fill('/~/copy/');
  await page.getByLabel('Label').fill('Platform copy');
  await page.getByRole('button', { name: 'Start transfer' }).click();
  await expect(page.getByRole('status')).toContainText(/Transfer submitted: task [0-9a-f-]{36}\./);

  // The provider revokes the grant. The platform's backend, away from its pages, lists the user's transfers through
  // onbehalf: Globus refuses the token and then its refresh, so onbehalf answers needs_reconnect, and tells the
  // platform by webhook (POST /webhooks, signed).
  await control(request, '/revoke-grants', { identity: sub });
  const key = serviceKey(`e2e-platform-job-${testInfo.project.name}-${Date.now()}`);
  const tasks = await request.post(`${onbehalf}/api/v1/accounts/${encodeURIComponent(account)}/actions/tasks`, {
    headers: { Authorization: `Bearer ${key}` },
    data: { params: {} },
  });
  expect(tasks.status()).toBe(409);
  expect((await tasks.json()).error).toBe('needs_reconnect');

  // The transfer page says so from the webhook alone, without asking onbehalf (a page that asks shows "Globus no
  // longer accepts …" instead); reloaded until the webhook is in.
  await expect(async () => {
    await page.goto(`${platform}/transfer`);
    await expect(page.getByRole('alert').first()).toContainText('Your Globus account needs reconnecting.', {
      timeout: 1_000,
    });
  }).toPass({ timeout: 10_000 });
  await expect(page.getByRole('table', { name: 'Your endpoints' })).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('platform_reconnect.png'), fullPage: true });
  await page.getByRole('button', { name: 'Reconnect your Globus account' }).click();
  await confirm(page, 'Link an account', user);
  await allowAs(page, who);
  await endpointsListed(page);

  // Manage linked accounts: onbehalf's page of this user's accounts (and only theirs), then back to the platform.
  await page.getByRole('button', { name: 'Manage linked accounts' }).click();
  await confirm(page, 'Manage your linked accounts', user);
  await expect(page).toHaveURL(`${onbehalf}/linked-accounts`);
  await settled(page, testInfo);
  const escaped = username.replace(/\./g, '\\.');
  const card = page.getByRole('article', { name: new RegExp(`Demo Globus account ${escaped}`) });
  await expect(card.getByText('Active')).toBeVisible();
  await expect(page.getByRole('article')).toHaveCount(1);
  await page.getByRole('button', { name: 'Back to Example Platform' }).click();
  await expect(page).toHaveURL(`${platform}/transfer`);
  await expect(page.getByRole('table', { name: 'Your endpoints' })).toBeVisible();
});
