"""Schemathesis hooks for Allotment's contract run (dev/contract/run.sh).

They only undo artefacts of the generator, never hide an API behaviour:
- every generated valid Idempotency-Key is made unique, so two generated
  bodies never share a key (a shared key is a correct 422, tested in Rust);
- `next` page tokens are dropped: a random string is never a token this API
  issued (tampered tokens are 400 by design, tested in Rust);
- money the schema declares `multipleOf: 0.01` is generated as integer × 0.01
  in binary floating point (57 × 0.01 = 0.5700000000000001); such values are
  rounded back to the two-place decimal they stand for;
- a move of a namespace onto itself, and a namespace that is its own parent,
  are cross-field rules a schema cannot state: positive cases get a
  different id.
"""

import re
import uuid

import schemathesis

KEY = re.compile(r"^[!-~]([ -~]*[!-~])?$")


def _round_money(value):
    if isinstance(value, float):
        r = round(value, 2)
        return r if abs(value - r) < 1e-7 else value
    if isinstance(value, list):
        return [_round_money(v) for v in value]
    if isinstance(value, dict):
        return {k: _round_money(v) for k, v in value.items()}
    return value


@schemathesis.hook
def before_call(ctx, case, kwargs):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and len(key) <= 200 and KEY.match(key):
        headers["Idempotency-Key"] = f"{uuid.uuid4()}-{key}"
    if case.query and "next" in case.query:
        case.query.pop("next")
    if isinstance(case.body, (dict, list)):
        case.body = _round_money(case.body)
    path = case.operation.path
    params = case.path_parameters or {}
    if path.endswith("/move/{target_id}"):
        a, b = params.get("id"), params.get("target_id")
        if a == b and str(a).isdigit():
            params["target_id"] = int(a) + 1
    if path == "/namespaces/{id}" and isinstance(case.body, dict):
        if case.body.get("parent_id") is not None and case.body.get("parent_id") == params.get("id"):
            case.body["parent_id"] = None
