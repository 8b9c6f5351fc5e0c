#!/usr/bin/env python3
"""Checks events against the catalogue: every line of a JSONL file
({"detail-type", "detail", ...}, as `make run` and the tests write them)
must name an event of docs/events/ and its detail must validate against that
event's JSON Schema (draft 2020-12, with formats).

    python3 dev/check_events.py EVENTS.jsonl       exit 0: all valid; 1: not
"""
import json
import os
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(path):
    schemas = {}
    folder = os.path.join(ROOT, "docs", "events")
    for name in os.listdir(folder):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            schemas[name[:-5]] = jsonschema.Draft202012Validator(schema)
    bad = 0
    seen = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            seen += 1
            event = json.loads(line)
            kind = event.get("detail-type")
            validator = schemas.get(kind)
            if validator is None:
                print(f"line {n}: {kind!r} is not in docs/events/")
                bad += 1
                continue
            for error in validator.iter_errors(event.get("detail")):
                print(f"line {n} ({kind}): {error.json_path}: {error.message}")
                bad += 1
    print(f"events: {seen} checked against {len(schemas)} schemas, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
