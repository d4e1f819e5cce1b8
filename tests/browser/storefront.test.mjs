// storefront.test.mjs - the storefront (web/) in Debian's headless Chromium, driven by
// playwright-core (no browser is downloaded: executablePath is the system's chromium), against
// the multi-process topology through its ingress (tests/browser/run.sh starts it).
//
// Two people in two browser contexts: the seller lists a ticket, the buyer sees it appear without
// a reload, buys it, watches the countdown and pays with the success card; the order shows
// complete. A second ticket is bought by keyboard alone; its declined card shows Stripe's
// message beside the card, then its order runs out the clock (the reservation window, 30 s: see run.sh), shows
// expired, and the ticket is back on the list. "My tickets" shows each ticket's history; sign
// out makes the pages anonymous again. Every API error of the forms is checked beside its field.
//
// Every page is scanned with axe-core (0 serious or critical violations allowed), screenshotted
// at desktop and phone sizes into SCREENSHOT_DIR, and any console error, page error or
// Content-Security-Policy violation fails the run.
//
// Environment: BASE_URL (the ingress), SCREENSHOT_DIR (default var/screenshots), CHROMIUM
// (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const BASE = (process.env.BASE_URL || '').replace(/\/$/, '');
if (!BASE) throw new Error('BASE_URL is required');
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve('var/screenshots');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
mkdirSync(SHOTS, { recursive: true });

const problems = [];
const a11y = [];
let step = 0;
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
const t0 = Date.now();

async function newPerson(browser, name) {
  const context = await browser.newContext({ viewport: SIZES.desktop, baseURL: BASE });
  const page = await context.newPage();
  // Generous waits, not speed checks: under scripts/test.sh's -j2 on a loaded 2-core machine a
  // first page load (debug build, 14 processes) has taken over 15 s.
  page.setDefaultTimeout(30000);
  page.setDefaultNavigationTimeout(60000);
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      problems.push(`${name}: console error: ${m.text()}`);
    }
  });
  return { name, context, page };
}

/** axe-core on the current page; serious/critical violations are collected. */
async function scan(page, label) {
  // evaluate() runs outside the page's CSP, so axe needs no inline script the policy forbids.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      a11y.push(`${label}: ${v.id} (${v.impact}): ${v.help} - ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
    }
  }
}

/** Screenshots at desktop and phone sizes, then back to desktop; and an axe scan. */
async function snap(page, label, { axe = true } = {}) {
  step += 1;
  const name = `${String(step).padStart(2, '0')}-${label}`;
  const started = Date.now();
  if (axe) await scan(page, label);
  await page.mouse.move(0, 0); // no hover effect in the pictures
  const scanned = Date.now();
  for (const [size, vp] of Object.entries(SIZES)) {
    await page.setViewportSize(vp);
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true, animations: 'disabled' });
  }
  await page.setViewportSize(SIZES.desktop);
  log(`  ${name}: axe ${scanned - started} ms, screenshots ${Date.now() - scanned} ms`);
}

const heading = (page) => page.locator('main h1');
async function expectHeading(page, text) {
  // Locators, not waitForFunction: the page's CSP (no 'unsafe-eval') forbids the latter.
  await page.locator('main h1', { hasText: text }).first().waitFor();
}

async function signUp(p, email) {
  const { page } = p;
  await page.goto('/auth/signup');
  await expectHeading(page, 'Sign up');
  // Wrong values: each message beside its field, in the API's words.
  await page.fill('input[name=email]', 'not-an-email');
  await page.fill('input[name=password]', 'ab');
  await page.click('button[type=submit]');
  await page.locator('#auth-email-error').filter({ hasText: 'Email must be valid' }).waitFor();
  await page.locator('#auth-password-error').filter({ hasText: 'Password must be between 4 and 20 characters' }).waitFor();
  assert.equal(await page.getAttribute('input[name=email]', 'aria-invalid'), 'true');
  if (p.name === 'seller') await snap(page, 'signup-errors');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', 'secret');
  await page.click('button[type=submit]');
  await page.locator('#signout').waitFor();
  await expectHeading(page, 'Tickets for sale');
  log(`${p.name} signed up as ${email}`);
}

