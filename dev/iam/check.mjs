// Every call a deploy and the running stack make, evaluated offline against
// the policies that decide it in AWS (dev/iam/README.md; make iam-check):
//   (a) for each resource of the SAM-transformed template.yaml, the calls
//       CloudFormation's handlers make to create, update and delete it
//       (dev/iam/handlers.json, from each type's registry schema), as the
//       execution role of deploy/github-oidc-role.yaml, with the ARNs and
//       tags CloudFormation would send — in two worlds: with CloudFormation's
//       aws:cloudformation:* tags on the resources whose schema says they get
//       them, and with none at all; both must be allowed;
//   (b) each route's DynamoDB calls (dev/iam/route-calls.json) as its
//       function role, under the function boundary;
//   (c) the publisher's stream reads, PutEvents and SendMessage, and every
//       function's logs, traces and (listings) page-token secret;
//   (d) the pipeline role's own steps: sam deploy's change sets, uploads,
//       iam:PassRole of the execution role, the failed-create cleanup,
//       dev/stage-token.sh's reads;
// and a list of calls that must be refused (least privilege).
// Decided by @cloud-copilot/iam-simulate, except API Gateway's path-style
// actions (apigateway:PUT on arn:aws:apigateway:<region>::/apis), whose
// resources it does not know: those by ./matcher.mjs, which is also run on
// every call the simulator decides and must agree with it there.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { decide } from './matcher.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..', '..')
export const ACCOUNT = '111122223333'
export const REGION = 'eu-west-1'
const P = 'aws'

// ---------------------------------------------------------------- inputs

export function loadInputs() {
  const python = path.join(root, '.venv', 'bin', 'python')
  const docs = JSON.parse(execFileSync(python, [path.join(here, 'transform.py')], { cwd: root, maxBuffer: 64 << 20 }))
  const read = (f) => JSON.parse(fs.readFileSync(path.join(here, f), 'utf8'))
  const routeCalls = read('route-calls.json')
  // ROUTE_CALLS_RECORDED: the calls the Lambda tests recorded each handler
  // making (make test sets it after cargo test); a missing file is an error.
  const recordedPath = process.env.ROUTE_CALLS_RECORDED
  if (recordedPath) {
    const recorded = JSON.parse(fs.readFileSync(path.resolve(root, recordedPath), 'utf8'))
    let count = 0
    for (const [fn, spec] of Object.entries(recorded.functions)) {
      routeCalls.functions[fn] ??= { route: spec.route, calls: [] }
      routeCalls.functions[fn].calls.push(...spec.calls)
      count += spec.calls.length
    }
    if (count === 0) throw new Error(`${recordedPath}: no calls recorded`)
    console.log(`iam-check: ${count} calls recorded by the Lambda tests, evaluated beside route-calls.json`)
  }
  return { ...docs, handlers: read('handlers.json'), managed: read('managed-policies.json'), routeCalls }
}

/** The registry schemas cfn-lint ships in make test's .venv, by type. */
function shippedSchemas() {
  const lib = path.join(root, '.venv', 'lib')
  const py = fs.readdirSync(lib).find((d) => d.startsWith('python3'))
  const base = path.join(lib, py, 'site-packages', 'cfnlint', 'data', 'schemas')
  const providers = JSON.parse(fs.readFileSync(path.join(base, 'providers', 'us-east-1.json'), 'utf8'))
  return (type) => JSON.parse(fs.readFileSync(path.join(base, 'resources', `${providers[type]}.json`), 'utf8'))
}

// ---------------------------------------------------------------- a stage's world

const generated = (stack, logical) => `${stack}-${logical}-A1B2C3D4E5F6`.slice(0, 64)

/** Physical names, ids and ARNs of a template's resources, as CloudFormation would make them. */
function physical(stack, resources) {
  const out = {}
  for (const [id, r] of Object.entries(resources)) {
    const props = r.Properties ?? {}
    const named = (k) => (typeof props[k] === 'string' ? props[k] : null)
    out[id] = { type: r.Type, name: generated(stack, id), props }
    out[id].nameProp = props
  }
  return out
}

