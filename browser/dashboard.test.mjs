// Browser test of `clamator dashboard`, in headless Debian chromium (playwright-core).
// Started by crates/clamator-cli/tests/dashboard.rs on each broker: Redis with a Rust and a
// Python server under load, NATS JetStream with two Rust servers; it writes two dead letters
// and starts two dashboards:
//   DASH_URL      the dashboard with actions (needs DASH_TOKEN)
//   DASH_RO_URL   the same prefix with --read-only
//   DASH_CONSUMERS the consumer names the service page must list, comma-separated
//   SCREENSHOTS   where to write the screenshots
//   CHROMIUM      the browser binary
// Exits 0 when every check passed; prints each check as it goes.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const { DASH_URL, DASH_RO_URL, DASH_TOKEN, SCREENSHOTS, CHROMIUM } = process.env;
const CONSUMERS = (process.env.DASH_CONSUMERS || "arith:rust-1,arith:py-1").split(",");
mkdirSync(SCREENSHOTS, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}

async function eventually(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`FAILED (timed out): ${what} (last: ${last})`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // console errors, except the refusals this test provokes on purpose
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) pageErrors.push(m.text());
  });
  const dialogs = [];
  page.on("dialog", async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    await d.accept();
  });

  // ---- --token protects reads too: the API refuses, a page shows the login form
  const anonymous = await browser.newContext();
  const apiStatus = await (await anonymous.request.get(`${DASH_URL}api/overview`)).status();
  check(apiStatus === 401, `without the token the API refuses reads (${apiStatus})`);
  const deadStatus = await (await anonymous.request.get(`${DASH_URL}api/services/arith`)).status();
  check(deadStatus === 401, `without the token a service's dead letters cannot be read (${deadStatus})`);
  await anonymous.close();
  await page.goto(DASH_URL);
  await page.waitForSelector('input[name="token"]');
  check((await page.$$('tr[data-service="arith"]')).length === 0, "the page asks for the token before showing anything");
  await page.fill('input[name="token"]', "not-the-token");
  await page.click('button[type="submit"]');
  await page.waitForSelector(".failure");
  check((await page.textContent(".failure")).includes("wrong token"), "a wrong token is refused");
  await page.fill('input[name="token"]', DASH_TOKEN);
  await page.click('button[type="submit"]');

  // ---- overview: every service, both consumers, a rate that moves
  await page.waitForSelector('tr[data-service="arith"]');
  check(await page.isVisible('tr[data-service="notifications"]'), "the overview lists arith and notifications");
  const alive = await eventually(`arith has ${CONSUMERS.length} live consumers (${CONSUMERS})`, async () => {
    const n = Number(await page.textContent('tr[data-service="arith"] td:nth-child(7)'));
    return n >= CONSUMERS.length ? n : 0;
  });
  check(alive >= 2, `arith: ${alive} consumers alive`);
  const rate1 = await eventually("arith's rate is above 0", async () => {
    const r = parseFloat((await page.textContent('tr[data-service="arith"] .rate')).replace(/,/g, ""));
    return r > 0 ? r : 0;
  });
  const points = async () => (await page.getAttribute('tr[data-service="arith"] svg.spark polyline', "points")).split(" ").length;
  const before = await points();
  const moved = await eventually("the rate and its sparkline move", async () => {
    const r = parseFloat((await page.textContent('tr[data-service="arith"] .rate')).replace(/,/g, ""));
    return r > 0 && r !== rate1 && (await points()) > before ? r : 0;
  });
  check(moved > 0, `arith rate ${rate1} then ${moved} calls/s, live over Server-Sent Events`);
  check((await page.textContent('tr[data-service="arith"] .dead')).trim() === "2", "arith shows its 2 dead letters");
  // DASH_DWELL_MS: let the sparklines fill before the screenshot (for the README's pictures)
  await page.waitForTimeout(Number(process.env.DASH_DWELL_MS || 0));
  await page.screenshot({ path: `${SCREENSHOTS}/${process.env.DASH_SHOT_PREFIX || ""}dashboard-overview.png` });

  // ---- service page: consumers, dead letters, the XSS entry is inert
  await page.click('tr[data-service="arith"] a');
  await page.waitForSelector("#dead-table tbody tr");
  check((await page.$$("#dead-table tbody tr")).length === 2, "the service page lists the 2 dead letters");
  const consumers = await eventually("both consumers are listed", async () => {
    const text = await page.textContent("#consumer-table").catch(() => "");
    return CONSUMERS.every((c) => text.includes(c)) ? text : "";
  });
  check(consumers, `the consumers are listed (${CONSUMERS})`);
  const pending = await eventually("a running request is listed as pending, with its deliveries", async () => {
    const rows = await page.$$("#pending-table tbody tr");
    if (!rows.length) return "";
    const cells = await page.$$eval("#pending-table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
    return cells.join(" | ");
  });
  check(pending.split(" | ")[2] === "1", `the slow request is pending, delivered once (${pending})`);
  const xssRow = page.locator("#dead-table tbody tr", { hasText: "onerror" });
  await xssRow.locator("summary").first().click();
  const shown = await xssRow.locator("pre.envelope").textContent();
  check(shown.includes("<script>window.__xss=1</script>") && shown.includes('<img src=x onerror='),
    "the hostile envelope is shown as text");
  await page.waitForTimeout(500);
  check(await page.evaluate(() => window.__xss === undefined), "its script and onerror did not run");
  check((await page.$$("#dead-letters script, #dead-letters img")).length === 0, "no script or img element was created from it");
  const replayRow = page.locator("#dead-table tbody tr", { hasText: "replay-me" });
  await replayRow.locator("summary").first().click();
  await page.screenshot({ path: `${SCREENSHOTS}/${process.env.DASH_SHOT_PREFIX || ""}dashboard-dead-letters.png`, fullPage: true });

  // ---- actions need the CSRF header and the token
  const refused = await page.evaluate(async () => {
    const r = await fetch("/api/services/arith/dead-letters/drop", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ all: true }) });
    return r.status;
  });
  check(refused === 403, "a POST without the CSRF header is refused (403)");
  const noToken = await page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="clamator-csrf"]').content;
    const r = await fetch("/api/services/arith/dead-letters/drop", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", "X-Clamator-Csrf": csrf }, body: JSON.stringify({ all: true }) });
    return r.status;
  });
  check(noToken === 401, "a POST without the token (no login cookie) is refused (401)");
  check((await page.$$("#dead-table tbody tr")).length === 2, "nothing was dropped by the refused requests");

  // ---- replay one from the page: the Rust test checks it is answered
  await replayRow.locator("button.replay").click();
  await eventually("the page says it replayed 1", async () => (await page.textContent("#dead-note")).includes("replayed 1"));
  check(dialogs.some((d) => d.startsWith("confirm: Replay 1")),
    `the replay was confirmed, authorized by the login (${dialogs.join(" | ")})`);
  await eventually("one dead letter left", async () => (await page.$$("#dead-table tbody tr")).length === 1);
  check(true, "the replayed dead letter left the list");

  // ---- the methods from --docs, and a call from the page
  const methods = await page.textContent("#methods");
  check(methods.includes("arith.add") && methods.includes("arith.slowAdd"), "the methods of the contract document (--docs) are listed");
  await page.fill("#call-method", "arith.add");
  await page.dispatchEvent("#call-method", "input");
  check((await page.textContent("#method-docs")).includes("params schema"), "the call form shows the chosen method's params schema");
  await page.fill("#call-params", '{"a": 40, "b": 2}');
  await page.click("#call-go");
  const result = await eventually("the call is answered", async () => {
    const t = await page.textContent("#call-result");
    return t.includes('"sum"') ? t : "";
  });
  check(JSON.parse(result).result.sum === 42, "arith.add called from the page returned 42");
  await page.fill("#call-params", '{"a": "x"}');
  await page.click("#call-go");
  const bad = await eventually("the bad call is answered", async () => {
    const t = await page.textContent("#call-result");
    return t.includes("-32602") ? t : "";
  });
  check(JSON.parse(bad).error.code === -32602, "bad params come back as the server's -32602");
  check(pageErrors.length === 0, `no script errors on the page (${pageErrors.join(" | ")})`);

  // ---- read-only: no actions on the page, and the API refuses them
  const ro = await context.newPage();
  await ro.goto(`${DASH_RO_URL}services/arith`);
  await ro.waitForSelector("#dead-table tbody tr");
  check((await ro.$$("button")).length === 0, "read-only: no buttons (replay, drop, call)");
  check((await ro.$$("#call")).length === 0, "read-only: no call form");
  check((await ro.textContent("#mode")) === "read-only", "read-only: the header says so");
  const roStatus = await ro.evaluate(async () => {
    const csrf = document.querySelector('meta[name="clamator-csrf"]').content;
    const r = await fetch("/api/call", {
      method: "POST", headers: { "Content-Type": "application/json", "X-Clamator-Csrf": csrf },
      body: JSON.stringify({ method: "arith.add", params: { a: 1, b: 2 } }) });
    return r.status;
  });
  check(roStatus === 403, "read-only: the API refuses a call (403)");

  // ---- bulk: select the hostile one and drop the selection
  await page.bringToFront();
  await page.check("#dead-table tbody tr input[type=checkbox]");
  await page.click("button.drop-selected");
  await eventually("the page says it dropped 1", async () => (await page.textContent("#dead-note")).includes("dropped 1"));
  check(dialogs.some((d) => d.startsWith("confirm: Drop 1")), "the bulk drop was confirmed");
  await eventually("no dead letter left", async () => (await page.textContent("#dead-letters")).includes("No dead letters"));
  check(true, "the selected dead letter was dropped");
  console.log("all dashboard checks passed");
} finally {
  await browser.close();
}
