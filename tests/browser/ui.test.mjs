// Kurz's web UI in a real browser: Debian's chromium driven by playwright-core, axe-core for
// accessibility. Starts its own Kurz (KURZ_BIN, default the workspace's debug build) on a free port
// with a fresh data directory, and saves screenshots of the main pages (KURZ_SCREENSHOTS).
//
//   node tests/browser/ui.test.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = process.env.KURZ_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", "kurz");
const browserPath = process.env.KURZ_CHROMIUM ?? "/usr/bin/chromium";
const shots = process.env.KURZ_SCREENSHOTS ?? path.join(here, "screenshots");
const axeSource = readFileSync(path.join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");
const jsQrSource = readFileSync(path.join(here, "node_modules", "jsqr", "dist", "jsQR.js"), "utf8");
// A person's browser, as a click's user agent (the headless browser's own counts as a bot).
const PERSON = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
// Every wait has a deadline.
const DEADLINE_MS = 10_000;

let passed = 0;
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    console.error(`not ok - ${name}`);
    throw error;
  }
  passed += 1;
  console.log(`ok - ${name} (${Date.now() - started} ms)`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startKurz() {
  const dataDir = mkdtempSync(path.join(tmpdir(), "kurz-ui-"));
  const port = await freePort();
  const child = spawn(bin, [], {
    env: {
      // This script's own settings are not Kurz's (Kurz warns about KURZ_ variables it does not know).
      ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KURZ_"))),
      KURZ_STORAGE__DATA_DIR: dataDir,
      KURZ_HTTP__LISTEN: `127.0.0.1:${port}`,
      // The targets are the landing server below, on this machine (no internet here).
      KURZ_TARGETS__ALLOW_PRIVATE: "true",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > until) throw new Error(`kurz did not start (${bin})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const adminKey = readFileSync(path.join(dataDir, "admin.key"), "utf8").trim();
  return { base, adminKey, stop: () => { child.kill("SIGTERM"); rmSync(dataDir, { recursive: true, force: true }); } };
}

/** Where the links lead: a page on this machine that says which path it was asked for. */
async function startLanding() {
  const port = await freePort();
  const server = createHttpServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(`<title>landed ${request.url.replace(/[^a-z0-9/_-]/gi, "")}</title>landed`);
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin: `http://localhost:${port}`, stop: () => server.close() };
}

async function api(kurz, key, method, route, body) {
  const response = await fetch(`${kurz.base}${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, json: response.status === 204 ? null : await response.json() };
}

/** axe-core's serious and critical findings on the page, described. */
async function accessibilityProblems(page) {
  // Evaluated through the DevTools protocol: the page's CSP (scripts from its own origin only) does
  // not apply to it, as it does to anything the page itself would inject.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  return results.violations
    .filter((violation) => ["serious", "critical"].includes(violation.impact))
    .map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`);
}

async function signIn(page, kurz, key) {
  await page.goto(`${kurz.base}/ui/sign-in`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${kurz.base}/ui/links`, { timeout: DEADLINE_MS });
}

async function main() {
  mkdirSync(shots, { recursive: true });
  const kurz = await startKurz();
  const landing = await startLanding();
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const { json: bob } = await api(kurz, kurz.adminKey, "POST", "/v1/keys", { owner: "bob", role: "user" });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(DEADLINE_MS);
    const page = await context.newPage();
    const dialogs = [];
    page.on("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });

    await step("a page of the UI asks a visitor without a session to sign in", async () => {
      await page.goto(`${kurz.base}/ui/links`);
      assert.equal(page.url(), `${kurz.base}/ui/sign-in`);
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "sign-in.png"), fullPage: true });
    });

    await step("a wrong key is refused, next to the input", async () => {
      await page.getByLabel("API key").fill("kurz_not_a_real_key");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").filter({ hasText: "unknown or revoked" }).waitFor();
      assert.equal(await page.getByLabel("API key").getAttribute("aria-invalid"), "true");
    });

    await step("signing in with the keyboard alone lands on the links", async () => {
      await page.goto(`${kurz.base}/ui/sign-in`);
      await page.keyboard.press("Tab"); // the skip link
      await page.keyboard.press("Tab"); // the brand link
      await page.keyboard.press("Tab"); // the key input
      await page.keyboard.type(kurz.adminKey);
      await page.keyboard.press("Enter");
      await page.waitForURL(`${kurz.base}/ui/links`);
      await page.getByText("No links here yet.").waitFor();
      const cookie = (await context.cookies()).find((c) => c.name === "kurz_session");
      assert.ok(cookie && cookie.httpOnly && cookie.sameSite === "Strict", "HttpOnly, SameSite=Strict session cookie");
      assert.ok(cookie.expires > Date.now() / 1000, "the cookie expires");
    });

    await step("a refused field is shown next to its input", async () => {
      await page.getByRole("link", { name: "New link" }).first().click();
      await page.getByLabel("Target URL").fill("ftp://example.com/file");
      await page.getByRole("button", { name: "Create link" }).click();
      const target = page.getByLabel("Target URL");
      assert.equal(await target.getAttribute("aria-invalid"), "true");
      const describedBy = await target.getAttribute("aria-describedby");
      assert.match(await page.locator(`#${describedBy}`).innerText(), /http/i);
      assert.equal(await target.inputValue(), "ftp://example.com/file", "what was typed stays");
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "new-link-refused.png"), fullPage: true });
    });

    const xss = "<script>alert(1)</script>";
    await step("a link is created, with script-like text kept as text", async () => {
      await page.getByLabel("Target URL").fill(`${landing.origin}/landing`);
      await page.getByLabel("Alias (optional)").fill("spring-ui");
      await page.getByLabel("Tags (comma-separated, optional)").fill(`${xss}, campaign`);
      await page.getByRole("button", { name: "Create link" }).click();
      await page.waitForURL(`${kurz.base}/ui/links/spring-ui?done=created`);
      await page.getByRole("status").filter({ hasText: "Link created." }).waitFor();
      assert.equal(await page.locator("#tags").innerText(), `${xss}, campaign`);
      assert.equal(await page.locator("#short-url").innerText(), `${kurz.base}/spring-ui`);
      assert.deepEqual(dialogs, [], "no script ran");
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: kurz.base });
      await page.getByRole("button", { name: "Copy" }).click();
      await page.locator(".copied").filter({ hasText: "Copied" }).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${kurz.base}/spring-ui`);
    });

    await step("the QR code shown decodes to the short URL, and the page has no serious accessibility problem", async () => {
      await page.waitForFunction(() => document.querySelector("#qr").complete && document.querySelector("#qr").naturalWidth > 0);
      await page.evaluate(jsQrSource);
      // The image as the browser drew it, read back from a canvas and decoded.
      const decoded = await page.evaluate(() => {
        const image = document.querySelector("#qr");
        const canvas = document.createElement("canvas");
        [canvas.width, canvas.height] = [400, 400];
        const context = canvas.getContext("2d");
        context.fillStyle = "#fff";
        context.fillRect(0, 0, 400, 400);
        context.drawImage(image, 0, 0, 400, 400);
        const pixels = context.getImageData(0, 0, 400, 400);
        return globalThis.jsQR(pixels.data, 400, 400)?.data ?? null;
      });
      assert.equal(decoded, `${kurz.base}/spring-ui`);
      for (const format of ["svg", "png"]) {
        const download = page.locator(`a[download="spring-ui.${format}"]`);
        const response = await page.request.get(new URL(await download.getAttribute("href"), kurz.base).href);
        assert.equal(response.status(), 200, `the ${format} download`);
      }
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "link.png"), fullPage: true });
    });

    await step("the short URL leads to the target", async () => {
      const visitor = await context.newPage();
      await visitor.goto(`${kurz.base}/spring-ui`);
      assert.equal(visitor.url(), `${landing.origin}/landing`);
      assert.equal(await visitor.title(), "landed /landing");
      await visitor.close();
    });

    await step("search finds the link and leaves others out", async () => {
      await api(kurz, kurz.adminKey, "POST", "/v1/links", { target_url: "https://example.com/other", alias: "autumn-ui" });
      // Lists come from a projection: wait (with a deadline) until both links are in it.
      await page.waitForFunction(async () => (await (await fetch("/ui/links")).text()).includes("autumn-ui"), null, { timeout: DEADLINE_MS, polling: 100 });
      await page.goto(`${kurz.base}/ui/links`);
      await page.getByRole("searchbox", { name: "Search" }).fill("spring");
      await page.getByRole("button", { name: "Search" }).click();
      const rows = page.locator("#links tbody tr");
      assert.equal(await rows.count(), 1);
      assert.match(await rows.first().innerText(), /spring-ui/);
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.goto(`${kurz.base}/ui/links`);
      assert.equal(await page.locator("#links tbody tr").count(), 2);
      await page.screenshot({ path: path.join(shots, "links.png"), fullPage: true });
    });

    await step("a click shows up in the stats within a second, without reloading the page", async () => {
      await page.goto(`${kurz.base}/ui/links/spring-ui/stats`);
      const before = Number(await page.locator("#total-clicks").innerText());
      const reloads = [];
      page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) reloads.push(frame.url()); });
      const clicked = Date.now();
      const redirect = await fetch(`${kurz.base}/spring-ui`, { redirect: "manual", headers: { "user-agent": PERSON, "accept-language": "de-CH,de;q=0.9" } });
      assert.equal(redirect.status, 302);
      await page.waitForFunction((n) => Number(document.querySelector("#total-clicks").textContent) > n, before, { timeout: 1000, polling: 20 });
      console.log(`# the click showed in the page ${Date.now() - clicked} ms after its redirect`);
      assert.deepEqual(reloads, [], "the page was not reloaded");
      assert.ok(await page.locator("svg.chart rect[height]:not([height='0'])").count() >= 1, "a bar in the chart");
      assert.match(await page.getByRole("region", { name: "Languages" }).innerText(), /\bde\b/);
      assert.match(await page.getByRole("region", { name: "Browsers" }).innerText(), /Chrome/);
      assert.ok(Number(await page.locator("#bot-clicks").innerText()) >= 1, "the headless browser's visit counts as a bot's, apart");
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "stats.png"), fullPage: true });
    });

    await step("stats by hour for the last 48 hours, and the overview of every link", async () => {
      await page.getByLabel("Resolution").selectOption("hour");
      await page.getByRole("button", { name: "Show" }).click();
      await page.waitForURL(/interval=hour/);
      assert.match(await page.locator("figcaption").innerText(), /per hour/);
      assert.equal(await page.locator("svg.chart rect").count(), 48);
      assert.ok(Number(await page.locator("#total-clicks").innerText()) >= 1);
      await page.getByRole("link", { name: "Stats", exact: true }).click();
      await page.waitForURL(`${kurz.base}/ui/stats`);
      assert.match(await page.getByRole("region", { name: "Top links" }).innerText(), /spring-ui/);
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "overview.png"), fullPage: true });
    });

    await step("a link is created with the keyboard alone", async () => {
      await page.goto(`${kurz.base}/ui/links/new`);
      const focused = () => page.evaluate(() => document.activeElement?.id ?? "");
      for (let presses = 0; (await focused()) !== "target_url"; presses += 1) {
        assert.ok(presses < 30, "the target input is reachable with Tab");
        await page.keyboard.press("Tab");
      }
      await page.keyboard.type(`${landing.origin}/keys`);
      await page.keyboard.press("Tab");
      assert.equal(await focused(), "alias");
      await page.keyboard.type("keyboard-ui");
      await page.keyboard.press("Enter");
      await page.waitForURL(`${kurz.base}/ui/links/keyboard-ui?done=created`);
    });

    await step("an edit changes the target", async () => {
      await page.goto(`${kurz.base}/ui/links/spring-ui`);
      await page.getByRole("link", { name: "Edit" }).click();
      await page.getByLabel("Target URL").fill(`${landing.origin}/edited`);
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.getByRole("status").filter({ hasText: "Changes saved." }).waitFor();
      assert.equal(await page.locator("#target").innerText(), `${landing.origin}/edited`);
      assert.equal(await page.locator("#tags").innerText(), `${xss}, campaign`, "the tags stay as they were");
      // The history is a projection: it shows the change once folded (look again, with a deadline).
      const until = Date.now() + DEADLINE_MS;
      while (!/updated/.test(await page.locator("ol.history").innerText())) {
        assert.ok(Date.now() < until, "the change in the history within the deadline");
        await page.waitForTimeout(100);
        await page.reload();
      }
      const history = await page.locator("ol.history").innerText();
      assert.match(history, /created[\s\S]*updated[\s\S]*target_url: http:\/\/localhost:\d+\/edited/);
    });

    await step("switching a link off makes it answer 410, and on again 302", async () => {
      await page.getByRole("button", { name: "Switch off" }).click();
      await page.getByRole("status").filter({ hasText: "switched off" }).waitFor();
      assert.match(await page.locator("#state").innerText(), /disabled/);
      assert.equal((await page.request.get(`${kurz.base}/spring-ui`, { maxRedirects: 0 })).status(), 410);
      await page.getByRole("button", { name: "Switch on" }).click();
      await page.getByRole("status").filter({ hasText: "switched on" }).waitFor();
      assert.equal((await page.request.get(`${kurz.base}/spring-ui`, { maxRedirects: 0 })).status(), 302);
    });

    await step("a delete asks first, then the link is gone", async () => {
      await page.goto(`${kurz.base}/ui/links/autumn-ui`);
      await page.getByRole("link", { name: "Delete" }).click();
      await page.getByRole("link", { name: "Cancel" }).waitFor();
      await page.getByRole("button", { name: "Delete for good" }).click();
      await page.waitForURL(`${kurz.base}/ui/links`);
      assert.equal((await page.request.get(`${kurz.base}/autumn-ui`, { maxRedirects: 0 })).status(), 410);
    });

    await step("another owner sees none of these links", async () => {
      const other = await browser.newContext();
      other.setDefaultTimeout(DEADLINE_MS);
      const theirs = await other.newPage();
      await signIn(theirs, kurz, bob.key);
      await theirs.getByText("No links here yet.").waitFor();
      const response = await theirs.goto(`${kurz.base}/ui/links/spring-ui`);
      assert.equal(response.status(), 404);
      assert.equal(await theirs.getByRole("link", { name: "Keys" }).count(), 0, "no admin pages offered");
      assert.equal((await theirs.goto(`${kurz.base}/ui/keys`)).status(), 403, "nor served");
      await other.close();
    });

    await step("a CSV of 100 links imports with progress and a result per row; the export has them", async () => {
      const rows = Array.from({ length: 100 }, (_, i) => `${landing.origin}/bulk/${i + 1},bulk-${i + 1},"[""bulk""]"`);
      const csv = ["target_url,code,tags", ...rows, "javascript:alert(1),bulk-bad,"].join("\n");
      await page.getByRole("link", { name: "Import" }).click();
      await page.getByLabel("CSV file", { exact: true }).setInputFiles({ name: "wrong.csv", mimeType: "text/csv", buffer: Buffer.from("url\nhttps://example.com/\n") });
      await page.getByRole("button", { name: "Import" }).click();
      await page.locator("#import-summary").filter({ hasText: "Not imported: the header row has no `target_url` column." }).waitFor();
      await page.getByLabel("CSV file", { exact: true }).setInputFiles({ name: "links.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
      await page.getByRole("button", { name: "Import" }).click();
      await page.locator("#import-summary").filter({ hasText: "Done: 100 created, 1 refused." }).waitFor();
      assert.equal(await page.locator("#import-bar").evaluate((bar) => [bar.value, bar.max].join("/")), "101/101");
      const results = page.locator("#import-results tbody tr");
      assert.equal(await results.count(), 101);
      assert.match(await results.nth(0).innerText(), /created.*bulk-1\b/s);
      assert.match(await results.nth(100).innerText(), /refused \(422\).*target_url/s);
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "import.png"), fullPage: true });
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "CSV" }).click()]);
      const exported = readFileSync(await download.path(), "utf8");
      assert.match(exported.split("\n")[0], /target_url/);
      for (const code of ["bulk-1", "bulk-100", "spring-ui"]) assert.match(exported, new RegExp(`\\b${code}\\b`));
      assert.doesNotMatch(exported, /bulk-bad/);
    });

    await step("the tag filter and the pages walk through all 100 imported links once", async () => {
      const seen = new Set();
      const until = Date.now() + DEADLINE_MS;
      // The list is a projection: wait until it holds the hundred, then walk it.
      for (;;) {
        await page.goto(`${kurz.base}/ui/links?tag=bulk&state=all`);
        await page.getByLabel("Tag").fill("bulk");
        await page.getByRole("button", { name: "Search" }).click();
        const sizes = [];
        seen.clear();
        for (;;) {
          const codes = await page.locator("#links tbody tr td:first-child").allInnerTexts();
          sizes.push(codes.length);
          for (const code of codes) seen.add(code);
          const next = page.getByRole("link", { name: "Next page" });
          if ((await next.count()) === 0) break;
          await next.click();
        }
        if (seen.size === 100) {
          // A full last page may still offer a next one, which then holds nothing.
          assert.deepEqual(sizes.filter((size) => size > 0), [20, 20, 20, 20, 20], "20 to a page");
          break;
        }
        assert.ok(Date.now() < until, `the hundred links listed within the deadline (${seen.size})`);
      }
      assert.ok([...seen].every((code) => /^\/bulk-\d+$/.test(code)));
    });

    await step("an admin creates a key (shown once), which signs in until revoked", async () => {
      await page.getByRole("link", { name: "Keys" }).click();
      await page.getByLabel("Owner").fill("carol");
      await page.getByRole("button", { name: "Create key" }).click();
      const key = await page.locator("#created-key").innerText();
      assert.match(key, /^kurz_/);
      assert.deepEqual(await accessibilityProblems(page), []);
      const other = await browser.newContext();
      other.setDefaultTimeout(DEADLINE_MS);
      const carol = await other.newPage();
      await signIn(carol, kurz, key);
      await page.goto(`${kurz.base}/ui/keys`);
      assert.doesNotMatch(await page.content(), new RegExp(key), "a key is shown once");
      await page.screenshot({ path: path.join(shots, "keys.png"), fullPage: true });
      const id = key.split("_")[1];
      await page.getByRole("button", { name: `Revoke key ${id}` }).click();
      await page.getByRole("status").filter({ hasText: "Key revoked" }).waitFor();
      await carol.goto(`${kurz.base}/ui/sign-in`);
      await carol.getByLabel("API key").fill(key);
      await carol.getByRole("button", { name: "Sign in" }).click();
      await carol.getByRole("alert").filter({ hasText: "unknown or revoked" }).waitFor();
      await other.close();
    });

    await step("an admin sees the visits of codes that name no link", async () => {
      for (let i = 0; i < 3; i += 1) {
        assert.equal((await fetch(`${kurz.base}/no-such-code`, { redirect: "manual" })).status, 404);
      }
      // Orphan visits are counted in memory and stored every 2 s: look again until they are in.
      const codes = page.getByRole("region", { name: "Codes tried most" });
      const until = Date.now() + DEADLINE_MS;
      for (;;) {
        await page.goto(`${kurz.base}/ui/orphans`);
        if (/no-such-code\s+3\b/.test(await codes.innerText())) break;
        assert.ok(Date.now() < until, `the three visits within the deadline: ${await codes.innerText()}`);
        await page.waitForTimeout(250);
      }
      assert.ok(Number(await page.locator("#orphan-visits").innerText()) >= 3);
      assert.deepEqual(await accessibilityProblems(page), []);
      await page.screenshot({ path: path.join(shots, "orphans.png"), fullPage: true });
    });

    await step("on a phone-sized screen nothing runs off the side", async () => {
      const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
      phone.setDefaultTimeout(DEADLINE_MS);
      const small = await phone.newPage();
      await signIn(small, kurz, kurz.adminKey);
      const routes = ["/ui/links", "/ui/links/spring-ui", "/ui/links/new", "/ui/links/spring-ui/stats", "/ui/stats", "/ui/import", "/ui/keys", "/ui/orphans"];
      for (const route of routes) {
        await small.goto(`${kurz.base}${route}`);
        const [scroll, width] = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(scroll <= width, `${route}: ${scroll} px wide in a ${width} px window`);
      }
      await small.goto(`${kurz.base}/ui/links/spring-ui`);
      await small.screenshot({ path: path.join(shots, "link-phone.png"), fullPage: true });
      await phone.close();
    });

    await step("signing out ends the session, also for a copy of its cookie", async () => {
      const cookie = (await context.cookies()).find((c) => c.name === "kurz_session");
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(`${kurz.base}/ui/sign-in`);
      const replayed = await fetch(`${kurz.base}/ui/links`, { headers: { cookie: `kurz_session=${cookie.value}` }, redirect: "manual" });
      assert.equal(replayed.status, 303);
      assert.equal(replayed.headers.get("location"), "/ui/sign-in");
    });

    assert.deepEqual(dialogs, [], "no script-like text ran anywhere");
    console.log(`# ${passed} browser checks passed; screenshots in ${shots}`);
  } finally {
    await browser.close();
    kurz.stop();
    landing.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
