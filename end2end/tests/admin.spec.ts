import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import AxeBuilder from '@axe-core/playwright';
import { expect, Page, test, TestInfo } from '@playwright/test';
import { jsEnabled, open, PASSWORD, settled, signIn, signOut, signUp, uniqueEmail } from './helpers';

// The admin's journey: find a user's link, read its history, force a disconnect with a reason, find it in the
// audit log; disable the user and enable them again. Each project links its own demo identity (Mary with
// JavaScript on, Dorothy with it off), the other specs use the other four.
const demo = `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 3210) + 1}/demo/control`;

/** Runs the command line against the database the test server uses (see playwright.config); what it printed. */
function cli(args: string[], input = ''): string {
  return execFileSync('./target/release/onbehalf', args, {
    cwd: '..',
    input,
    encoding: 'utf8',
    env: {
      ...process.env,
      ONBEHALF_DATABASE__URL: 'sqlite://target/e2e/onbehalf.db',
      ONBEHALF_WEBHOOKS__ALLOW_HTTP_LOOPBACK: 'true',
      RUST_LOG: 'warn',
    },
  });
}

/** Creates an admin with the command line. */
function createAdmin(email: string): void {
  cli(['user', 'add', '--email', email, '--name', 'Audrey Admin', '--admin'], `${PASSWORD}\n`);
}

