#!/usr/bin/env python3
"""Invokes function binaries as `sam local invoke` does, without Docker: under
AWS's own Runtime Interface Emulator — the `aws-lambda-rie` SAM CLI ships in
its pip package and runs inside the invoke container — natively, with the
environment SAM CLI computes for the function (its own EnvironmentVariables:
template variables, AWS_LAMBDA_* and credentials), one event each.

    python3 dev/rie/invoke.py FUNCTION [EVENT] [--expect STATUS]     # make invoke
    python3 dev/rie/invoke.py --batch FILE                            # the tests

FUNCTION is a binary name (post-minutes) or a template logical id
(PostMinutesFunction); EVENT defaults to events/FUNCTION.json. The binaries
come from BIN_DIR (target/debug). TABLE_NAME and DYNAMODB_ENDPOINT (make run's
or a test's DynamoDB Local) override the template's values, as `sam local
invoke --env-vars` would; so do the variables a batch entry names.

A batch FILE is a JSON list of {"binary", "event" (a path), "expect" (a
status, or "batch" for the publisher's empty batchItemFailures), "env"}; each
answer is printed as one JSON line. Exit 1 when an answer is not the expected.

Each invocation gets its own ports: the emulator's invoke endpoint and its
runtime API (`--runtime-api-address`; 127.0.0.1:9001 when not given), so runs
never share an emulator, and the emulator and the function are one process
group, stopped together.
"""
import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def rie_binary():
    import samcli
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not path.is_file():
        sys.exit(f"no emulator at {path} (pip install aws-sam-cli; make test does)")
    return path


def template():
    from samcli.yamlhelper import yaml_parse
    return yaml_parse((ROOT / "template.yaml").read_text())


def resolve(value, doc):
    """An environment value as `sam local` resolves it: a parameter's
    default, a resource's logical id, attributes and Subs as written."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            if arg in PSEUDO:
                return PSEUDO[arg]
            param = doc.get("Parameters", {}).get(arg)
            return str(param.get("Default", "")) if param else arg
        if fn == "Fn::GetAtt":
            return ".".join(arg) if isinstance(arg, list) else str(arg)
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    return value if isinstance(value, str) else json.dumps(value)


# sam local's values of the pseudo parameters.
PSEUDO = {
    "AWS::Region": os.environ.get("AWS_REGION", "us-east-1"),
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def function_of(name, doc):
    for logical, res in doc["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if name in (binary, logical):
            return logical, binary, res
    sys.exit(f"no function {name} in template.yaml")


def environment(name, overrides):
    """What SAM CLI gives the function: its EnvironmentVariables resolved."""
    from samcli.local.lambdafn.env_vars import EnvironmentVariables
    doc = template()
    logical, binary, res = function_of(name, doc)
    glob = doc.get("Globals", {}).get("Function", {})
    props = res.get("Properties", {})
    variables = {**glob.get("Environment", {}).get("Variables", {}), **props.get("Environment", {}).get("Variables", {})}
    variables = {k: resolve(v, doc) for k, v in variables.items()}
    env = EnvironmentVariables(
        function_name=logical,
        function_memory=props.get("MemorySize", glob.get("MemorySize", 128)),
        function_timeout=props.get("Timeout", glob.get("Timeout", 3)),
        function_handler=props.get("Handler", glob.get("Handler", "bootstrap")),
        function_logging_config={k: resolve(v, doc) for k, v in props.get("LoggingConfig", glob.get("LoggingConfig", {})).items()},
        variables=variables,
        override_values={k: v for k, v in overrides.items() if k in variables},
        aws_creds={"region": os.environ.get("AWS_REGION", "us-east-1"), "key": "local", "secret": "local"},
    ).resolve()
    # Variables the template does not declare (a test's stand-in endpoints) go on top.
    env.update({k: v for k, v in overrides.items() if k not in variables})
    return binary, env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invoke(binary, event_path, overrides, bin_dir):
    binary, env = environment(binary, overrides)
    path = Path(bin_dir) / binary
    if not path.is_file():
        sys.exit(f"{path} is not built (cargo build -p allotment-functions)")
    payload = Path(event_path).read_bytes()
    port, runtime_port = free_port(), free_port()
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    log = open(Path(bin_dir) / f"{binary}.rie.log", "wb")
    rie = subprocess.Popen([str(rie_binary()), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                            "--runtime-api-address", f"127.0.0.1:{runtime_port}", "--log-level", "error", str(path)],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=payload, method="POST"), timeout=60) as answer:
                    return json.loads(answer.read() or b"null")
            except urllib.error.HTTPError as e:
                # The emulator answered (an error of its own): never sent again.
                return {"emulatorStatus": e.code, "body": e.read().decode("utf-8", "replace")}
            except (urllib.error.URLError, ConnectionError) as e:
                # Not listening yet: nothing was delivered.
                if time.monotonic() > deadline or rie.poll() is not None:
                    raise RuntimeError(f"the emulator did not answer: {e} (log: {log.name})")
                time.sleep(0.05)
    finally:
        try:
            os.killpg(rie.pid, signal.SIGTERM)
            rie.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(rie.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def as_expected(answer, expect):
    if expect is None:
        return True
    if expect == "batch":
        return isinstance(answer, dict) and answer.get("batchItemFailures") == []
    return isinstance(answer, dict) and answer.get("statusCode") == int(expect)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("function", nargs="?")
    parser.add_argument("event", nargs="?")
    parser.add_argument("--expect")
    parser.add_argument("--batch")
    parser.add_argument("--bin-dir", default=os.environ.get("BIN_DIR", str(ROOT / "target" / "debug")))
    args = parser.parse_args()
    overrides = {k: os.environ[k] for k in ("TABLE_NAME", "DYNAMODB_ENDPOINT") if os.environ.get(k)}
    if args.batch:
        jobs = json.loads(Path(args.batch).read_text())
    elif args.function:
        event = args.event or str(ROOT / "events" / f"{function_of(args.function, template())[1]}.json")
        jobs = [{"binary": args.function, "event": event, "expect": args.expect}]
    else:
        parser.error("FUNCTION or --batch")
    failed = 0
    for job in jobs:
        answer = invoke(job["binary"], job["event"], {**overrides, **job.get("env", {})}, args.bin_dir)
        ok = as_expected(answer, job.get("expect"))
        failed += not ok
        print(json.dumps({"binary": job["binary"], "ok": ok, "answer": answer}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
