// The breaking-change gate: docs/openapi.json against the last released
// document (docs/api/released.json), with Optic's breaking-changes rules
// (dev/api/optic.yml). A breaking change passes only when docs/CHANGELOG.md's
// "## Unreleased" section declares it — the operation named under
// "### Breaking" — and the document's major version is raised (the
// versioning policy in the changelog).
//   node dev/api/gate.mjs [--base FILE] [--head FILE] [--changelog FILE]
// Exit: 0 no breaking change, or every one declared; 1 otherwise.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const base = arg("--base", join(root, "docs/api/released.json"));
const head = arg("--head", join(root, "docs/openapi.json"));
const changelog = arg("--changelog", join(root, "docs/CHANGELOG.md"));

// Optic lets any change through once the major version is raised; the gate
// wants each one declared whatever the version, so it compares a copy of the
// head carrying the release's version (the version is checked below).
const scratch = mkdtempSync(join(tmpdir(), "api-gate-"));
const headDoc = JSON.parse(readFileSync(head, "utf8"));
const compared = join(scratch, basename(head));
writeFileSync(compared, JSON.stringify({ ...headDoc, info: { ...headDoc.info, version: JSON.parse(readFileSync(base, "utf8")).info?.version } }, null, 2));
// (Run in the scratch folder, and not as CI: Optic writes ci-run-details.json
// into its working directory under CI.)
const { CI: _ci, GITHUB_ACTIONS: _gha, ...environment } = process.env;
const optic = spawnSync(join(root, "node_modules/.bin/optic"), ["diff", base, compared, "--check", "--standard", join(root, "dev/api/optic.yml")], {
  encoding: "utf8",
  cwd: scratch,
  env: { ...environment, OPTIC_TELEMETRY_LEVEL: "off", NO_COLOR: "1", FORCE_COLOR: "0" },
});
if (optic.error) {
  console.error(`api gate: optic did not run: ${optic.error.message}`);
  process.exit(1);
}
rmSync(scratch, { recursive: true, force: true });
const report = `${optic.stdout}${optic.stderr}`;

// Each operation with a failed check, and the checks it failed.
const broken = new Map();
const flag = (op, why) => broken.set(op, [...(broken.get(op) ?? []), why]);

// What Optic's rules do not compare: a tighter bound on what callers send
// (a length, a pattern, a range, an item count, a format) refuses requests
// the release accepted.
const baseDoc = JSON.parse(readFileSync(base, "utf8"));
const deref = (doc, node) => {
  let n = node;
  for (let i = 0; n && n.$ref && i < 20; i++) n = n.$ref.slice(2).split("/").reduce((o, k) => o?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  return n ?? {};
};
const tighter = (was, now, where, out) => {
  const up = (k) => now[k] !== undefined && (was[k] === undefined || now[k] > was[k]);
  const down = (k) => now[k] !== undefined && (was[k] === undefined || now[k] < was[k]);
  for (const k of ["maxLength", "maximum", "maxItems", "exclusiveMaximum"]) if (down(k)) out.push(`${where}: ${k} ${was[k] ?? "none"} → ${now[k]}`);
  for (const k of ["minLength", "minimum", "minItems", "exclusiveMinimum"]) if (up(k)) out.push(`${where}: ${k} ${was[k] ?? "none"} → ${now[k]}`);
  for (const k of ["pattern", "format"]) if (now[k] !== undefined && now[k] !== was[k]) out.push(`${where}: ${k} ${was[k] ?? "none"} → ${now[k]}`);
};
const compareSchemas = (wasNode, nowNode, where, out, depth = 0) => {
  if (depth > 12) return;
  const was = deref(baseDoc, wasNode);
  const now = deref(headDoc, nowNode);
  tighter(was, now, where, out);
  for (const [name, prop] of Object.entries(now.properties ?? {})) {
    if (was.properties?.[name]) compareSchemas(was.properties[name], prop, `${where}.${name}`, out, depth + 1);
  }
  if (now.items && was.items) compareSchemas(was.items, now.items, `${where}[]`, out, depth + 1);
  for (const [i, alt] of (now.oneOf ?? now.anyOf ?? []).entries()) {
    const before = (was.oneOf ?? was.anyOf ?? [])[i];
    if (before) compareSchemas(before, alt, `${where}|${i}`, out, depth + 1);
  }
};
for (const [path, ops] of Object.entries(headDoc.paths ?? {})) {
  for (const [method, op] of Object.entries(ops)) {
    const before = baseDoc.paths?.[path]?.[method];
    if (!before || typeof op !== "object" || !op.responses) continue;
    const out = [];
    const params = (doc, o) => new Map([...(doc.paths[path].parameters ?? []), ...(o.parameters ?? [])].map((p) => deref(doc, p)).map((p) => [`${p.in} ${p.name}`, p]));
    const wasParams = params(baseDoc, before);
    for (const [key, p] of params(headDoc, op)) {
      if (wasParams.has(key)) compareSchemas(wasParams.get(key).schema ?? {}, p.schema ?? {}, key, out);
    }
    const body = (doc, o) => deref(doc, o.requestBody ?? {}).content?.["application/json"]?.schema;
    if (body(headDoc, op) && body(baseDoc, before)) compareSchemas(body(baseDoc, before), body(headDoc, op), "body", out);
    for (const why of out) flag(`${method.toUpperCase()} ${path}`, `[prevent tighter input bounds] ${why}`);
  }
}

if (optic.status === 0 && broken.size === 0) {
  console.log("api gate: no breaking change against the last release");
  process.exit(0);
}
let operation = null;
for (const line of report.split("\n")) {
  const op = line.match(/^x (GET|PUT|POST|PATCH|DELETE|HEAD|OPTIONS) (\S+):/);
  if (op) operation = `${op[1]} ${op[2]}`;
  const rule = line.match(/^\s*x \[([^\]]+)\] (.*)$/);
  // A failed check outside any operation (the whole document's) is never declared away.
  const under = operation ?? "the document itself";
  if (rule) flag(under, `[${rule[1]}] ${rule[2]}`);
}
if (broken.size === 0) {
  console.error(`api gate: optic failed without a breaking change it named:\n${report}`);
  process.exit(1);
}

// What the changelog declares, and the versions.
const text = readFileSync(changelog, "utf8");
const unreleased = (text.split(/^## /m).find((s) => s.startsWith("Unreleased")) ?? "");
const breakingPart = (unreleased.split(/^### /m).find((s) => s.startsWith("Breaking")) ?? "");
const declared = (op) => breakingPart.includes(`\`${op}\``);
const major = (file) => Number.parseInt(String(JSON.parse(readFileSync(file, "utf8")).info?.version ?? "0").split(".")[0], 10);

let failed = false;
for (const [op, rules] of broken) {
  const ok = op !== "the document itself" && declared(op);
  failed ||= !ok;
  console.log(`api gate: ${ok ? "declared" : "UNDECLARED"} breaking change to ${op}`);
  for (const r of rules) console.log(`    ${r}`);
}
if (failed) {
  console.error("api gate: a breaking change must be declared in docs/CHANGELOG.md under \"## Unreleased\" / \"### Breaking\", naming the operation in backticks (`GET /path`), with the major version raised");
  process.exit(1);
}
if (!(major(head) > major(base))) {
  console.error(`api gate: breaking changes are declared, but info.version's major (${major(head)}) is not above the release's (${major(base)})`);
  process.exit(1);
}
console.log("api gate: every breaking change declared, major version raised");
