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
if (optic.status === 0) {
  console.log("api gate: no breaking change against the last release");
  process.exit(0);
}

// Each operation with a failed check, and the checks it failed.
const broken = new Map();
let operation = null;
for (const line of report.split("\n")) {
  const op = line.match(/^x (GET|PUT|POST|PATCH|DELETE|HEAD|OPTIONS) (\S+):/);
  if (op) operation = `${op[1]} ${op[2]}`;
  const rule = line.match(/^\s*x \[([^\]]+)\] (.*)$/);
  // A failed check outside any operation (the whole document's) is never declared away.
  const under = operation ?? "the document itself";
  if (rule) broken.set(under, [...(broken.get(under) ?? []), `[${rule[1]}] ${rule[2]}`]);
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