async function listTicket(p, title, price, { withErrors = false } = {}) {
  const { page } = p;
  await page.click('nav a[href="/tickets/new"]');
  await expectHeading(page, 'Sell a ticket');
  if (withErrors) {
    await page.fill('input[name=title]', '');
    await page.fill('input[name=price]', '-3');
    await page.click('button[type=submit]');
    await page.locator('#ticket-title-error').filter({ hasText: 'Title is required' }).waitFor();
    await page.locator('#ticket-price-error').filter({ hasText: 'Price must be greater than 0' }).waitFor();
    await snap(page, 'sell-errors');
  }
  await page.fill('input[name=title]', title);
  await page.fill('input[name=price]', price);
  await page.click('button[type=submit]');
  await expectHeading(page, title); // the ticket's page, even before the read model has it
  await page.locator('.badge', { hasText: 'Available' }).waitFor();
  log(`${p.name} listed "${title}"`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Playwright gives each launch a fresh, throw-away profile (its own --user-data-dir).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  log(`chromium ${browser.version()} against ${BASE}`);
  try {
    const seller = await newPerson(browser, 'seller');
    const buyer = await newPerson(browser, 'buyer');
    const run = Date.now().toString(36);

    // Anonymous pages.
    await seller.page.goto('/');
    await expectHeading(seller.page, 'Tickets for sale');
    await seller.page.locator('nav a', { hasText: 'Sign in' }).waitFor();
    await snap(seller.page, 'landing-anonymous');
    await seller.page.click('nav a[href="/auth/signin"]');
    await expectHeading(seller.page, 'Sign in');
    await seller.page.fill('input[name=email]', `nobody-${run}@example.com`);
    await seller.page.fill('input[name=password]', 'wrong-password');
    await seller.page.click('button[type=submit]');
    await seller.page.locator('#auth-alert').filter({ hasText: 'Invalid credentials' }).waitFor();
    await snap(seller.page, 'signin-error');
    // An unknown file is the contract's 404; an unknown ticket is a page that says so.
    const missing = await seller.page.request.get('/no/such/file.js');
    assert.equal(missing.status(), 404);
    assert.deepEqual(await missing.json(), { errors: [{ message: 'Not Found' }] });
    await seller.page.goto('/tickets/00000000-0000-4000-8000-000000000000');
    await expectHeading(seller.page, 'Ticket not found');
    await snap(seller.page, 'not-found');

    await signUp(seller, `seller-${run}@example.com`);
    await signUp(buyer, `buyer-${run}@example.com`);

    // The buyer watches the list; a marker on window proves there is no reload.
    await buyer.page.evaluate(() => { window.__noReload = true; });
    const titleA = `Concert ${run} front row`;
    await listTicket(seller, titleA, '25.50', { withErrors: true });
    await snap(seller.page, 'ticket-own');
    const itemA = buyer.page.locator('li.ticket', { hasText: titleA });
    await itemA.waitFor({ timeout: 15000 });
    assert.equal(await buyer.page.evaluate(() => window.__noReload), true, 'the list reloaded the page');
    log('buyer saw the new ticket appear without reloading');
    await snap(buyer.page, 'landing-live');

    // Buy it: the ticket page, Purchase, the order page counts down from the event stream.
    await itemA.locator('a').click();
    await expectHeading(buyer.page, titleA);
    await snap(buyer.page, 'ticket');
    await buyer.page.click('button:has-text("Purchase")');
    await expectHeading(buyer.page, `Order: ${titleA}`);
    assert.notEqual(await heading(buyer.page).textContent(), 'Order not found');
    const timer = buyer.page.locator('#countdown');
    await timer.filter({ hasText: /\d:\d\d left to pay/ }).waitFor();
    const first = await timer.textContent();
    let later = first;
    for (let i = 0; i < 40 && later === first; i++) {
      await buyer.page.waitForTimeout(100);
      later = await timer.textContent();
    }
    assert.notEqual(later, first, 'the countdown does not move');
    log(`countdown moves: "${first}" -> "${await timer.textContent()}"`);
    await buyer.page.locator('label.radio', { hasText: 'succeeds' }).locator('input').check();
    await buyer.page.click('button:has-text("Pay")');
    await buyer.page.locator('#order-status .badge', { hasText: 'Paid' }).waitFor({ timeout: 20000 });
    await buyer.page.locator('.outcome', { hasText: 'The ticket is yours' }).waitFor();
    log('paid: the order shows complete');
    await snap(buyer.page, 'order-paid');
    await buyer.page.click('nav a[href="/orders"]');
    await expectHeading(buyer.page, 'My orders');
    await buyer.page.locator('li.order', { hasText: titleA }).locator('.badge', { hasText: 'Paid' }).waitFor();
    await snap(buyer.page, 'orders');

    // A second ticket, bought with the keyboard alone: declined card, then the clock runs out.
    const titleB = `Theatre ${run} balcony`;
    await listTicket(seller, titleB, '40');
    await buyer.page.click('nav a[href="/"]');
    await expectHeading(buyer.page, 'Tickets for sale');
    await buyer.page.locator('li.ticket', { hasText: titleB }).waitFor();
    let focused = '';
    for (let i = 0; i < 40 && !focused.includes(titleB); i++) {
      await buyer.page.keyboard.press('Tab');
      focused = await buyer.page.evaluate(() => document.activeElement?.textContent || '');
    }
    assert.ok(focused.includes(titleB), 'the ticket link is reachable with Tab');
    await buyer.page.keyboard.press('Enter');
    await expectHeading(buyer.page, titleB);
    focused = '';
    for (let i = 0; i < 20 && focused !== 'Purchase'; i++) {
      await buyer.page.keyboard.press('Tab');
      focused = await buyer.page.evaluate(() => document.activeElement?.textContent || '');
    }
    assert.equal(focused, 'Purchase', 'Purchase is reachable with Tab');
    await buyer.page.keyboard.press('Enter');
    await expectHeading(buyer.page, `Order: ${titleB}`);
    await timer.filter({ hasText: /\d:\d\d left to pay/ }).waitFor();
    // Racing the reservation window: pictures now, the scan of this page once it is declined.
    await snap(buyer.page, 'order-open', { axe: false });
    await buyer.page.locator('label.radio', { hasText: 'declined' }).locator('input').focus();
    await buyer.page.keyboard.press('Space');
    assert.equal(await buyer.page.locator('input[value=tok_chargeDeclined]').isChecked(), true);
    await buyer.page.locator('button:has-text("Pay")').focus();
    await buyer.page.keyboard.press('Enter');
    await buyer.page.locator('#pay-token-error').filter({ hasText: 'Your card was declined.' }).waitFor();
    log("declined card: Stripe's message shown beside the card");
    await snap(buyer.page, 'order-declined');
    await buyer.page.locator('#order-status .badge', { hasText: 'Expired' }).waitFor({ timeout: 90000 });
    await buyer.page.locator('.outcome', { hasText: 'expired' }).waitFor();
    log('the unpaid order expired on the page');
    await snap(buyer.page, 'order-expired');
    await buyer.page.click('nav a[href="/"]');
    await buyer.page.locator('li.ticket', { hasText: titleB }).waitFor({ timeout: 20000 });
    log('the ticket is back on the list');

    // My tickets: each ticket's history from the log.
    await seller.page.click('nav a[href="/mytickets"]');
    await expectHeading(seller.page, 'My tickets');
    const mineB = seller.page.locator('li.ticket-mine', { hasText: titleB });
    await mineB.locator('summary').click();
    await mineB.locator('.history li', { hasText: 'Listed for $40.00' }).waitFor();
    await mineB.locator('.history li', { hasText: 'Reserved by an order' }).waitFor();
    await mineB.locator('.history li', { hasText: 'Back on sale' }).waitFor();
    await snap(seller.page, 'mytickets-seller');
    await buyer.page.click('nav a[href="/mytickets"]');
    const boughtA = buyer.page.locator('li.ticket-mine', { hasText: titleA });
    await boughtA.locator('summary').focus();
    await buyer.page.keyboard.press('Enter');
    await boughtA.locator('.history li', { hasText: 'Bought by you' }).waitFor();
    await snap(buyer.page, 'mytickets-buyer');

    // Sign out: anonymous pages again.
    await buyer.page.click('#signout');
    await buyer.page.locator('nav a', { hasText: 'Sign in' }).waitFor();
    assert.equal(await buyer.page.locator('#signout').count(), 0);
    await buyer.page.goto('/orders');
    await buyer.page.locator('main', { hasText: 'to see your orders' }).waitFor();
    await buyer.page.goto('/tickets/new');
    await buyer.page.locator('main', { hasText: 'to sell a ticket' }).waitFor();
    await snap(buyer.page, 'signed-out');
    log('signed out: the pages are anonymous');
    await seller.page.click('nav a[href="/"]');
    await seller.page.locator('li.ticket', { hasText: titleB }).waitFor();
    await snap(seller.page, 'landing-signed-in');
  } finally {
    await browser.close();
  }
  if (a11y.length) problems.push(...a11y.map((v) => `axe: ${v}`));
  if (problems.length) {
    console.error(`storefront: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  log(`storefront: every flow passed; screenshots in ${SHOTS}`);
}

main().catch((e) => {
  console.error(e);
  if (problems.length) console.error(`also:\n  ${problems.join('\n  ')}`);
  process.exit(1);
});