/** Resolves CloudFormation intrinsics for one stage: parameters, conditions, Ref, GetAtt, Sub, If, Join, Select, Split. */
function resolver({ stack, params, resources, conditions, refOf, attOf }) {
  const pseudo = { 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': P, 'AWS::StackName': stack, 'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackId': `arn:${P}:cloudformation:${REGION}:${ACCOUNT}:stack/${stack}/6f1c5e30-0000-4000-8000-000000000000`, 'AWS::NoValue': undefined }
  const cond = {}
  const condition = (name) => {
    if (!(name in cond)) cond[name] = Boolean(r(conditions[name]))
    return cond[name]
  }
  const ref = (name) => {
    if (name in pseudo) return pseudo[name]
    if (name in params) return params[name]
    if (name in resources) return refOf(name)
    throw new Error(`Ref ${name}: unknown`)
  }
  function r(v) {
    if (Array.isArray(v)) return v.map(r).filter((x) => x !== undefined)
    if (v === null || typeof v !== 'object') return v
    const keys = Object.keys(v)
    if (keys.length === 1) {
      const [k] = keys
      const a = v[k]
      switch (k) {
        case 'Ref': return ref(a)
        case 'Fn::GetAtt': { const [res, att] = Array.isArray(a) ? a : a.split('.'); return attOf(res, att) }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(a) ? [a[0], r(a[1])] : [a, {}]
          return text.replace(/\$\{([^}]+)\}/g, (_, n) => (n in vars ? vars[n] : n.includes('.') ? attOf(...n.split('.')) : ref(n)))
        }
        case 'Fn::If': return condition(a[0]) ? r(a[1]) : r(a[2])
        case 'Fn::Equals': return JSON.stringify(r(a[0])) === JSON.stringify(r(a[1]))
        case 'Fn::Not': return !r(a[0])
        case 'Fn::And': return a.every((x) => r(x))
        case 'Fn::Or': return a.some((x) => r(x))
        case 'Condition': return condition(a)
        case 'Fn::Join': return r(a[1]).join(a[0])
        case 'Fn::Select': return r(a[1])[Number(r(a[0]))]
        case 'Fn::Split': return r(a[1]).split(a[0])
      }
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, r(x)]).filter(([, x]) => x !== undefined))
  }
  return { resolve: r, condition }
}

const apiId = 'a1b2c3d4e5'
const poolId = `${REGION}_AbCdEfGhI`
const streamLabel = '2026-01-01T00:00:00.000'
const esmUuid = '14e0db71-0000-4000-8000-000000000000'

