// Checks the incident explorer an `eval` run wrote, in the system Chromium (Playwright's core
// package drives it; no browser is downloaded):
//   * the index opens from disk (file://) without console errors, page errors or any request
//     that is not a local file;
//   * filtering to "harmful" shows exactly the harmful online runs of results.jsonl;
//   * a harmful run's page shows its actions, harm windows (table and timeline) and replay command.
// It saves screenshots of the filtered index and of that page.
//
// Usage: node explorer.test.js RUN_DIR [SCREENSHOT_DIR]

"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { pathToFileURL } = require("url");
const { chromium } = require("playwright-core");

const runDir = path.resolve(process.argv[2] || "reports/out");
const shotDir = path.resolve(process.argv[3] || runDir);

function fail(message) {
  console.error("explorer test FAILED: " + message);
  process.exitCode = 1;
  throw new Error(message);
}

function check(cond, message) {
  if (!cond) { fail(message); }
}

const keyOf = (app, fault, policy, seed, factor) => [app, fault, policy, seed, factor].join("|");

async function main() {
  const lines = fs.readFileSync(path.join(runDir, "results.jsonl"), "utf8")
    .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  const online = lines.filter((r) => r.experiment === "online");
  check(online.length > 0, "results.jsonl has no online runs");
  const recordKey = (r) => keyOf(r.app, r.fault, r.policy, String(r.seed), String(r.error_factor));
  const harmful = new Set(online.filter((r) => r.harmful).map(recordKey));
  check(harmful.size > 0, "results.jsonl has no harmful online run to filter for");
  const byKey = new Map(online.map((r) => [recordKey(r), r]));

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "explorer-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const problems = [];
  try {
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:")) { return route.continue(); }
      problems.push("network request: " + url);
      return route.abort();
    });
    const page = context.pages()[0] || await context.newPage();
    page.on("console", (msg) => {
      if (msg.type() === "error") { problems.push("console error: " + msg.text()); }
    });
    page.on("pageerror", (err) => problems.push("page error: " + err.message));
    page.on("requestfailed", (req) => problems.push("request failed: " + req.url()));

    // The index.
    const index = pathToFileURL(path.join(runDir, "explorer", "index.html")).href;
    await page.goto(index, { waitUntil: "load" });
    const rowCount = await page.locator("#incidents tbody tr").count();
    check(rowCount === online.length,
      `index lists ${rowCount} runs, results.jsonl has ${online.length} online runs`);
    await page.selectOption("#f-harmful", "yes");
    const shown = await page.$$eval("#incidents tbody tr", (rows) => rows
      .filter((r) => !r.hidden && r.offsetParent !== null)
      .map((r) => [r.dataset.app, r.dataset.fault, r.dataset.policy, r.dataset.seed, r.dataset.factor].join("|")));
    const shownSet = new Set(shown);
    check(shown.length === harmful.size && shownSet.size === harmful.size,
      `filtering to harmful shows ${shown.length} rows, results.jsonl has ${harmful.size} harmful runs`);
    for (const k of harmful) { check(shownSet.has(k), `harmful run ${k} is not shown`); }
    const countText = await page.textContent("#count");
    check(countText.startsWith(`${harmful.size} of ${online.length}`), `count reads "${countText}"`);
    fs.mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: path.join(shotDir, "explorer-index.png") });

    // A harmful run's page: prefer the constrained policy (its page has kernel verdicts and a
    // journal) in the main matrix, and the fewest actions, so the screenshot stays readable.
    const score = (k) => {
      const r = byKey.get(k);
      return (r.policy === "constrained" ? 0 : 2000) + (r.error_factor === 1 ? 0 : 1000) + r.actions.length;
    };
    const pick = shown.slice().sort((a, b) => score(a) - score(b) || (a < b ? -1 : a > b ? 1 : 0))[0];
    const record = byKey.get(pick);
    const [app, fault, policy, seed, factor] = pick.split("|");
    const link = page.locator(
      `#incidents tbody tr[data-app="${app}"][data-fault="${fault}"][data-policy="${policy}"]` +
      `[data-seed="${seed}"][data-factor="${factor}"] a`);
    await Promise.all([page.waitForEvent("load"), link.first().click()]);
    const actions = await page.locator("#actions table.actions tbody tr").count();
    check(actions === record.actions.length,
      `${pick}: page shows ${actions} actions, the record has ${record.actions.length}`);
    const harms = record.actions.filter((a) => a.harm).length;
    const harmRows = await page.locator("#harm table.harm-windows tbody tr").count();
    check(harmRows === harms && harms > 0, `${pick}: ${harmRows} harm windows listed, ${harms} expected`);
    const svgHarms = await page.locator("#timeline svg g.harm-window").count();
    check(svgHarms === harms, `${pick}: ${svgHarms} harm windows on the timeline, ${harms} expected`);
    const ticks = await page.locator("#timeline svg g.action-tick").count();
    check(ticks === record.actions.length, `${pick}: ${ticks} action ticks, ${record.actions.length} expected`);
    const journalRows = await page.locator("#journal tbody tr").count();
    const replay = await page.textContent("#replay code");
    const want = `microreboot scenario --app ${app} --fault ${fault} --policy ${policy} --seed ${seed}`;
    check(replay.startsWith(want), `${pick}: replay command "${replay}" does not start with "${want}"`);
    await page.setViewportSize({ width: 1280, height: 1400 });
    await page.screenshot({ path: path.join(shotDir, "explorer.png") });
    check(problems.length === 0, problems.join("; "));
    console.log(`explorer test: ${online.length} runs listed, harmful filter shows exactly the ` +
      `${harmful.size} harmful ones; ${pick}: ${actions} actions, ${harms} harm windows, ` +
      `${journalRows} journal records; screenshots in ${shotDir}`);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  if (process.exitCode !== 1) { console.error("explorer test FAILED: " + (err && err.stack || err)); }
  process.exitCode = 1;
});
