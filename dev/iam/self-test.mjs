// The IAM check's own test (make iam-check): each of issue 30's fixes,
// reverted in a copy of the policies or the template, must make
// dev/iam/check.mjs report the denial it would meet in AWS; and the path
// matcher that decides API Gateway's actions must refuse what it should.
import assert from 'node:assert/strict'
import { loadInputs, runCheck } from './check.mjs'
import { decide } from './matcher.mjs'

// ---------------------------------------------------------------- the path matcher can refuse
const allow = (Action, Resource, Condition) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action, Resource, ...(Condition ? { Condition } : {}) }] })
const apis = 'arn:aws:apigateway:eu-west-1::/apis'
assert.equal(decide({ identity: [allow('apigateway:PUT', `${apis}/*`)], action: 'apigateway:PUT', resource: apis }), 'deny', '/apis/* is not /apis')
assert.equal(decide({ identity: [allow('apigateway:POST', apis)], action: 'apigateway:PUT', resource: apis }), 'deny', 'POST is not PUT')
assert.equal(decide({ identity: [allow('apigateway:*', apis)], action: 'apigateway:PUT', resource: apis }), 'allow')
const tagged = { StringEquals: { 'aws:ResourceTag/aws:cloudformation:stack-name': 'allotment-dev' } }
assert.equal(decide({ identity: [allow('apigateway:PUT', apis, tagged)], action: 'apigateway:PUT', resource: apis, context: {} }), 'deny', 'a tag the request does not carry')
assert.equal(decide({ identity: [allow('apigateway:PUT', apis, tagged)], action: 'apigateway:PUT', resource: apis, context: { 'aws:ResourceTag/aws:cloudformation:stack-name': 'allotment-prod' } }), 'deny', 'another stack')
assert.equal(decide({ identity: [allow('apigateway:PUT', apis, tagged)], action: 'apigateway:PUT', resource: apis, context: { 'aws:ResourceTag/aws:cloudformation:stack-name': 'allotment-dev' } }), 'allow')
const denyAll = { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: '*', Resource: '*' }] }
assert.equal(decide({ identity: [allow('*', '*'), denyAll], action: 'apigateway:GET', resource: apis }), 'deny', 'an explicit deny wins')
assert.equal(decide({ identity: [allow('*', '*')], boundary: allow('s3:*', '*'), action: 'apigateway:GET', resource: apis }), 'deny', 'outside the boundary')
assert.throws(() => decide({ identity: [allow('*', '*', { NumericLessThan: { 'aws:x': '1' } })], action: 'apigateway:GET', resource: apis }), /not implemented/, 'an operator it does not know')
console.log('iam self-test: the path matcher refuses what it should')

// ---------------------------------------------------------------- planted reverts
const inputs = loadInputs()
const statementsOf = (doc, id) => doc.Resources[id].Properties.Policies[0].PolicyDocument.Statement
const sid = (doc, id, name) => {
  const s = statementsOf(doc, id).find((x) => x.Sid === name)
  assert.ok(s, `${id} has no statement ${name}`)
  return s
}
const stackTag = { StringEquals: { 'aws:ResourceTag/aws:cloudformation:stack-name': { 'Fn::Sub': 'allotment-${Environment}' } } }