/** Everything one stage's check needs, from the two templates (mutate: the self-test's planted reverts). */
export function world(inputs, stage, mutate = {}) {
  const stack = `allotment-${stage}`
  const app = structuredClone(inputs.app)
  const deploy = structuredClone(inputs.deploy)
  mutate.app?.(app)
  mutate.deploy?.(deploy)

  // deploy/github-oidc-role.yaml
  const dres = deploy.Resources
  const dparams = { Repository: 'example/allotment', Environment: stage, CreateProvider: 'true' }
  const bucket = `allotment-${stage}-artifacts-${ACCOUNT}-${REGION}`
  const d = resolver({
    stack: `allotment-ci-${stage}`, params: dparams, resources: dres, conditions: deploy.Conditions ?? {},
    refOf: (id) => ({ FunctionBoundary: `arn:${P}:iam::${ACCOUNT}:policy/allotment-${stage}-function-boundary`, ArtifactsBucket: bucket, GitHubProvider: `arn:${P}:iam::${ACCOUNT}:oidc-provider/token.actions.githubusercontent.com` })[id],
    attOf: (id, att) => {
      if (att !== 'Arn') throw new Error(`GetAtt ${id}.${att}`)
      if (id === 'ArtifactsBucket') return `arn:${P}:s3:::${bucket}`
      return `arn:${P}:iam::${ACCOUNT}:role/${d.resolve(dres[id].Properties.RoleName)}`
    },
  })
  const roleName = (id) => d.resolve(dres[id].Properties.RoleName)
  const policyOf = (id) => d.resolve(dres[id].Properties.Policies[0].PolicyDocument)
  const execArn = `arn:${P}:iam::${ACCOUNT}:role/${roleName('CloudFormationExecutionRole')}`
  const boundaryArn = `arn:${P}:iam::${ACCOUNT}:policy/${d.resolve(dres.FunctionBoundary.Properties.ManagedPolicyName)}`

  // template.yaml, transformed, with this stage's samconfig overrides
  const params = Object.fromEntries(Object.entries(app.Parameters).map(([k, v]) => [k, v.Type === 'CommaDelimitedList' ? String(v.Default ?? '').split(',') : String(v.Default ?? '')]))
  Object.assign(params, { PermissionsBoundaryName: `allotment-${stage}-function-boundary`, AlarmEmail: 'oncall@example.org', ScopePrefix: 'allotment/' })
  const res = app.Resources
  const names = {}
  for (const [id, r] of Object.entries(res)) {
    const p = r.Properties ?? {}
    names[id] = generated(stack, id)
    if (r.Type === 'AWS::Logs::LogGroup' && p.LogGroupName) names[id] = null // resolved below
  }
  const a = resolver({
    stack, params, resources: res, conditions: app.Conditions ?? {},
    refOf: (id) => {
      const t = res[id].Type
      if (t === 'AWS::Cognito::UserPool') return poolId
      if (t === 'AWS::Cognito::UserPoolClient') return `${id.toLowerCase()}clientid0000000000`
      if (t === 'AWS::ApiGatewayV2::Api') return apiId
      if (t === 'AWS::SQS::Queue') return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${names[id]}`
      if (t === 'AWS::SecretsManager::Secret') return arnOf(id)
      if (t === 'AWS::SNS::Topic') return arnOf(id)
      return nameOf(id)
    },
    attOf: (id, att) => {
      if (att === 'Arn') return arnOf(id)
      if (att === 'StreamArn') return `${arnOf(id)}/stream/${streamLabel}`
      if (att === 'QueueName') return nameOf(id)
      throw new Error(`GetAtt ${id}.${att}`)
    },
  })
  function nameOf(id) {
    const p = res[id].Properties ?? {}
    const key = { 'AWS::Logs::LogGroup': 'LogGroupName', 'AWS::Events::EventBus': 'Name', 'AWS::Events::Archive': 'ArchiveName', 'AWS::CloudWatch::Dashboard': 'DashboardName', 'AWS::SecretsManager::Secret': 'Name', 'AWS::Cognito::UserPoolDomain': 'Domain' }[res[id].Type]
    return key && p[key] !== undefined ? a.resolve(p[key]) : names[id]
  }
  function arnOf(id) {
    const t = res[id].Type
    const n = nameOf(id)
    switch (t) {
      case 'AWS::DynamoDB::Table': return `arn:${P}:dynamodb:${REGION}:${ACCOUNT}:table/${n}`
      case 'AWS::Lambda::Function': return `arn:${P}:lambda:${REGION}:${ACCOUNT}:function:${n}`
      case 'AWS::IAM::Role': return `arn:${P}:iam::${ACCOUNT}:role/${n}`
      case 'AWS::SQS::Queue': return `arn:${P}:sqs:${REGION}:${ACCOUNT}:${n}`
      case 'AWS::SNS::Topic': return `arn:${P}:sns:${REGION}:${ACCOUNT}:${n}`
      case 'AWS::Logs::LogGroup': return `arn:${P}:logs:${REGION}:${ACCOUNT}:log-group:${n}:*`
      case 'AWS::Events::EventBus': return `arn:${P}:events:${REGION}:${ACCOUNT}:event-bus/${n}`
      case 'AWS::Events::Archive': return `arn:${P}:events:${REGION}:${ACCOUNT}:archive/${n}`
      case 'AWS::SecretsManager::Secret': return `arn:${P}:secretsmanager:${REGION}:${ACCOUNT}:secret:${n}-AbCdEf`
      case 'AWS::Cognito::UserPool': return `arn:${P}:cognito-idp:${REGION}:${ACCOUNT}:userpool/${poolId}`
      case 'AWS::CloudWatch::Alarm': return `arn:${P}:cloudwatch:${REGION}:${ACCOUNT}:alarm:${n}`
      case 'AWS::CloudWatch::Dashboard': return `arn:${P}:cloudwatch::${ACCOUNT}:dashboard/${n}`
      case 'AWS::Lambda::EventSourceMapping': return `arn:${P}:lambda:${REGION}:${ACCOUNT}:event-source-mapping:${esmUuid}`
    }
    throw new Error(`no ARN for ${id} (${t})`)
  }
  const exists = (id) => !res[id].Condition || a.condition(res[id].Condition)
  return {
    stage, stack, app, res, a, d, exists, nameOf, arnOf, bucket, execArn, boundaryArn,
    exec: policyOf('CloudFormationExecutionRole'),
    pipeline: policyOf('PipelineRole'),
    pipelineArn: `arn:${P}:iam::${ACCOUNT}:role/${roleName('PipelineRole')}`,
    boundary: d.resolve(dres.FunctionBoundary.Properties.PolicyDocument),
  }
}

// ---------------------------------------------------------------- the calls

const apigw = (p) => `arn:${P}:apigateway:${REGION}::${p}`
const tagsOf = (w, id) => {
  const t = w.res[id].Properties?.[w.handlers?.types?.[w.res[id].Type]?.tagging?.tagProperty?.split('/').pop() ?? 'Tags']
  const v = w.a.resolve(t)
  if (!v) return {}
  if (Array.isArray(v)) return Object.fromEntries(v.map((x) => [x.Key, x.Value]))
  return v
}
const systemTags = (w, id) => ({ 'aws:cloudformation:stack-name': w.stack, 'aws:cloudformation:logical-id': id, 'aws:cloudformation:stack-id': w.a.resolve({ Ref: 'AWS::StackId' }) })
const tagContext = (prefix, tags) => {
  const c = Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:${prefix}/${k}`, String(v)]))
  if (prefix === 'RequestTag' && Object.keys(tags).length) c['aws:TagKeys'] = Object.keys(tags)
  return c
}

/**
 * CloudFormation's calls for one resource and phase: each action the
 * type's handlers list (create: create + read, update: update + read,
 * delete: delete), less what this template never makes them use, with the
 * resource ARN and request context that action carries for this type.
 */
