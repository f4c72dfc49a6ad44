import AxeBuilder from '@axe-core/playwright';
import { APIRequestContext, expect, Locator, Page, test, TestInfo } from '@playwright/test';
import { jsEnabled, open, settled, signUp, uniqueEmail } from './helpers';

// The file manager as a Globus user uses it: search a collection by name on each side, browse two levels down,
// tick two files and a folder, review and start, follow the task to its end and read its events; a folder that
// needs consent, Grant access, and the listing is back; a long task cancelled after a confirmation; paging through
// 2,000 entries; a bad path. Each project links its own demo identity (Rosalind with JavaScript on, Lise with it
// off), which own no collections: they use the public ones.
const demo = `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 3210) + 1}/demo/control`;

async function control(request: APIRequestContext, path: string, data: object = {}): Promise<void> {
  const res = await request.post(`${demo}${path}`, { data });
  expect(res.ok()).toBeTruthy();
}

async function allowAs(page: Page, who: string): Promise<void> {
  await expect(page.getByRole('heading', { name: /Allow onbehalf to act for you/ })).toBeVisible();
  await page.getByLabel(new RegExp(who)).check();
  await page.getByRole('button', { name: 'Allow' }).click();
}

function side(page: Page, title: 'From' | 'To'): Locator {
  return page.getByRole('region', { name: title, exact: true });
}

/** Searches collections on one side and picks the first found; returns its id (from the URL). */
async function pick(page: Page, testInfo: TestInfo, title: 'From' | 'To', text: string): Promise<string> {
  const pane = side(page, title);
  await pane.getByLabel(`Find a collection (${title})`).fill(text);
  await pane.getByRole('button', { name: 'Search collections' }).click();
  await settled(page, testInfo);
  const found = side(page, title).getByRole('list', { name: `Collections found (${title})` }).getByRole('link');
  await expect(found.first()).toContainText(text);
  await found.first().click();
  const key = title === 'From' ? 'src' : 'dst';
  // With JavaScript the page changes in place, and the address after it.
  await expect(page).toHaveURL(new RegExp(`[?&]${key}=`));
  await expect(side(page, title).locator('.collection-name')).toBeVisible();
  const id = new URL(page.url()).searchParams.get(key);
  expect(id).toBeTruthy();
  return id!;
}

