// The gate must be able to fail: planted breaking changes — a removed
// response field, a narrowed type, a new required parameter, a tighter input
// bound, a removed status code — each make it fail while undeclared, and pass once the
// changelog declares them with the major version raised; the document as it
// is passes.
//   node dev/api/gate-test.mjs
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dir = mkdtempSync(join(tmpdir(), "api-gate-"));
const base = join(root, "docs/api/released.json");
const doc = () => JSON.parse(readFileSync(base, "utf8"));
const gate = (head, changelog) => spawnSync(process.execPath, [join(root, "dev/api/gate.mjs"), "--base", base, "--head", head, "--changelog", changelog], { encoding: "utf8" });
const write = (name, content) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return path;
};
let failures = 0;
const expect = (what, result, status, mustSay = []) => {
  const out = `${result.stdout}${result.stderr}`;
  const missing = mustSay.filter((s) => !out.includes(s));
  if (result.status !== status || missing.length) {
    failures += 1;
    console.error(`gate test: ${what}: exit ${result.status} (wanted ${status})${missing.length ? `, not said: ${missing.join(" | ")}` : ""}\n${out}`);
  } else {
    console.log(`gate test: ${what}: exit ${status}, as it should`);
  }
};
const plain = write("CHANGELOG.md", "# Changelog\n\n## Unreleased\n\n## 1.0.0\n");

expect("the document as released", gate(base, plain), 0);

// A major version raised with nothing declared is no way round the gate.
const bumped = doc();
bumped.info.version = "99.0.0";
delete bumped.components.schemas.Pack.properties.purchase_xid;
expect("a removed field with only the major version raised", gate(write("bumped.json", bumped), plain), 1, ["UNDECLARED"]);

const plants = {
  "a removed response field": ["GET /namespaces/{id}/minutes", "prevent removing response property", (d) => {
    delete d.components.schemas.Pack.properties.purchase_xid;
    d.components.schemas.Pack.required = d.components.schemas.Pack.required.filter((r) => r !== "purchase_xid");
  }],
  "a narrowed type": ["POST /namespaces/{id}/minutes", "prevent request property type changes", (d) => {
    d.paths["/namespaces/{id}/minutes"].post.requestBody.content["application/json"].schema.properties.packs.items.properties.number_of_minutes.type = "string";
  }],
  "a new required parameter": ["GET /work-period-payments", "prevent new required query parameters", (d) => {
    d.paths["/work-period-payments"].get.parameters.push({ name: "region", in: "query", required: true, schema: { type: "string", maxLength: 16 } });
  }],
  "a tighter bound": ["PUT /work-periods/{id}", "prevent tighter input bounds", (d) => {
    const id = d.paths["/work-periods/{id}"].put.parameters.find((p) => p.name === "id") ?? d.paths["/work-periods/{id}"].parameters.find((p) => p.name === "id");
    id.schema.maxLength = 32;
  }],
  "a removed status code": ["PUT /namespaces/{id}", "prevent response status code removal", (d) => {
    const responses = d.paths["/namespaces/{id}"].put.responses;
    delete responses[Object.keys(responses).find((s) => s.startsWith("4"))];
  }],
};
const all = doc();
for (const [what, [op, rule, plant]] of Object.entries(plants)) {
  const d = doc();
  plant(d);
  plant(all);
  expect(`${what}, undeclared`, gate(write("head.json", d), plain), 1, [`UNDECLARED breaking change to ${op}`, rule]);
}
const ops = Object.values(plants).map(([op]) => op);
const declared = write("CHANGELOG-declared.md", `# Changelog\n\n## Unreleased\n\n### Breaking\n\n${ops.map((op) => `- \`${op}\`: planted`).join("\n")}\n\n## 1.0.0\n`);
expect("all five, declared but the major version kept", gate(write("all.json", all), declared), 1, ["major"]);
all.info.version = `${Number.parseInt(all.info.version, 10) + 1}.0.0`;
expect("all five, declared, major version raised", gate(write("all-major.json", all), declared), 0, ops.map((op) => `declared breaking change to ${op}`));
process.exit(failures ? 1 : 0);