function resourceCalls(w, handlers, id, phase, withSystemTags) {
  const type = w.res[id].Type
  const h = handlers.types[type]
  if (!h) throw new Error(`${id}: no entry for ${type} in dev/iam/handlers.json`)
  if (phase === 'delete' && w.res[id].DeletionPolicy === 'Retain') return []
  const listed = new Set([...(h.handlers[phase] ?? []), ...(phase === 'delete' ? [] : h.handlers.read ?? [])])
  for (const e of h.extra) if (e.handlers.includes(phase)) e.actions.forEach((x) => listed.add(x))
  const skip = (action) => Object.keys(h.notCalled).some((k) => (k.endsWith(':*') ? action.toLowerCase().startsWith(k.slice(0, -1).toLowerCase()) : k.toLowerCase() === action.toLowerCase()))
  const refusedOnPurpose = (action) => Object.keys(h.refused).some((k) => k.toLowerCase() === action.toLowerCase())
  const tags = { ...tagsOf({ ...w, handlers }, id), ...(withSystemTags && h.tagging?.cloudFormationSystemTags ? systemTags(w, id) : {}) }
  const exists = phase !== 'create'
  const out = []
  for (const action of listed) {
    if (skip(action)) continue
    for (const call of shape(w, id, type, action, { tags, exists, phase })) {
      out.push({ who: 'execution role', id, type, phase, action: call.action ?? action, resource: call.resource, context: call.context ?? {}, expect: refusedOnPurpose(action) ? 'deny' : 'allow' })
    }
  }
  return out
}

/** The ARN(s) and context of one handler action on one resource (several calls where AWS checks several resources). */
function shape(w, id, type, action, { tags, exists, phase }) {
  const A = action.toLowerCase()
  const arn = () => w.arnOf(id)
  const onTags = exists ? tagContext('ResourceTag', tags) : {}
  const requestTags = tagContext('RequestTag', tags)
  const props = w.a.resolve(w.res[id].Properties ?? {})
  const one = (resource, context = {}) => [{ resource, context }]
  switch (type) {
    case 'AWS::ApiGatewayV2::Api': {
      // Body: an import (PUT /apis) that makes the routes, integrations and
      // authorizer too; tags afterwards (POST /tags/<arn>). Reads list them.
      const me = apigw(`/apis/${apiId}`)
      const tagsPath = apigw(`/tags/${encodeURIComponent(`arn:${P}:apigateway:${REGION}::/apis/${apiId}`)}`)
      if (A === 'apigateway:put') return phase === 'create' ? one(apigw('/apis')) : one(me, onTags)
      if (A === 'apigateway:post') return phase === 'create' ? [{ resource: tagsPath, context: requestTags }] : [{ resource: tagsPath, context: { ...requestTags, ...onTags } }]
      if (A === 'apigateway:get') return ['', '/routes', '/integrations', '/authorizers'].map((s) => ({ resource: apigw(`/apis/${apiId}${s}`), context: s ? {} : onTags }))
      if (A === 'apigateway:patch') return one(me, onTags)
      if (A === 'apigateway:delete') return phase === 'delete' ? one(me, onTags) : one(tagsPath, onTags)
      break
    }
    case 'AWS::ApiGatewayV2::Stage': {
      const stage = apigw(`/apis/${apiId}/stages/${encodeURIComponent(props.StageName)}`)
      const tagsPath = apigw(`/tags/${encodeURIComponent(`arn:${P}:apigateway:${REGION}::/apis/${apiId}/stages/${props.StageName}`)}`)
      // A stage's own tags: whether its API's tags count as aws:ResourceTag
      // on it is undocumented, so none are assumed.
      if (A === 'apigateway:post') return phase === 'create' ? [{ resource: apigw(`/apis/${apiId}/stages`) }, { resource: tagsPath, context: requestTags }] : one(tagsPath, requestTags)
      if (A === 'apigateway:get' || A === 'apigateway:patch') return one(stage)
      if (A === 'apigateway:delete') return phase === 'delete' ? one(stage) : one(tagsPath)
      if (A === 'logs:createloggroup') return one(props.AccessLogSettings.DestinationArn.replace(/:\*$/, ''))
      if (A.startsWith('logs:')) return one('*')
      break
    }
    case 'AWS::Cognito::UserPool':
      if (A === 'cognito-idp:createuserpool') return one('*', requestTags)
      if (A === 'cognito-idp:tagresource') return one(arn(), { ...requestTags, ...(exists ? onTags : tagContext('ResourceTag', tags)) })
      return one(arn(), exists || A !== 'cognito-idp:createuserpool' ? tagContext('ResourceTag', tags) : {})
    case 'AWS::Cognito::UserPoolClient':
    case 'AWS::Cognito::UserPoolDomain':
    case 'AWS::Cognito::UserPoolResourceServer': {
      if (A === 'cognito-idp:describeuserpooldomain') return one('*')
      // Calls on the pool: it carries its own tags (UserPoolTags), and CloudFormation's only where its schema says so.
      const pool = Object.keys(w.res).find((k) => w.res[k].Type === 'AWS::Cognito::UserPool')
      return one(w.arnOf(pool), tagContext('ResourceTag', w.poolTags))
    }
    case 'AWS::DynamoDB::Table':
      if (A === 'dynamodb:createtable') return one(arn(), requestTags)
      if (A === 'dynamodb:tagresource') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::Events::Archive':
      if (A === 'events:createarchive') return [{ resource: arn() }, { resource: props.SourceArn }]
      return one(arn())
    case 'AWS::Events::EventBus':
      if (A === 'events:createeventbus' || A === 'events:tagresource') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::IAM::Role': {
      const bounded = props.PermissionsBoundary ? { 'iam:PermissionsBoundary': props.PermissionsBoundary } : {}
      if (A === 'iam:createrole') return one(arn(), { ...bounded, ...requestTags })
      if (A === 'iam:attachrolepolicy' || A === 'iam:detachrolepolicy') return (props.ManagedPolicyArns ?? []).map((p) => ({ resource: arn(), context: { ...bounded, 'iam:PolicyARN': p } }))
      if (['iam:putrolepolicy', 'iam:deleterolepolicy', 'iam:updateassumerolepolicy', 'iam:putrolepermissionsboundary', 'iam:deleterolepermissionsboundary'].includes(A)) return one(arn(), bounded)
      if (A === 'iam:tagrole') return one(arn(), requestTags)
      return one(arn())
    }
    case 'AWS::Lambda::EventSourceMapping': {
      const fn = `arn:${P}:lambda:${REGION}:${ACCOUNT}:function:${props.FunctionName}`
      if (A === 'lambda:createeventsourcemapping') return one('*', { 'lambda:FunctionArn': fn, ...requestTags })
      if (A === 'lambda:tagresource' || A === 'lambda:untagresource' || A === 'lambda:listtags') return one(arn(), A === 'lambda:tagresource' ? requestTags : {})
      return one(arn(), { 'lambda:FunctionArn': fn })
    }
    case 'AWS::Lambda::Function':
      if (A === 'iam:passrole') return one(props.Role, { 'iam:PassedToService': 'lambda.amazonaws.com' })
      if (A === 's3:getobject' || A === 's3:getobjectversion') return one(`arn:${P}:s3:::${w.bucket}/${w.stack}/0123456789abcdef`)
      if (A === 'lambda:getlayerversion') return one(`arn:${P}:lambda:${REGION}:901920570463:layer:aws-otel-collector-arm64-ver-0-115-0:3`)
      if (A === 'lambda:createfunction' || A === 'lambda:tagresource') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::Lambda::Permission': {
      const fn = `arn:${P}:lambda:${REGION}:${ACCOUNT}:function:${props.FunctionName}`
      return one(fn, A === 'lambda:addpermission' ? { 'lambda:Principal': props.Principal } : {})
    }
    case 'AWS::Logs::LogGroup': {
      const group = arn().replace(/:\*$/, '')
      if (['logs:describeloggroups', 'logs:describeresourcepolicies', 'logs:describeindexpolicies', 'logs:putresourcepolicy', 'logs:createlogdelivery'].includes(A)) return one('*')
      if (A === 'logs:createloggroup' || A === 'logs:tagresource') return one(group, requestTags)
      return one(group)
    }
    case 'AWS::SNS::Topic':
      if (A === 'sns:createtopic' || A === 'sns:tagresource') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::SQS::Queue':
      if (A === 'sqs:createqueue' || A === 'sqs:tagqueue') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::SecretsManager::Secret':
      if (A === 'secretsmanager:getrandompassword') return one('*')
      if (A === 'secretsmanager:createsecret') return one(arn(), { ...requestTags, 'secretsmanager:Name': w.nameOf(id) })
      if (A === 'secretsmanager:tagresource') return one(arn(), requestTags)
      return one(arn())
    case 'AWS::CloudWatch::Alarm':
    case 'AWS::CloudWatch::Dashboard':
      if (A === 'cloudwatch:putmetricalarm' || A === 'cloudwatch:putdashboard' || A === 'cloudwatch:tagresource') return one(arn(), requestTags)
      return one(arn())
  }
  return one(arn())
}

