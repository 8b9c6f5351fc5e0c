"""Prints, as JSON, what dev/iam/check.mjs evaluates: template.yaml after
AWS SAM's transform (the samtranslator that make test's .venv pins, as
`sam deploy` would submit it, function code at S3 keys as `sam package`
writes them) and deploy/github-oidc-role.yaml, both with their short-form
intrinsics (!Sub, !Ref...) as long-form objects."""
import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """SAM asks IAM for managed policy names it meets in Policies; the
    template names none (only inline statements and ARNs), so nothing to load."""

    def load(self):
        return {}


def main():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "template.yaml")) as f:
        app = yaml_parse(f.read())
    for name, resource in app["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
    transformed = transform(app, {}, NoManagedPolicies())
    with open(os.path.join(root, "deploy", "github-oidc-role.yaml")) as f:
        deploy = yaml_parse(f.read())
    json.dump({"app": transformed, "deploy": deploy}, sys.stdout)


if __name__ == "__main__":
    main()
