// A small IAM evaluator for what iam-simulate cannot decide: API Gateway's
// path-style actions (apigateway:GET/POST/PUT/PATCH/DELETE on
// arn:aws:apigateway:<region>::/apis/...), whose resource types its action
// data does not know. It implements only the documented rules the
// policies here use (IAM User Guide, "Policy evaluation logic"): an
// explicit Deny wins; otherwise an Allow in the identity policies, and in
// the permissions boundary when there is one; Action and Resource globs (*
// and ?, actions case-insensitively); Condition operators StringEquals,
// StringLike, StringEqualsIfExists, ArnLike, ArnEquals, ArnNotEquals, Bool,
// with the ForAllValues: and ForAnyValue: qualifiers; a key missing from
// the request fails every operator but the ...IfExists ones, and the
// negated ones (Arn/StringNot...) are true then. Any other operator throws:
// it never guesses. check.mjs also runs it on every call the simulator
// decides and fails if they disagree; self-test.mjs shows it can refuse.

const glob = (pattern, value, caseless = false) => {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, caseless ? 'is' : 's')
  return re.test(value)
}
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])

const operators = {
  StringEquals: (want, have) => want === have,
  StringLike: (want, have) => glob(want, have),
  ArnLike: (want, have) => glob(want, have),
  ArnEquals: (want, have) => glob(want, have),
  Bool: (want, have) => String(want).toLowerCase() === String(have).toLowerCase(),
}
const negated = { ArnNotEquals: 'ArnEquals', ArnNotLike: 'ArnLike', StringNotEquals: 'StringEquals', StringNotLike: 'StringLike' }

function conditionHolds(operatorName, block, context) {
  let op = operatorName
  let qualifier = null
  const q = op.match(/^(ForAllValues|ForAnyValue):(.*)$/)
  if (q) [, qualifier, op] = q
  const ifExists = op.endsWith('IfExists')
  if (ifExists) op = op.slice(0, -'IfExists'.length)
  const negate = op in negated
  const base = negate ? negated[op] : op
  const test = operators[base]
  if (!test) throw new Error(`matcher: condition operator ${operatorName} is not implemented`)
  return Object.entries(block).every(([key, wanted]) => {
    const present = Object.keys(context).find((k) => k.toLowerCase() === key.toLowerCase())
    const wants = list(wanted).map(String)
    if (present === undefined) {
      if (qualifier === 'ForAllValues') return true // documented: true for a missing (empty) set
      return ifExists || negate
    }
    const haves = list(context[present]).map(String)
    const matchOne = (h) => wants.some((w) => test(w, h))
    let result
    if (qualifier === 'ForAllValues') result = haves.every(matchOne)
    else if (qualifier === 'ForAnyValue') result = haves.some(matchOne)
    else result = haves.some(matchOne)
    return negate ? !result : result
  })
}

function statementApplies(s, action, resource, context) {
  const actionOk = s.Action !== undefined ? list(s.Action).some((a) => glob(a, action, true)) : !list(s.NotAction).some((a) => glob(a, action, true))
  if (!actionOk) return false
  const resourceOk = s.Resource !== undefined ? list(s.Resource).some((r) => glob(r, resource)) : !list(s.NotResource).some((r) => glob(r, resource))
  if (!resourceOk) return false
  return Object.entries(s.Condition ?? {}).every(([op, block]) => conditionHolds(op, block, context))
}

/** 'allow' or 'deny' for one request, from identity policies and an optional boundary. */
export function decide({ identity, boundary, action, resource, context = {} }) {
  const statements = (docs) => docs.flatMap((d) => list(d.Statement))
  const mine = statements(identity)
  const bound = boundary ? statements([boundary]) : []
  const applying = (ss, effect) => ss.some((s) => s.Effect === effect && statementApplies(s, action, resource, context))
  if (applying(mine, 'Deny') || applying(bound, 'Deny')) return 'deny'
  if (!applying(mine, 'Allow')) return 'deny'
  if (boundary && !applying(bound, 'Allow')) return 'deny'
  return 'allow'
}
