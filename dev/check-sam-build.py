#!/usr/bin/env python3
"""After `sam build`: every function of template.yaml has its `bootstrap`
where SAM deploys it from (.aws-sam/build/<LogicalId>/bootstrap), an
executable arm64 Linux ELF, and the built template points at it.
Exit 1 listing what is missing.   python3 dev/check-sam-build.py [BUILD_DIR]"""

import os
import re
import sys

build = sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build"
template = open("template.yaml", encoding="utf-8").read()
functions = re.findall(r"^  (\w+Function):\n    Type: AWS::Serverless::Function", template, re.M)
built = open(os.path.join(build, "template.yaml"), encoding="utf-8").read()
problems = []
for fn in functions:
    path = os.path.join(build, fn, "bootstrap")
    if not os.path.isfile(path):
        problems.append(f"{fn}: no {path}")
        continue
    if not os.access(path, os.X_OK):
        problems.append(f"{fn}: {path} is not executable")
    with open(path, "rb") as f:
        header = f.read(20)
    # ELF magic, 64-bit, little endian; e_machine 0xB7 is AArch64.
    if header[:4] != b"\x7fELF" or header[4] != 2 or int.from_bytes(header[18:20], "little") != 0xB7:
        problems.append(f"{fn}: {path} is not an arm64 ELF executable")
    if not re.search(rf"^  {fn}:\n(?:    .*\n|      .*\n)*?      CodeUri: {fn}\n", built, re.M):
        problems.append(f"{fn}: the built template does not point CodeUri at {fn}")
for p in problems:
    print(p, file=sys.stderr)
print(f"sam build: {len(functions) - len({p.split(':')[0] for p in problems})} of {len(functions)} functions ready to deploy")
sys.exit(1 if problems or not functions else 0)
