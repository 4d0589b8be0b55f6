/**
 * /docs renders in a real browser: headless Chromium (Debian package
 * `chromium`) driven by playwright-core opens the Swagger UI of a listening
 * gateway, the notices endpoint is listed, and a screenshot is taken.
 * LIAISON_UPDATE_SCREENSHOT=1 copies it to docs/img/api-docs.png.
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { repoRoot } from '../broker/core/paths.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

t.test('/docs lists POST /v1/notices in headless Chromium', async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} exists (apt-get install chromium; .ci/run installs it)`);
  if (!existsSync(CHROMIUM)) return;
  const nats = await startTestNats(t);
  // webhook: false — WebhookDeliverer.close() right after start waits ~45 s (reported to the lead); not needed here.
  const g = await startTestGateway(t, nats.url, { webhook: false });
  const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'liaison-browser-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    timeout: 30_000,
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.setDefaultTimeout(30_000);
  const failed: string[] = [];
  page.on('requestfailed', (r) => failed.push(r.url()));
  page.on('pageerror', (e) => failed.push(`pageerror: ${e.message}`));
  const res = await page.goto(`${url}/docs`, { waitUntil: 'load', timeout: 30_000 });
  t.equal(res?.status(), 200);

  // Swagger UI renders one block per operation once it has loaded /docs/json.
  const notices = page.locator('.opblock-post .opblock-summary-path[data-path="/v1/notices"]');
  await notices.waitFor({ state: 'visible', timeout: 30_000 });
  t.equal(await notices.count(), 1, 'POST /v1/notices is listed');
  t.match(await page.locator('.info .title').innerText(), /Liaison broker API/);
  t.match(await page.locator('.opblock-post').first().innerText(), /Post a notice/);
  const paths = await page.locator('.opblock-summary-path').allInnerTexts();
  for (const p of ['/v1/inbox', '/v1/log/checkpoint', '/v1/keys', '/healthz'])
    t.ok(
      paths.some((x) => x.replace(/\u200b/g, '') === p),
      `${p} is listed`,
    );
  t.ok(await page.locator('.btn.authorize').isVisible(), 'the Authorize button (bearer client assertion) is shown');
  t.same(failed, [], 'no request failed and no script error');

  const shot = join(dir, 'api-docs.png');
  await page.screenshot({ path: shot, fullPage: false });
  t.ok(statSync(shot).size > 10_000, 'a screenshot was written');
  if (process.env.LIAISON_UPDATE_SCREENSHOT === '1') copyFileSync(shot, join(repoRoot, 'docs', 'img', 'api-docs.png'));
});
