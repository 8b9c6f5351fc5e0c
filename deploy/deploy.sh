#!/usr/bin/env bash
# Deploys one stage the way the pipeline does, from a laptop too (docs/deploy.md):
#   ALARM_EMAIL=oncall@example.org deploy/deploy.sh dev [sam deploy options]
#   (or ALARM_TOPIC_ARN=arn:aws:sns:…; prod: deploy/deploy.sh prod)
# with credentials for the stage's pipeline role (or any identity allowed
# what it is). It runs `sam deploy --config-env <stage>` on the build in
# .aws-sam/build with what samconfig.toml cannot hold: the stage's artifacts
# bucket and CloudFormation execution role (deploy/github-oidc-role.yaml
# names both by account and region) and where the alarms go. A stack that a
# failed first create or a killed run left behind is cleared first, so
# re-running after any failure needs no administrator.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:?usage: deploy/deploy.sh dev|prod [sam deploy options]}"
shift
case "$stage" in dev | prod) ;; *) echo "deploy/deploy.sh: the stage is dev or prod, not $stage" >&2; exit 2 ;; esac
stack="allotment-$stage"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[[ -n "$region" ]] || { echo "deploy/deploy.sh: set AWS_REGION" >&2; exit 2; }
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
tools="${DEPLOY_TOOLS:-.tools/deploy/bin}"   # make deploy-tools: sam and aws from requirements-deploy.txt
sam="$tools/sam" aws="$tools/aws"
[[ -x "$sam" && -x "$aws" ]] || { echo "deploy/deploy.sh: no $sam or $aws; run make deploy-tools" >&2; exit 2; }

# The alarms must page someone (the template's AlarmsNotifySomeone rule).
if [[ -n "${ALARM_TOPIC_ARN:-}" ]]; then
  alarm="AlarmTopicArn=$ALARM_TOPIC_ARN"
elif [[ -n "${ALARM_EMAIL:-}" ]]; then
  alarm="AlarmEmail=$ALARM_EMAIL"
else
  echo "deploy/deploy.sh: set ALARM_TOPIC_ARN or ALARM_EMAIL: where $stack's alarms go" >&2
  exit 2
fi
# --parameter-overrides on the command line replaces samconfig.toml's whole
# list, so start from that list.
overrides=$(python3 -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]["parameter_overrides"])' "$stage")

identity=$("$aws" sts get-caller-identity --query Arn --output text)
partition=$(cut -d: -f2 <<<"$identity")
account=$(cut -d: -f5 <<<"$identity")
bucket="allotment-$stage-artifacts-$account-$region"
role="arn:$partition:iam::$account:role/allotment-$stage-cfn-exec"

status() {
  "$aws" cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo NONE
}
case "$(status)" in
  ROLLBACK_COMPLETE | ROLLBACK_FAILED | CREATE_FAILED | DELETE_FAILED)
    # A first create that never completed: nothing in it is worth keeping
    # (the table, if made, is retained by its DeletionPolicy: docs/deploy.md).
    echo "deploy/deploy.sh: $stack never finished its first create ($(status)); deleting it first" >&2
    "$aws" cloudformation delete-stack --stack-name "$stack"
    "$aws" cloudformation wait stack-delete-complete --stack-name "$stack"
    ;;
  UPDATE_ROLLBACK_FAILED)
    echo "deploy/deploy.sh: $stack's last rollback failed; continuing it first" >&2
    "$aws" cloudformation continue-update-rollback --stack-name "$stack" --role-arn "$role"
    "$aws" cloudformation wait stack-rollback-complete --stack-name "$stack"
    ;;
esac

# Extra arguments pass through to sam deploy; a --parameter-overrides among
# them is merged after samconfig's list and the alarm (sam takes only one
# such option: a second would replace the boundary and the alarm).
extra=() more=()
while (($#)); do
  case "$1" in
    --parameter-overrides)
      shift
      while (($#)) && [[ "$1" != --* ]]; do more+=("$1"); shift; done
      ;;
    --parameter-overrides=*) more+=("${1#--parameter-overrides=}"); shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

# shellcheck disable=SC2086 # the overrides are space-separated Key=Value words
exec "$sam" deploy --config-env "$stage" --template-file .aws-sam/build/template.yaml \
  --s3-bucket "$bucket" --role-arn "$role" --on-failure DELETE \
  --parameter-overrides $overrides "$alarm" "${more[@]}" "${extra[@]}"