async function noSeriousViolations(page: Page, testInfo: TestInfo): Promise<void> {
  if (!jsEnabled(testInfo)) return;
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id} — ${v.help}`)).toEqual([]);
}

test('find a link, read its history, force a disconnect, see it audited; disable and enable the user', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(90_000);
  const [who, username] = jsEnabled(testInfo)
    ? ['Mary Jackson', 'mary@demo.globus.org']
    : ['Dorothy Vaughan', 'dorothy@demo.globus.org'];
  const userEmail = uniqueEmail('member');
  const adminEmail = uniqueEmail('admin');
  createAdmin(adminEmail);

  // A user links an account, then leaves; a user has no way into the admin area.
  await signUp(page, testInfo, userEmail);
  await page.goto('/admin');
  await expect(page.getByRole('heading', { name: 'Administrators only' })).toBeVisible();
  await page.getByRole('link', { name: 'Linked accounts' }).click();
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();
  await page.getByLabel(new RegExp(who)).check();
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/linked-accounts\?linked=/);
  await settled(page, testInfo);
  await signOut(page, testInfo);

  // The admin finds the user's link from the dashboard.
  await signIn(page, testInfo, adminEmail, PASSWORD);
  await expect(page).toHaveURL(/\/account$/);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Admin', exact: true })).toBeVisible();
  await noSeriousViolations(page, testInfo);
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Linked accounts' }).click();
  await page.getByLabel('User (email, id or external id)').fill(userEmail);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/\/admin\/accounts\?.*user=/);
  const rows = page.getByRole('table').getByRole('row');
  await expect(rows).toHaveCount(2);
  await noSeriousViolations(page, testInfo);
  await page.getByRole('link', { name: username, exact: true }).click();

  // Its detail: the identity, token sets (metadata only) and history.
  await expect(page.getByRole('heading', { name: `Demo Globus · ${username}` })).toBeVisible();
  const sets = page.getByRole('table', { name: /Token sets/ });
  await expect(sets.getByRole('rowheader', { name: 'transfer.api.globus.org' })).toBeVisible();
  await expect(page.getByRole('cell', { name: 'account_linked' })).toBeVisible();
  await noSeriousViolations(page, testInfo);
  await page.screenshot({ path: testInfo.outputPath('admin_account.png'), fullPage: true });

  // Force disconnect: a reason is required, then the link is gone and revoked at the provider.
  const countersBefore = await (await request.get(`${demo}/counters`)).json();
  await page.getByLabel('Reason (shown to the user)').fill('Leaving the project');
  await page.getByRole('button', { name: 'Disconnect', exact: true }).click();
  await expect(page).toHaveURL(/\/admin\/accounts\?user=\d+&disconnected=demo/);
  await expect(page.getByRole('status')).toContainText(/Disconnected\. Demo Globus revoked \d+ tokens?\./);
  await expect(page.getByText('No linked account matches these filters.')).toBeVisible();
  const countersAfter = await (await request.get(`${demo}/counters`)).json();
  expect(countersAfter.revocations).toBeGreaterThan(countersBefore.revocations);

  // The audit log has it, by the admin, about the user, with the reason.
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('About user (email or id)').fill(userEmail);
  await page.getByLabel('Action').selectOption('account_disconnected');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=account_disconnected/);
  const event = page.getByRole('row').filter({ hasText: 'Leaving the project' });
  await expect(event).toHaveCount(1);
  await expect(event).toContainText(adminEmail);
  await expect(event).toContainText(`An administrator disconnected Demo Globus account ${username}`);
  await expect(page.getByRole('link', { name: 'CSV' })).toHaveAttribute('href', /format=csv&.*action=account_disconnected/);
  await noSeriousViolations(page, testInfo);
  await page.screenshot({ path: testInfo.outputPath('admin_audit.png'), fullPage: true });

  // Disable the user: they cannot sign in. Enable them again.
  await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Email, name or external id starts with').fill(userEmail);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('button', { name: `Disable ${userEmail}` }).click();
  await expect(page.getByRole('status')).toContainText('Saved.');
  await expect(page.getByRole('row').filter({ hasText: userEmail })).toContainText('Disabled');
  await noSeriousViolations(page, testInfo);
  await signOut(page, testInfo);
  await signIn(page, testInfo, userEmail, PASSWORD);
  await expect(page.getByRole('alert')).toContainText('This account is disabled.');
  await signIn(page, testInfo, adminEmail, PASSWORD);
  await expect(page).toHaveURL(/\/account$/);
  await open(page, testInfo, `/admin/users?q=${encodeURIComponent(userEmail)}`);
  await page.getByRole('button', { name: `Enable ${userEmail}` }).click();
  await expect(page.getByRole('row').filter({ hasText: userEmail })).toContainText('Active');
  await signOut(page, testInfo);
  await signIn(page, testInfo, userEmail, PASSWORD);
  await expect(page).toHaveURL(/\/account$/);
});

test('see webhook endpoints, send a test event, read its delivery, redeliver it, disable and enable', async ({
  page,
}, testInfo) => {
  test.setTimeout(60_000);
  // A receiver of our own on loopback, registered with the command line (the server allows loopback receivers in
  // these tests: webhooks.allow_http_loopback in playwright.config).
  const received: { id: string; signature: string }[] = [];
  // Only test events are counted: the other specs' changes (running in parallel) reach every endpoint that wants them.
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (JSON.parse(Buffer.concat(chunks).toString('utf8')).type === 'webhook.test') {
        received.push({ id: String(req.headers['webhook-id']), signature: String(req.headers['webhook-signature']) });
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  try {
    const added = cli([
      'webhook', 'add', '--url', url, '--event', 'account.revocation_failed',
      '--description', `E2E receiver (${testInfo.project.name})`,
    ]);
    expect(added).toContain('signing secret (shown once, store it now): whsec_');
    const adminEmail = uniqueEmail('hooks-admin');
    createAdmin(adminEmail);
    await signIn(page, testInfo, adminEmail, PASSWORD);
    await expect(page).toHaveURL(/\/account$/);

    await open(page, testInfo, '/admin');
    await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Webhooks' }).click();
    await expect(page.getByRole('heading', { name: 'Webhooks', exact: true })).toBeVisible();
    await noSeriousViolations(page, testInfo);
    await page.getByRole('link', { name: url }).click();
    await expect(page.getByRole('heading', { name: url })).toBeVisible();

    await page.getByRole('button', { name: 'Send test event' }).click();
    await expect(page.getByRole('status')).toContainText('Test event queued.');
    await expect.poll(() => received.length).toBe(1);
    expect(received[0].signature).toMatch(/^v1,/);
    await expect(async () => {
      await page.reload();
      await expect(page.getByRole('table', { name: 'Recent deliveries' })).toContainText('Delivered');
    }).toPass();
    await noSeriousViolations(page, testInfo);

    // The delivery in full: the request with the signature redacted, and the answer.
    await page.getByRole('link', { name: 'webhook.test' }).click();
    await expect(page.getByRole('heading', { name: /Delivery of evt_/ })).toBeVisible();
    await expect(page.locator('body')).toContainText('webhook-signature: v1,… (redacted)');
    await expect(page.locator('body')).not.toContainText(received[0].signature);
    await expect(page.getByRole('heading', { name: /Attempt 1: HTTP 204/ })).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('admin_webhook.png'), fullPage: true });

    await page.getByRole('button', { name: `Redeliver ${received[0].id}` }).click();
    await expect(page.getByRole('status')).toContainText('1 delivery queued.');
    await expect.poll(() => received.length).toBe(2);
    expect(received[1].id).toBe(received[0].id);

    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    await expect(page.getByRole('status')).toContainText('Disabled: nothing is sent to it.');
    await expect(page.locator('.facts')).toContainText('disabled by an admin');
    await page.getByRole('button', { name: 'Enable', exact: true }).click();
    await expect(page.getByRole('status')).toContainText('Enabled: deliveries go out again.');
  } finally {
    server.close();
  }
});
