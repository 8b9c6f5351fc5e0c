#!/usr/bin/env bash
# Prints `export API_URL=… TOKEN=…` for a deployed stack whose authorizer is
# the Cognito user pool it created (no JwtIssuer given): reads the stack's
# outputs and the provisioner client's secret, and gets a client-credentials
# token with the API's scopes. Needs the AWS CLI and credentials for the stack.
#   eval "$(dev/stage-token.sh allotment-dev)"
set -euo pipefail
stack="${1:?usage: dev/stage-token.sh STACK_NAME}"
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
api_url=$(output ApiUrl)
token_url=$(output TokenUrl)
client_id=$(output ProvisionerClientId)
pool_id=$(output UserPoolId)
[[ -n "$token_url" && "$token_url" != "None" ]] || { echo "stack $stack has no TokenUrl: it trusts an external JwtIssuer; get a token there" >&2; exit 1; }
secret=$(aws cognito-idp describe-user-pool-client --user-pool-id "$pool_id" --client-id "$client_id" \
  --query 'UserPoolClient.ClientSecret' --output text)
token=$(curl -sSf -u "$client_id:$secret" -d grant_type=client_credentials \
  --data-urlencode 'scope=allotment/admin allotment/payments' "$token_url" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
echo "export API_URL=$api_url"
echo "export TOKEN=$token"