/** (b), (c): what the running stack's functions call, as their roles under the boundary. */
function functionCalls(w, inputs) {
  const out = []
  const table = Object.keys(w.res).find((k) => w.res[k].Type === 'AWS::DynamoDB::Table')
  const tableArn = w.arnOf(table)
  const logGroup = w.a.resolve(w.app.Globals?.Function?.LoggingConfig?.LogGroup ?? { Ref: 'FunctionLogs' })
  for (const [fn, spec] of Object.entries(inputs.routeCalls.functions)) {
    for (const c of spec.calls) {
      if (c.on === 'table') {
        // Each key alone (GetItem), and all of them in one call (a batch or transaction).
        for (const keys of [...c.keys.map((k) => [k]), c.keys]) out.push({ who: fn, id: fn, action: c.action, resource: tableArn, context: { 'dynamodb:LeadingKeys': keys }, why: `${spec.route} on the table` })
      } else {
        // What AWS puts in dynamodb:LeadingKeys for an index Query is
        // undocumented: the policy must allow it either way.
        for (const context of [{}, { 'dynamodb:LeadingKeys': [c.indexKey] }]) out.push({ who: fn, id: fn, action: c.action, resource: `${tableArn}/index/${c.on}`, context, why: `${spec.route} on ${c.on}` })
      }
    }
  }
  for (const [fn, r] of Object.entries(w.res)) {
    if (r.Type !== 'AWS::Lambda::Function') continue
    const logs = `arn:${P}:logs:${REGION}:${ACCOUNT}:log-group:${w.nameOf('FunctionLogs')}:log-stream:2026/01/01/[$LATEST]0123456789abcdef`
    out.push({ who: fn, id: fn, action: 'logs:CreateLogStream', resource: logs, why: 'its log lines' }, { who: fn, id: fn, action: 'logs:PutLogEvents', resource: logs, why: 'its log lines' })
    out.push({ who: fn, id: fn, action: 'xray:PutTraceSegments', resource: '*', why: 'TracingMode Active' })
    const env = w.a.resolve(r.Properties.Environment?.Variables ?? {})
    if (env.PAGE_TOKEN_SECRET_ARN) out.push({ who: fn, id: fn, action: 'secretsmanager:GetSecretValue', resource: env.PAGE_TOKEN_SECRET_ARN, why: 'its page-token key, once per cold start' })
  }
  // The publisher: its stream, read by its event source mapping with its
  // role; its bus; its dead-letter queue (from the function, and the
  // mapping's OnFailure destination, also sent with its role).
  const streamArn = `${tableArn}/stream/${streamLabel}`
  const pub = 'PublishEventsFunction'
  for (const action of ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']) out.push({ who: pub, id: pub, action, resource: streamArn, why: 'the stream, through its event source mapping' })
  out.push({ who: pub, id: pub, action: 'dynamodb:ListStreams', resource: '*', why: 'the stream, through its event source mapping' })
  out.push({ who: pub, id: pub, action: 'events:PutEvents', resource: w.arnOf('EventBus'), why: 'each domain event' })
  out.push({ who: pub, id: pub, action: 'sqs:SendMessage', resource: w.arnOf('EventsDeadLetterQueue'), why: 'poison records and expired batches' })
  return out.map((c) => ({ ...c, expect: 'allow', context: c.context ?? {} }))
}

/** (d) the pipeline role's own steps, and what it must not be able to do. */
function pipelineCalls(w) {
  const stackArn = `arn:${P}:cloudformation:${REGION}:${ACCOUNT}:stack/${w.stack}/6f1c5e30-0000-4000-8000-000000000000`
  const transform = `arn:${P}:cloudformation:${REGION}:aws:transform/Serverless-2016-10-31`
  const object = `arn:${P}:s3:::${w.bucket}/${w.stack}/0123456789abcdef.template`
  const pool = `arn:${P}:cognito-idp:${REGION}:${ACCOUNT}:userpool/${poolId}`
  const asExec = { 'cloudformation:RoleArn': w.execArn, 'cloudformation:ChangeSetName': 'samcli-deploy1767225600' }
  const c = (action, resource, context, why, expect = 'allow') => ({ who: 'pipeline role', action, resource, context: context ?? {}, why, expect })
  const other = w.stage === 'dev' ? 'prod' : 'dev'
  return [
    c('cloudformation:DescribeStacks', stackArn, {}, 'sam deploy: does the stack exist; deploy.sh: its status; stage-token.sh: its outputs'),
    c('cloudformation:GetTemplateSummary', stackArn, {}, 'sam deploy: the existing parameters'),
    c('cloudformation:DescribeStackEvents', stackArn, {}, 'sam deploy: progress'),
    c('s3:PutObject', object, {}, 'sam deploy: function code and the template'),
    c('s3:GetObject', object, {}, 'sam deploy: does an artifact exist (HeadObject); CloudFormation reads TemplateURL as the caller'),
    c('s3:ListBucket', `arn:${P}:s3:::${w.bucket}`, {}, 'sam deploy: HeadObject answers 404, not 403'),
    c('cloudformation:CreateChangeSet', stackArn, asExec, 'sam deploy'),
    c('cloudformation:CreateChangeSet', transform, asExec, 'sam deploy: the AWS::Serverless transform'),
    c('iam:PassRole', w.execArn, { 'iam:PassedToService': 'cloudformation.amazonaws.com' }, 'sam deploy --role-arn'),
    c('cloudformation:DescribeChangeSet', stackArn, {}, 'sam deploy: the change set'),
    c('cloudformation:ExecuteChangeSet', stackArn, { 'cloudformation:ChangeSetName': asExec['cloudformation:ChangeSetName'] }, 'sam deploy'),
    c('cloudformation:DeleteStack', stackArn, {}, 'sam deploy --on-failure DELETE; deploy.sh: a stack left in ROLLBACK_COMPLETE'),
    c('cloudformation:RollbackStack', stackArn, {}, 'sam deploy --on-failure DELETE on UPDATE_FAILED'),
    c('cloudformation:ContinueUpdateRollback', stackArn, {}, 'deploy.sh: UPDATE_ROLLBACK_FAILED'),
    c('cognito-idp:DescribeUserPoolClient', pool, tagContext('ResourceTag', w.poolTags), 'dev/stage-token.sh: the provisioner client\'s secret'),
    // least privilege
    c('cloudformation:CreateChangeSet', stackArn, { 'cloudformation:ChangeSetName': 'x' }, 'a change set run as the pipeline role itself', 'deny'),
    c('cloudformation:CreateChangeSet', `arn:${P}:cloudformation:${REGION}:${ACCOUNT}:stack/allotment-${other}/6f1c5e30-0000-4000-8000-000000000000`, asExec, `the other stage's stack`, 'deny'),
    c('s3:PutObject', `arn:${P}:s3:::allotment-${other}-artifacts-${ACCOUNT}-${REGION}/x`, {}, `the other stage's artifacts`, 'deny'),
    c('iam:PassRole', `arn:${P}:iam::${ACCOUNT}:role/${w.stack}-PutNamespaceFunctionRole-A1B2C3D4E5F6`, { 'iam:PassedToService': 'lambda.amazonaws.com' }, 'any role but the execution role', 'deny'),
    c('cognito-idp:DescribeUserPoolClient', pool, tagContext('ResourceTag', { 'allotment:stack': `allotment-${other}` }), `the other stage's pool`, 'deny'),
    c('dynamodb:DeleteTable', `arn:${P}:dynamodb:${REGION}:${ACCOUNT}:table/${w.stack}-Table-A1B2C3D4E5F6`, {}, 'the table', 'deny'),
  ]
}

/** What the execution role must refuse whatever the template says. */
function refusedByExec(w) {
  const c = (action, resource, context, why) => ({ who: 'execution role', action, resource, context: context ?? {}, why, expect: 'deny' })
  const role = `arn:${P}:iam::${ACCOUNT}:role/${w.stack}-PutNamespaceFunctionRole-A1B2C3D4E5F6`
  return [
    c('dynamodb:DeleteTable', `arn:${P}:dynamodb:${REGION}:${ACCOUNT}:table/${w.stack}-Table-A1B2C3D4E5F6`, {}, 'the retained table'),
    c('iam:CreateRole', role, {}, 'a role without the boundary'),
    c('iam:AttachRolePolicy', role, { 'iam:PermissionsBoundary': w.boundaryArn, 'iam:PolicyARN': `arn:${P}:iam::aws:policy/AdministratorAccess` }, 'another managed policy'),
    c('iam:PassRole', role, { 'iam:PassedToService': 'ec2.amazonaws.com' }, 'a function role to another service'),
    c('iam:CreatePolicyVersion', w.boundaryArn, {}, 'the boundary itself'),
    c('iam:PutRolePolicy', w.pipelineArn, { 'iam:PermissionsBoundary': w.boundaryArn }, 'the pipeline role'),
    c('cognito-idp:CreateUserPool', '*', {}, 'a pool without the stack tag'),
    c('cognito-idp:DeleteUserPool', `arn:${P}:cognito-idp:${REGION}:${ACCOUNT}:userpool/${REGION}_Another`, {}, 'a pool of no stack'),
  ]
}

export function allCalls(w, inputs, withSystemTags) {
  const pool = Object.keys(w.res).find((k) => w.res[k].Type === 'AWS::Cognito::UserPool')
  const poolSchemaSays = inputs.handlers.types['AWS::Cognito::UserPool'].tagging?.cloudFormationSystemTags
  w.poolTags = pool ? { ...tagsOf({ ...w, handlers: inputs.handlers }, pool), ...(withSystemTags && poolSchemaSays ? systemTags(w, pool) : {}) } : {}
  const calls = []
  for (const id of Object.keys(w.res)) {
    if (!w.exists(id)) continue
    for (const phase of ['create', 'update', 'delete']) calls.push(...resourceCalls(w, inputs.handlers, id, phase, withSystemTags))
  }
  return [...calls, ...refusedByExec(w), ...functionCalls(w, inputs), ...pipelineCalls(w)]
}

// ---------------------------------------------------------------- deciding

function policiesOf(w, inputs, who) {
  if (who === 'execution role') return { identity: [w.exec], boundary: null }
  if (who === 'pipeline role') return { identity: [w.pipeline], boundary: null }
  const role = w.res[who].Properties.Role
  const roleId = role?.['Fn::GetAtt']?.[0]
  const props = w.a.resolve(w.res[roleId].Properties)
  const managed = (props.ManagedPolicyArns ?? []).map((arn) => {
    const m = inputs.managed.policies[arn]
    if (!m) throw new Error(`${who}: managed policy ${arn} is not written down in dev/iam/managed-policies.json`)
    return m.document
  })
  const inline = (props.Policies ?? []).map((p) => p.PolicyDocument)
  let boundary = null
  if (props.PermissionsBoundary) {
    if (props.PermissionsBoundary !== w.boundaryArn) throw new Error(`${who}: boundary ${props.PermissionsBoundary} is not the stage's ${w.boundaryArn}`)
    boundary = w.boundary
  }
  return { identity: [...inline, ...managed], boundary }
}

// What iam-simulate answers 'no.resource.types' for (its action data has no
// such resource): API Gateway's path-style resources, and the transform
// resource CreateChangeSet is also authorized on when a template names
// Transform: AWS::Serverless-2016-10-31 (AWS SAM Developer Guide, "Managing
// AWS SAM permissions with CloudFormation mechanisms"). Only these go to
// the path matcher; any other refusal by the simulator fails the check.
const simulatorCannotDecide = (call) => call.action.toLowerCase().startsWith('apigateway:') || /^arn:[^:]+:cloudformation:[^:]*:aws:transform\//.test(call.resource)

export async function decideCall(w, inputs, call) {
  const { identity, boundary } = policiesOf(w, inputs, call.who)
  const principal = call.who === 'execution role' ? w.execArn : call.who === 'pipeline role' ? w.pipelineArn : `arn:${P}:iam::${ACCOUNT}:role/${w.stack}-${call.who}Role-A1B2C3D4E5F6`
  if (simulatorCannotDecide(call)) return { decision: decide({ identity, boundary, action: call.action, resource: call.resource, context: call.context }), by: 'path matcher' }
  const simulate = (resource) => runSimulation({
    request: { principal, action: call.action, resource: { resource, accountId: ACCOUNT }, contextVariables: call.context },
    identityPolicies: identity.map((policy, i) => ({ name: `p${i}`, policy })),
    permissionBoundaryPolicies: boundary ? [{ name: 'boundary', policy: boundary }] : undefined,
    serviceControlPolicies: [], resourceControlPolicies: [],
  }, {})
  let sim = await simulate(call.resource)
  // An action with no resource type (the Service Authorization Reference's
  // empty Resource column) is authorized against "*", whatever it acts on.
  if (sim.resultType === 'error' && sim.errors?.message === 'must.use.wildcard') {
    call.resource = '*'
    sim = await simulate('*')
  }
  if (sim.resultType === 'wildcard') throw new Error(`${call.action} on "*": it acts on a resource type; give its ARN`)
  const own = decide({ identity, boundary, action: call.action, resource: call.resource, context: call.context })
  if (sim.resultType === 'error') throw new Error(`iam-simulate refused the request ${call.action} ${call.resource}: ${JSON.stringify(sim.errors)}`)
  const decision = sim.overallResult === 'Allowed' ? 'allow' : 'deny'
  // The matcher, checked on every call the simulator decides.
  if (own !== decision) throw new Error(`path matcher says ${own}, iam-simulate ${decision}: ${call.who} ${call.action} ${call.resource} ${JSON.stringify(call.context)}`)
  return { decision, by: 'iam-simulate' }
}

// ---------------------------------------------------------------- the check

/** handlers.json against the schemas cfn-lint ships: nothing listed there may be missing here. */
export function schemaDrift(inputs) {
  const schema = shippedSchemas()
  const problems = []
  const types = new Set(Object.values(inputs.app.Resources).map((r) => r.Type))
  for (const t of types) {
    const h = inputs.handlers.types[t]
    if (!h) { problems.push(`${t}: in the transformed template, not in dev/iam/handlers.json`); continue }
    const s = schema(t)
    for (const phase of ['create', 'read', 'update', 'delete']) {
      const theirs = [...(s.handlers?.[phase]?.permissions ?? [])].sort()
      const ours = [...(h.handlers[phase] ?? [])].sort()
      if (JSON.stringify(theirs) !== JSON.stringify(ours)) problems.push(`${t} ${phase}: the schema lists ${theirs.join(' ')}; dev/iam/handlers.json ${ours.join(' ')}`)
    }
    if (JSON.stringify(s.tagging ?? null) !== JSON.stringify(h.tagging ?? null)) problems.push(`${t}: tagging differs from the schema`)
  }
  return problems
}

export async function runCheck({ inputs = loadInputs(), mutate = {}, stages = ['dev', 'prod'], quiet = false } = {}) {
  const failures = []
  const counts = { 'iam-simulate': 0, 'path matcher': 0 }
  for (const stage of stages) {
    for (const withSystemTags of [true, false]) {
      const w = world(inputs, stage, mutate)
      for (const call of allCalls(w, inputs, withSystemTags)) {
        const { decision, by } = await decideCall(w, inputs, call)
        counts[by]++
        if (decision !== call.expect) failures.push({ stage, withSystemTags, ...call, decision, by })
      }
    }
  }
  if (!quiet) console.log(`iam-check: ${counts['iam-simulate']} calls decided by iam-simulate, ${counts['path matcher']} by the path matcher (API Gateway), stages ${stages.join(', ')}, with and without CloudFormation's system tags`)
  return failures
}

async function main() {
  const inputs = loadInputs()
  const drift = schemaDrift(inputs)
  const failures = await runCheck({ inputs })
  for (const f of failures) console.error(`iam-check: ${f.stage}${f.withSystemTags ? '' : ' (no system tags)'}: ${f.who}${f.id && f.id !== f.who ? ` (${f.id}${f.phase ? ` ${f.phase}` : ''})` : ''}: ${f.action} on ${f.resource} is ${f.decision === 'allow' ? 'ALLOWED, should be refused' : 'DENIED'} [${f.by}] ${f.why ?? ''} ${JSON.stringify(f.context)}`)
  for (const d of drift) console.error(`iam-check: schema drift: ${d}`)
  if (failures.length || drift.length) {
    console.error(`iam-check: ${failures.length} wrong decisions, ${drift.length} schema differences`)
    process.exit(1)
  }
  console.log('iam-check: every call allowed, every refusal refused')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main()
