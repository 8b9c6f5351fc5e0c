// The API reference page as a reader sees it: make run's /docs opened in
// Debian's Chromium (driven by playwright-core), every operation of
// docs/openapi.json listed, nothing fetched from anywhere but the stack,
// one operation tried from the page with the dev token, a screenshot saved.
//   API_URL=http://127.0.0.1:3000 node dev/docs/check.mjs   (make docs-check: on a fresh local stack)
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";

const api = process.env.API_URL ?? "http://127.0.0.1:3000";
const out = process.env.DOCS_OUT ?? "target/docs";
const doc = JSON.parse(readFileSync("docs/openapi.json", "utf8"));
const methods = ["get", "put", "post", "patch", "delete"];
const want = Object.entries(doc.paths).flatMap(([path, ops]) => methods.filter((m) => ops[m]).map((m) => `${m.toUpperCase()} ${path}`));

const fail = (why) => { console.error(`docs check: ${why}`); process.exitCode = 1; };
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const elsewhere = [];
  page.on("request", (r) => { if (new URL(r.url()).origin !== new URL(api).origin && !r.url().startsWith("data:")) elsewhere.push(r.url()); });
  await page.goto(`${api}/docs`);
  await page.waitForSelector(".opblock-summary", { timeout: 60000 });
  const shown = await page.$$eval(".opblock-summary", (els) => els.map((e) =>
    `${e.querySelector(".opblock-summary-method")?.textContent.trim()} ${e.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`));
  const missing = want.filter((w) => !shown.includes(w));
  if (missing.length) fail(`operations not listed: ${missing.join(", ")}`);
  console.log(`docs check: ${shown.length} operations listed, ${want.length} in the document`);
  // The seeds' examples are shown: GitLab's own pack request body, on POST /namespaces/{id}/minutes.
  const post = page.locator(".opblock-post", { has: page.locator('.opblock-summary-path[data-path="/namespaces/{id}/minutes"]') });
  await post.locator(".opblock-summary").click();
  await post.locator(".body-param__example, .microlight").first().waitFor({ timeout: 30000 });
  if (!(await post.textContent()).includes("46952fe69bebc1a4de10b2b4ff439d0c")) fail("the seed's example is not shown");
  await post.locator(".opblock-summary").click();

  // Try it: a namespace registered, then read from the page with the dev token it was authorised with.
  const token = (await (await fetch(`${api}/docs/dev-token`)).text()).trim();
  const put = await fetch(`${api}/namespaces/4242`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "docs-check", parent_id: null, owner_id: 7 }) });
  if (put.status !== 200) fail(`PUT /namespaces/4242: ${put.status}`);
  const block = page.locator(".opblock-get", { has: page.locator('.opblock-summary-path[data-path="/namespaces/{id}/minutes"]') });
  await block.locator(".opblock-summary").click();
  await block.locator(".try-out__btn").click();
  await block.locator('input[placeholder="id"]').fill("4242");
  await block.locator(".execute").click();
  const status = block.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30000 });
  const code = (await status.textContent()).trim();
  const body = await block.locator(".live-responses-table .microlight").first().textContent();
  if (code !== "200" || !body.includes("4242")) fail(`try it out answered ${code}: ${body}`);
  else console.log("docs check: GET /namespaces/{id}/minutes tried from the page: 200");
  await block.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${out}/reference.png` });
  await page.screenshot({ path: `${out}/reference-full.png`, fullPage: true });
  console.log(`docs check: screenshots ${out}/reference.png, ${out}/reference-full.png`);
  if (elsewhere.length) fail(`fetched from elsewhere: ${elsewhere.join(", ")}`);
} finally {
  await browser.close();
}
