import { defineConfig } from '@playwright/test';

// Runs against the release build (`cargo leptos build --release`), which is what CI ships: only the release
// build catches a broken wasm-opt. Every test runs twice: hydrated (JavaScript on) and plain HTML forms (off).
const port = Number(process.env.E2E_PORT ?? 3210);
const baseURL = `http://127.0.0.1:${port}`;
// The example platform (tests/platform.spec.ts); the demo provider is on port + 1.
const platformURL = `http://127.0.0.1:${port + 2}`;

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    baseURL,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    { name: 'js-on', use: { javaScriptEnabled: true } },
    { name: 'js-off', use: { javaScriptEnabled: false } },
  ],
  webServer: [
    {
      // A fresh database per run; run from the project root, where target/site is.
      command: 'rm -rf target/e2e && exec ./target/release/onbehalf serve',
      cwd: '..',
      url: `${baseURL}/readyz`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'pipe',
      env: {
        ONBEHALF_SERVER__BIND: `127.0.0.1:${port}`,
        // Every test signs up its users from 127.0.0.1 (the throttle is tested in tests/auth.rs).
        ONBEHALF_AUTH__THROTTLE__SIGN_UPS_PER_CLIENT: '100000',
        ONBEHALF_DATABASE__URL: 'sqlite://target/e2e/onbehalf.db',
        // The built-in demo provider, off the default port so a running development server does not collide.
        ONBEHALF_DEMO__BIND: `127.0.0.1:${port + 1}`,
        // The example platform's webhook endpoint is plain http:// on 127.0.0.1 (registered by its e2e-server).
        ONBEHALF_WEBHOOKS__ALLOW_HTTP_LOOPBACK: 'true',
        RUST_LOG: 'warn',
      },
    },
    {
      // The example platform (examples/platform): a Flask app that links its users' Globus accounts through
      // onbehalf's service API. Its script waits for the server above and creates an API key in its database.
      command: 'exec bash examples/platform/e2e-server',
      cwd: '..',
      url: `${platformURL}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 120_000,
      stdout: 'ignore',
      stderr: 'pipe',
      env: { E2E_PORT: String(port) },
    },
  ],
});