const reverts = [
  {
    name: 'item 1: the execution role without apigateway:PUT (the import of the HTTP API)',
    deploy: (d) => { const s = sid(d, 'CloudFormationExecutionRole', 'HttpApi'); s.Action = s.Action.filter((a) => a !== 'apigateway:PUT') },
    expect: (f) => f.action === 'apigateway:PUT' && f.phase === 'create',
  },
  {
    name: 'item 1: the HTTP API statements as before (GET/POST on /apis; /apis/* and /tags/* only with aws:ResourceTag/aws:cloudformation:stack-name)',
    deploy: (d) => {
      const st = statementsOf(d, 'CloudFormationExecutionRole')
      const i = st.findIndex((x) => x.Sid === 'HttpApi')
      const arn = (p) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:apigateway:\${AWS::Region}::${p}` })
      st.splice(i, 1,
        { Sid: 'NewHttpApi', Effect: 'Allow', Action: ['apigateway:GET', 'apigateway:POST'], Resource: arn('/apis') },
        { Sid: 'HttpApi', Effect: 'Allow', Action: ['apigateway:GET', 'apigateway:POST', 'apigateway:PUT', 'apigateway:PATCH', 'apigateway:DELETE'], Resource: [arn('/apis/*'), arn('/tags/*')], Condition: stackTag })
    },
    expect: (f) => f.action === 'apigateway:PUT' && f.resource.endsWith('::/apis'),
  },
  {
    name: 'item 2: the user pool statements as before (only with aws:ResourceTag/aws:cloudformation:stack-name)',
    deploy: (d) => {
      const st = statementsOf(d, 'CloudFormationExecutionRole')
      for (const name of ['UserPool', 'UserPoolTags']) sid(d, 'CloudFormationExecutionRole', name).Condition = stackTag
      const i = st.findIndex((x) => x.Sid === 'NewUserPool')
      st[i] = { Sid: 'NewUserPool', Effect: 'Allow', Action: ['cognito-idp:CreateUserPool', 'cognito-idp:DescribeUserPoolDomain'], Resource: '*' }
    },
    expect: (f) => !f.withSystemTags && f.action === 'cognito-idp:CreateUserPoolClient' && f.decision === 'deny',
  },
  {
    name: 'item 2: the template without UserPoolTags',
    app: (a) => { delete a.Resources.UserPool.Properties.UserPoolTags },
    expect: (f) => f.action === 'cognito-idp:CreateUserPool' && f.decision === 'deny',
  },
  {
    name: 'item 2: dev/stage-token.sh\'s describe-user-pool-client as before (aws:cloudformation:stack-name)',
    deploy: (d) => { sid(d, 'PipelineRole', 'StageToken').Condition = stackTag },
    expect: (f) => !f.withSystemTags && f.who === 'pipeline role' && f.action === 'cognito-idp:DescribeUserPoolClient' && f.decision === 'deny',
  },
  {
    name: 'item 3: the pipeline role without cloudformation:DeleteStack',
    deploy: (d) => { const s = sid(d, 'PipelineRole', 'Stack'); s.Action = s.Action.filter((a) => a !== 'cloudformation:DeleteStack') },
    expect: (f) => f.action === 'cloudformation:DeleteStack' && f.decision === 'deny',
  },
  {
    name: 'the pipeline role passing any role',
    deploy: (d) => { sid(d, 'PipelineRole', 'PassTheExecutionRole').Resource = '*'; delete sid(d, 'PipelineRole', 'PassTheExecutionRole').Condition },
    expect: (f) => f.action === 'iam:PassRole' && f.decision === 'allow',
  },
  {
    name: 'the function boundary without the page-token secret',
    deploy: (d) => { const b = d.Resources.FunctionBoundary.Properties.PolicyDocument; b.Statement = b.Statement.filter((s) => s.Action !== 'secretsmanager:GetSecretValue') },
    expect: (f) => f.action === 'secretsmanager:GetSecretValue' && f.decision === 'deny',
  },
  {
    name: 'item 8: an index query statement on the table ARN only',
    app: (a) => {
      const st = a.Resources.GetMinutesFunctionRole.Properties.Policies[0].PolicyDocument.Statement
      st.find((s) => JSON.stringify(s.Resource).includes('/index/')).Resource = { 'Fn::GetAtt': ['Table', 'Arn'] }
    },
    expect: (f) => f.action === 'dynamodb:Query' && f.resource.includes('/index/gsi1') && f.decision === 'deny',
  },
  {
    name: 'a function role without the boundary',
    app: (a) => { delete a.Resources.PutNamespaceFunctionRole.Properties.PermissionsBoundary },
    expect: (f) => f.action === 'iam:CreateRole' && f.decision === 'deny',
  },
]

let failed = 0
for (const r of reverts) {
  const failures = await runCheck({ inputs, mutate: { app: r.app, deploy: r.deploy }, stages: ['dev'], quiet: true })
  const hit = failures.filter(r.expect)
  if (hit.length) console.log(`iam self-test: caught: ${r.name} (${hit.length} calls, e.g. ${hit[0].action} ${hit[0].resource})`)
  else { failed++; console.error(`iam self-test: NOT CAUGHT: ${r.name}; the check reported ${failures.length} other wrong decisions`) }
}
if (failed) process.exit(1)
console.log(`iam self-test: all ${reverts.length} planted reverts caught`)