test('pick, browse, select, start, follow, consent, cancel, page, refuse a bad path', async ({ page, request }, testInfo) => {
  test.setTimeout(120_000);
  const [who, sub] = jsEnabled(testInfo)
    ? ['Rosalind Franklin', '0c7e5a29-8d14-4b3f-a6e2-4f9b1d7c3e99']
    : ['Lise Meitner', '9a4d2e6b-1f83-4c57-b0a9-6e3c8f2d5b10'];
  await signUp(page, testInfo, uniqueEmail('files'));
  await page.getByRole('link', { name: 'Linked accounts' }).click();
  await page.getByRole('button', { name: 'Connect Demo Globus' }).click();
  await allowAs(page, who);
  await expect(page).toHaveURL(/\/linked-accounts\?linked=/);

  // Both sides by name, never a UUID typed: the destination first (ticks on the source live until Review).
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Transfer', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Transfer', exact: true })).toBeVisible();
  await settled(page, testInfo);
  const destination = await pick(page, testInfo, 'To', 'Archive');
  await expect(side(page, 'To').locator('.collection-name')).toContainText('Demo University Archive');
  await expect(side(page, 'To').getByText(/Mapped collection · /)).toBeVisible();
  // Each project its own collection: the consent switch below is the demo's, for everyone.
  const source = await pick(page, testInfo, 'From', jsEnabled(testInfo) ? 'Sky Survey 016' : 'Sky Survey 017');
  await expect(side(page, 'From').locator('.collection-name')).toContainText('Demo Observatory Sky Survey');

  // Two levels down, by the folder links; breadcrumbs show the way back.
  await side(page, 'From').getByRole('link', { name: 'datasets/' }).click();
  await side(page, 'From').getByRole('link', { name: '2024/' }).click();
  await expect(side(page, 'From').getByRole('navigation', { name: 'From folder' })).toContainText('Home');
  await expect(side(page, 'From').getByRole('table')).toContainText('run-001.h5');
  await settled(page, testInfo);
  const from = side(page, 'From');
  await from.getByLabel('Select run-001.h5').check();
  await from.getByLabel('Select run-002.h5').check();
  await from.getByLabel('Select calibration').check();
  await from.getByRole('button', { name: 'Review transfer of the ticked items' }).click();
  const review = page.getByRole('region', { name: 'Start a transfer' });
  await expect(review).toContainText(/1 folder, 2 files, [\d.]+ (MB|GB) → Demo University Archive \d+ \/~\//);
  await expect(review.getByLabel(/Delete files in the destination folder/)).not.toBeChecked();
  await review.getByLabel('Label').fill('newcomer copy');
  await review.getByRole('button', { name: 'Start transfer' }).click();

  // The task page: live with JavaScript, by its own refresh without; then the events in words.
  await expect(page.getByRole('heading', { name: 'Transfer “newcomer copy”' })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'Transfer started.' })).toBeVisible();
  await expect(page.locator('.task-status')).toHaveText('SUCCEEDED', { timeout: 25_000 });
  await page.reload();
  const events = page.getByRole('region', { name: 'What happened' });
  await expect(events).toContainText('Every file was copied.');
  await expect(events).toContainText('Globus started the transfer.');
  await page.getByRole('link', { name: '← Your transfers' }).click();
  await expect(page.getByRole('link', { name: 'newcomer copy' })).toBeVisible();

  // A collection that needs consent: Grant access, and the listing comes back.
  await control(request, '/require-consent', { collection_id: source });
  await open(page, testInfo, `/transfer?src=${source}&src_path=%2F~%2Fdatasets%2F`);
  await expect(side(page, 'From').getByRole('alert')).toContainText('This collection needs your consent');
  await side(page, 'From').getByRole('button', { name: 'Grant access' }).click();
  await allowAs(page, who);
  await expect(page).toHaveURL(/\/transfer\?/);
  await expect(side(page, 'From').getByRole('link', { name: '2024/' })).toBeVisible();

  // 2,000 entries: a page of 100 at a time.
  await open(page, testInfo, `/transfer?src=${source}&dst=${destination}&src_path=%2F~%2Fmany-files%2F`);
  await expect(side(page, 'From').getByRole('table', { name: 'Entries 1–100 of 2000' })).toBeVisible();
  await side(page, 'From').getByRole('link', { name: 'Next' }).click();
  await expect(side(page, 'From').getByRole('table', { name: 'Entries 101–200 of 2000' })).toBeVisible();
  await expect(side(page, 'From').getByText('Page 2 of 20')).toBeVisible();
  if (jsEnabled(testInfo)) {
    // With JavaScript: shift-click ticks a range, and moving around does not reload the page (a mark set on the
    // window survives), keeping the ticks while the From folder stays the same.
    await page.evaluate(() => ((window as unknown as { stay: number }).stay = 1));
    const from = side(page, 'From');
    await from.getByLabel('Select sample-0101.dat').check();
    await from.getByLabel('Select sample-0105.dat').click({ modifiers: ['Shift'] });
    await expect(from.locator('input[name=sel]:checked')).toHaveCount(5);
    await side(page, 'To').getByLabel('Path').fill('/~/datasets/');
    await side(page, 'To').getByRole('button', { name: 'Go' }).click();
    await expect(side(page, 'To').getByRole('navigation', { name: 'To folder' })).toContainText('datasets');
    await expect(side(page, 'From').locator('input[name=sel]:checked')).toHaveCount(5);
    await side(page, 'From').getByRole('link', { name: 'Sort by size' }).click();
    await expect(page).toHaveURL(/src_sort=size/);
    await expect(side(page, 'From').getByRole('link', { name: 'Sort by size' })).toContainText('▲');
    expect(await page.evaluate(() => (window as unknown as { stay?: number }).stay)).toBe(1);
    await page.goBack();
    await expect(page).not.toHaveURL(/src_sort=size/);
  }

  // Performance (BENCHMARKS.md): the 2,000-entry folder sorted by size, its server time (navigation timing, request
  // start to first byte, on loopback: the page is sent whole once rendered) ≤ 50 ms as a median of 5 loads; with
  // JavaScript on, no long task over 200 ms while the page loads and hydrates.
  await page.addInitScript(() => {
    (window as unknown as { longest: number }).longest = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const w = window as unknown as { longest: number };
        w.longest = Math.max(w.longest, entry.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  });
  // The baseline, in the same run: the same page on a folder of 3 entries.
  async function serverTimes(path: string): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      await open(page, testInfo, `/transfer?src=${source}&dst=${destination}&src_path=${path}&src_sort=size&src_order=desc`);
      times.push(
        await page.evaluate(() => {
          const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
          return nav.responseStart - nav.requestStart;
        }),
      );
      await page.waitForTimeout(300);
      longest = Math.max(longest, await page.evaluate(() => (window as unknown as { longest: number }).longest));
    }
    return times.sort((a, b) => a - b);
  }
  let longest = 0;
  const small = await serverTimes('%2F~%2Fdatasets%2F');
  const times = await serverTimes('%2F~%2Fmany-files%2F');
  const shown = (t: number[]) => `median ${t[2].toFixed(1)} ms [${t.map((x) => x.toFixed(1)).join(', ')}]`;
  console.log(
    `file manager (${testInfo.project.name}): server time, 2,000-entry folder ${shown(times)}; ` +
      `3-entry folder ${shown(small)}; longest task ${longest.toFixed(0)} ms`,
  );
  expect(times[2]).toBeLessThanOrEqual(50);
  expect(longest).toBeLessThanOrEqual(200);

  // A bad path: the field's rule, no listing.
  await settled(page, testInfo);
  await side(page, 'From').getByLabel('Path').fill('/~/../etc/');
  await side(page, 'From').getByRole('button', { name: 'Go' }).click();
  await expect(side(page, 'From').getByRole('alert')).toContainText('has no “..”');

  // A long task, cancelled after a confirmation.
  await control(request, '/task-duration', { millis: 3_600_000, identity: sub });
  try {
    await open(
      page,
      testInfo,
      `/transfer?src=${source}&src_path=%2F~%2F&dst=${destination}&review=1&sel=notes.txt`,
    );
    await page.getByRole('region', { name: 'Start a transfer' }).getByLabel('Label').fill('long copy');
    await page.getByRole('button', { name: 'Start transfer' }).click();
    await expect(page.locator('.task-status')).toHaveText('ACTIVE');
    await page.getByRole('link', { name: 'Cancel transfer…' }).click();
    await expect(page.getByText('Cancel “long copy”?')).toBeVisible();
    await page.getByRole('button', { name: 'Yes, cancel the transfer' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Transfer cancelled.' })).toBeVisible();
    await expect(page.locator('.task-status')).toHaveText('FAILED');
    await expect(page.getByRole('region', { name: 'What happened' })).toContainText('The transfer was cancelled.');
  } finally {
    await control(request, '/task-duration', { millis: 3_000, identity: sub });
  }

  // Both sides on a 360 px phone: stacked, nothing scrolls sideways; no serious accessibility violation.
  await open(page, testInfo, `/transfer?src=${source}&src_path=%2F~%2Fdatasets%2F2024%2F`);
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll('main *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5)
      .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`),
  );
  expect(overflow, `wider than the screen: ${wide.join('; ')}`).toBeLessThanOrEqual(0);
  await page.screenshot({ path: testInfo.outputPath('file_manager_360.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });
  if (jsEnabled(testInfo)) {
    const results = await new AxeBuilder({ page }).analyze();
    const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.map((v) => `${v.id} — ${v.help}`)).toEqual([]);
  }
  await page.screenshot({ path: testInfo.outputPath('file_manager.png'), fullPage: true });
});
