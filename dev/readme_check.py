#!/usr/bin/env python3
"""The README, run as written: every ```sh block of its "Calling it" and
"Importing files" sections, in order, in one shell, against the local stack
dev/with-local-stack.sh started (API_URL, TOKEN, ALICE, CAROL). Each
command's documented answer is checked:

    curl …   # → 201 {"field": value, …}     status, and the fields shown
    …        # → exit 1: created 3, already present 1, failed 1

(on the command's last line or on a comment line right after it). JSON is a
subset: objects need the keys shown, arrays the same length, and a string
with … matches any text in its place. `export TOKEN=...` is the stack's
token, `API=…` its URL, `cargo install --path cli` the workspace's build.

    dev/with-local-stack.sh python3 dev/readme_check.py     (make readme)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

SECTIONS = ("## Calling it", "## Importing files")
EXPECT = re.compile(r"#\s*→\s*(.*)$")


def blocks(readme):
    """The sh blocks of the chosen sections, in order."""
    out, section, block = [], None, None
    for line in readme.splitlines():
        if block is not None:
            if line.startswith("```"):
                out.append(block)
                block = None
            else:
                block.append(line)
        elif line.startswith("## "):
            section = line
        elif line.startswith("```sh") and section and section.startswith(SECTIONS):
            block = []
    return out


def split_comment(line):
    """(code, comment) of a line, the comment starting at a # outside quotes."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i:]
    return line, ""


def commands(block):
    """(command text, expectation or None) for each command of a block."""
    out, current, open_quote = [], [], False
    for line in block:
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            m = EXPECT.search(stripped) if stripped.startswith("#") else None
            if m and out and out[-1][1] is None:
                out[-1] = (out[-1][0], m.group(1))
            continue
        code, comment = (line, "") if open_quote else split_comment(line)
        current.append(code)
        open_quote = (open_quote + code.count("'")) % 2 == 1 if "'" in code else open_quote
        if code.endswith("\\") or open_quote:
            continue
        m = EXPECT.search(comment)
        out.append(("\n".join(current), m.group(1) if m else None))
        current = []
    return out


def matches(expected, actual):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(matches(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, str) and "…" in expected:
        pattern = ".*".join(re.escape(p) for p in expected.split("…"))
        return isinstance(actual, str) and re.fullmatch(pattern, actual, re.S) is not None
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and expected == actual
    return expected == actual


def main():
    for name in ("API_URL", "TOKEN", "ALICE", "CAROL"):
        if not os.environ.get(name):
            sys.exit(f"{name} is not set: run this under dev/with-local-stack.sh")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    steps = [c for b in blocks(readme) for c in commands(b)]
    out = tempfile.mkdtemp(prefix="readme-")
    script = [
        "set -u",
        f"cd {root!r}",
        f"export PATH={os.path.join(root, 'target', 'debug')!r}:\"$PATH\"",
        'curl() { command curl -sS -o "$OUT/$N.body" -w "%{http_code}" "$@" > "$OUT/$N.status"; }',
        f"OUT={out!r}",
    ]
    for n, (command, _) in enumerate(steps):
        first = command.strip()
        if first.startswith("export TOKEN="):
            continue
        if first.startswith("API=http://127.0.0.1"):
            command = 'API="$API_URL"'
        if first.startswith("cargo install --path cli"):
            continue
        script.append(f"N={n}")
        script.append("{ " + command + "\n} > \"$OUT/$N.out\" 2>&1; echo $? > \"$OUT/$N.exit\"")
    # The example files' checkpoints and failures from an earlier run would make this one a resume.
    for f in ("packs.jsonl", "payments.csv", "ferry.jsonl"):
        for suffix in (".checkpoint.json", ".failures.jsonl"):
            try:
                os.remove(os.path.join(root, "examples", f + suffix))
            except FileNotFoundError:
                pass
    subprocess.run(["bash", "-c", "\n".join(script)], check=False)

    def read(n, what):
        try:
            with open(os.path.join(out, f"{n}.{what}"), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None

    failures, checked = [], 0
    for n, (command, expectation) in enumerate(steps):
        if expectation is None:
            continue
        checked += 1
        head = command.strip().splitlines()[0][:100]
        m = re.match(r"exit (\d+):(.*)", expectation)
        if m:
            code, text = read(n, "exit"), read(n, "out") or ""
            if code is None or int(code) != int(m.group(1)):
                failures.append(f"{head}\n  exit {code and code.strip()}, documented {m.group(1)}\n{text}")
                continue
            for outcome, count in re.findall(r"([a-z][a-z ]*?) (\d+)", m.group(2)):
                row = re.search(rf"\| {re.escape(outcome.strip())} \| (\d+) \|", text)
                if not row or int(row.group(1)) != int(count):
                    failures.append(f"{head}\n  {outcome.strip()}: {row and row.group(1)}, documented {count}\n{text}")
            continue
        status, body = read(n, "status"), read(n, "body")
        want = re.match(r"(\d{3})\s*(.*)", expectation)
        if not want:
            failures.append(f"{head}\n  unreadable expectation {expectation!r}")
            continue
        if status != want.group(1):
            failures.append(f"{head}\n  status {status}, documented {want.group(1)}: {body}\n  {read(n, 'out') or ''}")
            continue
        rest = want.group(2).strip()
        if rest[:1] in ("{", "["):
            expected, _ = json.JSONDecoder().raw_decode(rest)
            try:
                actual = json.loads(body or "null")
            except ValueError:
                actual = None
            if not matches(expected, actual):
                failures.append(f"{head}\n  answered {body}\n  documented {json.dumps(expected, ensure_ascii=False)}")
    print(f"README: {len(steps)} commands run, {checked} documented answers checked, {len(failures)} differ")
    for f in failures:
        print("---\n" + f)
    sys.exit(1 if failures or checked == 0 else 0)


if __name__ == "__main__":
    main()
