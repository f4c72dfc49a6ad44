import { expect, test } from '@playwright/test';
import { PASSWORD, jsEnabled, open, settled, signIn, signOut, signUp, submit, uniqueEmail } from './helpers';

test('sign up, sign out, sign in, change password', async ({ page }, testInfo) => {
  const email = uniqueEmail('journey');
  await signUp(page, testInfo, email, 'Ada Lovelace');
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
  await expect(page.getByText(email)).toBeVisible();
  await expect(page.getByRole('link', { name: /Ada Lovelace/ })).toBeVisible();

  await signOut(page, testInfo);

  await signIn(page, testInfo, email, PASSWORD);
  await expect(page).toHaveURL(/\/account$/);
  await settled(page, testInfo);
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();

  const newPassword = 'a new and longer passphrase';
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByLabel('Confirm new password').fill(newPassword);
  await submit(page, testInfo, 'Change password', 'change_password');
  await expect(page.getByRole('status')).toHaveText(/Your password was changed/);

  await signOut(page, testInfo);
  await signIn(page, testInfo, email, PASSWORD);
  await expect(page.getByRole('alert')).toHaveText('That email and password do not match an account.');
  await signIn(page, testInfo, email, newPassword);
  await expect(page).toHaveURL(/\/account$/);
});

test('a wrong current password is explained and changes nothing', async ({ page }, testInfo) => {
  const email = uniqueEmail('wrongcurrent');
  await signUp(page, testInfo, email);
  await page.getByLabel('Current password').fill('not my password');
  await page.getByLabel('New password', { exact: true }).fill('whatever new one');
  await page.getByLabel('Confirm new password').fill('whatever new one');
  await submit(page, testInfo, 'Change password', 'change_password');
  await expect(page.getByRole('alert')).toHaveText('Your current password is not correct.');
  await expect(page.getByLabel('Current password')).toHaveAttribute('aria-invalid', 'true');
});

test('sign-up errors are shown next to the form', async ({ page }, testInfo) => {
  await open(page, testInfo, '/sign-up');
  await page.getByLabel('Email').fill(uniqueEmail('mismatch'));
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password').fill('something else entirely');
  await submit(page, testInfo, 'Create account', 'sign_up');
  await expect(page.getByRole('alert')).toHaveText('The two passwords do not match.');
  await expect(page.getByLabel('Confirm password')).toHaveAttribute('aria-invalid', 'true');
  await expect(page).toHaveURL(/\/sign-up/);
});

test('an existing email cannot sign up twice', async ({ page, browser }, testInfo) => {
  const email = uniqueEmail('twice');
  await signUp(page, testInfo, email);
  const other = await browser.newPage({ javaScriptEnabled: jsEnabled(testInfo) });
  await open(other, testInfo, '/sign-up');
  await other.getByLabel('Email').fill(email.toUpperCase());
  await other.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await other.getByLabel('Confirm password').fill(PASSWORD);
  await submit(other, testInfo, 'Create account', 'sign_up');
  await expect(other.getByRole('alert')).toHaveText('An account with this email already exists. Sign in instead.');
  await other.close();
});

test('a visitor is sent to sign in and comes back to the page they wanted', async ({ page }, testInfo) => {
  const email = uniqueEmail('next');
  await signUp(page, testInfo, email);
  await signOut(page, testInfo);
  await page.goto('/account');
  await expect(page).toHaveURL(/\/sign-in\?next=\/account$/);
  await settled(page, testInfo);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await submit(page, testInfo, 'Sign in', 'sign_in');
  await expect(page).toHaveURL(/\/account$/);
});

test('the app hydrates without console errors', async ({ page }, testInfo) => {
  test.skip(!jsEnabled(testInfo), 'hydration needs JavaScript');
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  for (const path of ['/', '/sign-in', '/sign-up']) {
    await open(page, testInfo, path);
  }
  expect(errors).toEqual([]);
});
