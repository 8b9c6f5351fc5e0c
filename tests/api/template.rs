//! template.yaml, the local front and openapi.json describe the same API.

use std::collections::BTreeSet;

use allotment::routes::{NOT_FOUND, ROUTES};
use allotment_dev::front::OPENAPI_JSON;
use allotment_dev::template;
use serde_json::Value;

#[test]
fn template_routes_and_local_front_routes_are_the_same() {
    let in_template: BTreeSet<(String, String, String)> =
        template::routes().unwrap().into_iter().map(|r| (r.method, r.path, r.binary)).collect();
    let mut in_front: BTreeSet<(String, String, String)> =
        ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_owned(), r.binary.to_owned())).collect();
    in_front.insert(("ANY".into(), NOT_FOUND.path.to_owned(), NOT_FOUND.binary.to_owned()));
    assert_eq!(in_template, in_front);
}

/// Each route's scopes are declared once, in the route table: API Gateway's
/// `AuthorizationScopes` are exactly those, bare and with the stack's
/// `ScopePrefix` (Cognito's `allotment/admin`); routes any signed-in caller
/// may use have none.
#[test]
fn the_gateways_authorization_scopes_are_the_route_tables() {
    use allotment::routes::Access;
    let in_template = template::routes().unwrap();
    for route in ROUTES {
        let t = in_template.iter().find(|t| t.binary == route.binary).unwrap();
        let want: Vec<String> = match route.access {
            Access::Scopes(scopes) => scopes.iter().flat_map(|s| [s.to_string(), format!("!Sub ${{ScopePrefix}}{s}")]).collect(),
            Access::SignedIn | Access::Public => Vec::new(),
        };
        assert_eq!(t.scopes, want, "{} {}", route.method, route.path);
    }
    // `$default` is behind the authorizer too (no `Auth: Authorizer: NONE`):
    // a caller without a valid token gets 401 and no function runs.
    assert_eq!(NOT_FOUND.access, Access::SignedIn);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let default = doc["Resources"].as_mapping().unwrap().values().find(|r| r["Properties"]["Events"]["Api"]["Properties"]["Path"].as_str() == Some("$default")).unwrap();
    assert!(default["Properties"]["Events"]["Api"]["Properties"].get("Auth").is_none(), "$default keeps the default authorizer");
    assert_eq!(doc["Resources"]["Api"]["Properties"]["Auth"]["DefaultAuthorizer"].as_str(), Some("Jwt"));
}

#[test]
fn every_template_function_is_an_arm64_cargolambda_build_of_a_workspace_binary() {
    let functions = template::functions().unwrap();
    let bins: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let in_template: BTreeSet<String> = functions.iter().map(|(_, binary)| binary.clone()).collect();
    assert_eq!(in_template, bins, "one function per binary");
    // Every route's, and the stream's publisher.
    let routes: BTreeSet<String> = template::routes().unwrap().into_iter().map(|r| r.binary).collect();
    assert_eq!(bins.difference(&routes).collect::<Vec<_>>(), ["publish-events"]);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let globals = &doc["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (function, _) in &functions {
        assert_eq!(doc["Resources"][function]["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{function}");
    }
    // The publisher reads the stream and writes to the bus and its dead-letter queue: no table access of its own.
    let publisher = &doc["Resources"]["PublishEventsFunction"]["Properties"];
    let policies = serde_yaml_ng::to_string(&publisher["Policies"]).unwrap();
    assert!(!policies.contains("dynamodb:"), "{policies}");
    let stream = &publisher["Events"]["Stream"]["Properties"];
    assert_eq!(stream["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    assert_eq!(stream["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(matches!(stream["DestinationConfig"]["OnFailure"]["Destination"], serde_yaml_ng::Value::Tagged(_)), "failed batches go to the dead-letter queue");
}

#[test]
fn openapi_documents_every_template_route() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for r in template::routes().unwrap().into_iter().filter(|r| r.path != "$default") {
        let op = &doc["paths"][&r.path][r.method.to_lowercase()];
        assert!(op.is_object(), "openapi.json lacks {} {}", r.method, r.path);
        assert!(op["responses"].is_object(), "{} {} has no responses", r.method, r.path);
    }
}

#[tokio::test]
async fn the_local_table_is_made_from_the_template_definition() {
    let api = allotment_tests::TestApi::start().await;
    let table = api.app.db.client.describe_table().table_name(&api.table).send().await.unwrap().table.unwrap();
    let props = template::table_properties().unwrap();
    let keys: Vec<String> = table.key_schema().iter().map(|k| k.attribute_name().to_owned()).collect();
    let want: Vec<String> = props.key_schema.iter().map(|k| k.attribute_name.clone()).collect();
    assert_eq!(keys, want);
    let gsis: Vec<String> = table.global_secondary_indexes().iter().filter_map(|g| g.index_name().map(str::to_owned)).collect();
    assert_eq!(gsis, props.global_secondary_indexes.iter().map(|g| g.index_name.clone()).collect::<Vec<_>>());
    let ttl = api.app.db.client.describe_time_to_live().table_name(&api.table).send().await.unwrap();
    let ttl_attr = ttl.time_to_live_description().and_then(|d| d.attribute_name()).map(str::to_owned);
    assert_eq!(ttl_attr, props.time_to_live_specification.map(|t| t.attribute_name));
}

/// Every log group the stack makes has a retention, and the functions log to one of them.
#[test]
fn every_log_group_has_a_retention_and_the_functions_use_one() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let groups: Vec<&serde_yaml_ng::Value> =
        resources.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::Logs::LogGroup")).map(|(k, _)| k).collect();
    assert!(groups.len() >= 2, "{groups:?}");
    for (name, r) in resources.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::Logs::LogGroup")) {
        assert!(r["Properties"]["RetentionInDays"].as_u64().is_some_and(|d| d > 0), "{name:?} keeps logs forever");
    }
    match &doc["Globals"]["Function"]["LoggingConfig"]["LogGroup"] {
        serde_yaml_ng::Value::Tagged(t) => assert!(groups.iter().any(|g| g.as_str() == t.value.as_str()), "{t:?}"),
        other => panic!("functions log to their default groups: {other:?}"),
    }
}

/// The pipeline's deploy role trusts exactly this repository's jobs in one
/// environment: GitHub's OIDC audience and the token's `sub` pinned with
/// StringEquals (no wildcard), and its third-party actions are pinned by commit.
#[test]
fn the_pipeline_trusts_one_repository_and_environment_and_pins_its_actions() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let role: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(format!("{root}/deploy/github-oidc-role.yaml")).unwrap()).unwrap();
    let statements = role["Resources"]["PipelineRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"].as_sequence().unwrap();
    assert_eq!(statements.len(), 1);
    let condition = &statements[0]["Condition"];
    assert!(condition.get("StringLike").is_none(), "no wildcard subjects");
    let equals = &condition["StringEquals"];
    assert_eq!(equals["token.actions.githubusercontent.com:aud"].as_str(), Some("sts.amazonaws.com"));
    match &equals["token.actions.githubusercontent.com:sub"] {
        serde_yaml_ng::Value::Tagged(t) => assert_eq!(t.value.as_str(), Some("repo:${Repository}:environment:${Environment}")),
        other => panic!("sub not pinned: {other:?}"),
    }
    let pipeline = std::fs::read_to_string(format!("{root}/.github/workflows/pipeline.yml")).unwrap();
    for line in pipeline.lines().filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")) {
        let reference = line.split("uses:").nth(1).unwrap().trim();
        let sha = reference.split('@').nth(1).unwrap_or_default().split_whitespace().next().unwrap_or_default();
        assert!(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "not pinned by commit: {line}");
    }
    // Roles the execution role (CloudFormation's) writes carry the function
    // boundary; it passes them to Lambda only.
    let role_statements = role["Resources"]["CloudFormationExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_sequence().unwrap();
    let sid = |name: &str| role_statements.iter().find(|s| s["Sid"].as_str() == Some(name)).unwrap_or_else(|| panic!("no {name}"));
    assert!(sid("FunctionRolesBounded")["Condition"]["StringEquals"].get("iam:PermissionsBoundary").is_some());
    assert_eq!(sid("FunctionRolesPassedToLambdaOnly")["Condition"]["StringEquals"]["iam:PassedToService"].as_str(), Some("lambda.amazonaws.com"));
    assert_eq!(sid("NotItselfNorTheBoundary")["Effect"].as_str(), Some("Deny"));
    let app: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    assert!(app["Globals"]["Function"].get("PermissionsBoundary").is_some(), "functions take the boundary");
    // Credentials come after every install in each deploy job.
    for job in pipeline.split("\n  deploy-").skip(1) {
        let creds = job.find("configure-aws-credentials").unwrap();
        assert!(job.find("make deploy-tools").unwrap() < creds, "an install after credentials");
    }
}

/// Each function's IAM statements allow only the partition-key prefixes its
/// route declares (`dynamodb:LeadingKeys`); the in-process Lambda test checks
/// the routes touch nothing else.
#[test]
fn every_functions_policy_is_limited_to_its_routes_key_prefixes() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let in_template = template::routes().unwrap();
    for route in ROUTES.iter().copied().chain([&NOT_FOUND]) {
        let t = in_template.iter().find(|t| t.binary == route.binary).unwrap();
        let want: Vec<String> = route.keys.iter().map(|k| format!("{k}*")).collect();
        let policies = doc["Resources"][&t.function]["Properties"]["Policies"].as_sequence().cloned().unwrap_or_default();
        let statements: Vec<serde_yaml_ng::Value> =
            policies.iter().flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default()).collect();
        for statement in &statements {
            let actions = statement["Action"].as_sequence().cloned().unwrap_or_default();
            if !actions.iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:"))) {
                continue;
            }
            // Index queries: Query alone, on an index ARN, without LeadingKeys
            // (its meaning on an index is undocumented: docs/choices.md).
            let text = |v: &serde_yaml_ng::Value| match v {
                serde_yaml_ng::Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
                other => other.as_str().unwrap_or_default().to_owned(),
            };
            let resources: Vec<String> = match &statement["Resource"] {
                serde_yaml_ng::Value::Sequence(list) => list.iter().map(text).collect(),
                one => vec![text(one)],
            };
            if resources.iter().any(|r| r.contains("/index/")) {
                assert_eq!(actions.iter().filter_map(|a| a.as_str()).collect::<Vec<_>>(), ["dynamodb:Query"], "{}: only Query on an index", t.function);
                for r in &resources {
                    assert!(r.ends_with("/index/gsi1") || r.ends_with("/index/gsi2"), "{}: {r}", t.function);
                }
                continue;
            }
            let keys: Vec<String> = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_sequence()
                .map(|l| l.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            assert_eq!(keys, want, "{}", t.function);
        }
        assert_eq!(statements.is_empty(), route.keys.is_empty(), "{}: a policy exactly when it touches the table", t.function);
    }
}

/// The domain events are watched: the publisher falling behind its stream,
/// and anything in its dead-letter queue, each raise an alarm that notifies
/// the stack's topic when one is given.
#[test]
fn the_events_publisher_and_its_dead_letters_have_alarms() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let dimension = |alarm: &str| {
        let d = &doc["Resources"][alarm]["Properties"]["Dimensions"][0]["Value"];
        match d {
            serde_yaml_ng::Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
            other => panic!("{alarm}: {other:?}"),
        }
    };
    let behind = &doc["Resources"]["EventsPublisherBehindAlarm"]["Properties"];
    assert_eq!((behind["Namespace"].as_str(), behind["MetricName"].as_str()), (Some("AWS/Lambda"), Some("IteratorAge")));
    assert_eq!(dimension("EventsPublisherBehindAlarm"), "PublishEventsFunction");
    let letters = &doc["Resources"]["EventsDeadLettersAlarm"]["Properties"];
    assert_eq!(letters["Namespace"].as_str(), Some("AWS/SQS"));
    assert_eq!(dimension("EventsDeadLettersAlarm"), "EventsDeadLetterQueue.QueueName");
    for alarm in ["EventsPublisherBehindAlarm", "EventsDeadLettersAlarm"] {
        assert!(doc["Resources"][alarm]["Properties"].get("AlarmActions").is_some(), "{alarm} notifies no one");
    }
}

/// Operable from day one: every route has a p90 latency alarm on its own
/// function's `Latency` metric (the metric the functions write, with the
/// dimensions they write it under), the error rate has one, every alarm
/// notifies the stack's topic when there is one, and the dashboard watches
/// the metrics the functions write. The block is dev/operations.py's output.
#[test]
fn every_route_has_a_latency_alarm_and_the_dashboard_reads_the_functions_metrics() {
    use allotment::telemetry::{metric, DEFAULT_NAMESPACE};
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let tagged = |v: &serde_yaml_ng::Value| match v {
        serde_yaml_ng::Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
        other => other.as_str().unwrap_or_default().to_owned(),
    };
    for route in ROUTES {
        let alarm = &doc["Resources"][format!("{}LatencyAlarm", route.name).as_str()]["Properties"];
        assert_eq!(alarm["Namespace"].as_str(), Some(DEFAULT_NAMESPACE), "{}", route.name);
        assert_eq!(alarm["MetricName"].as_str(), Some(metric::LATENCY), "{}", route.name);
        assert_eq!(alarm["ExtendedStatistic"].as_str(), Some("p90"), "{}", route.name);
        let dims: Vec<(String, String)> = alarm["Dimensions"].as_sequence().unwrap().iter().map(|d| (tagged(&d["Name"]), tagged(&d["Value"]))).collect();
        assert_eq!(dims, [("Service".into(), "AWS::StackName".into()), ("Function".into(), route.name.to_owned())], "{}", route.name);
    }
    // The functions name their namespace and Service as the alarms expect.
    let env = &doc["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(env["METRICS_NAMESPACE"].as_str(), Some(DEFAULT_NAMESPACE));
    assert_eq!(tagged(&env["METRICS_SERVICE"]), "AWS::StackName");
    let alarms: Vec<&str> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm").filter_map(|(k, _)| k.as_str()).collect();
    assert!(alarms.contains(&"ApiErrorRateAlarm"), "{alarms:?}");
    for alarm in &alarms {
        assert!(doc["Resources"][*alarm]["Properties"].get("AlarmActions").is_some(), "{alarm} notifies no one");
    }
    let dashboard = tagged(&doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let body: Value = serde_json::from_str(&dashboard).expect("the dashboard body is JSON");
    assert!(body["widgets"].as_array().is_some_and(|w| w.len() > 10));
    for name in [metric::PACKS_PROVISIONED, metric::PAYMENTS_CREATED, metric::GIFT_CLAIMS, metric::DEPOSITS, metric::SUBSCRIPTIONS_MIGRATED, metric::EVENTS_PUBLISHED, metric::IDEMPOTENCY_KEYS, metric::LATENCY, metric::SERVER_ERRORS, metric::DYNAMODB_THROTTLES, metric::WRITE_CAPACITY, metric::READ_CAPACITY] {
        // A metric of its own (`"Deposits"`) or in a SEARCH (`MetricName=\"GiftClaims\"`).
        assert!(dashboard.contains(&format!("\"{name}\"")) || dashboard.contains(&format!("=\\\"{name}\\\"")), "the dashboard does not show {name}");
    }
    let check = std::process::Command::new("python3")
        .args(["dev/operations.py", "--check"])
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
        .output()
        .expect("python3");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

/// Issue 30: the default stack has end users. Its pool verifies email at
/// sign-up and holds the organisation as custom:org; the end-user client is
/// public (no secret), authorization code only, with openid and email, and
/// may read custom:org but no client may write it; the authorizer accepts
/// both clients' tokens; the functions are told end users call with ID
/// tokens of that client, the organisation in custom:org.
#[test]
fn the_default_stack_has_an_end_user_client_whose_tokens_the_api_takes() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(template::TEMPLATE_YAML).unwrap();
    let res = &doc["Resources"];
    let pool = &res["UserPool"]["Properties"];
    assert_eq!(pool["AutoVerifiedAttributes"][0].as_str(), Some("email"));
    let org = pool["Schema"].as_sequence().unwrap().iter().find(|a| a["Name"].as_str() == Some("org")).expect("custom:org");
    assert_eq!(org["AttributeDataType"].as_str(), Some("String"));
    let client = &res["EndUserClient"]["Properties"];
    assert_eq!(client["GenerateSecret"].as_bool(), Some(false), "public client");
    let flows: Vec<&str> = client["AllowedOAuthFlows"].as_sequence().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(flows, ["code"], "authorization code (with PKCE) only");
    let scopes: Vec<&str> = client["AllowedOAuthScopes"].as_sequence().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(scopes.contains(&"openid") && scopes.contains(&"email"), "{scopes:?}");
    let reads: Vec<&str> = client["ReadAttributes"].as_sequence().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(reads.contains(&"custom:org") && reads.contains(&"email_verified"), "its ID tokens carry them: {reads:?}");
    for (name, r) in res.as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Cognito::UserPoolClient") {
            let writes = r["Properties"]["WriteAttributes"].as_sequence().unwrap_or_else(|| panic!("{name:?} sets no WriteAttributes: Cognito's default lets it write attributes"));
            assert!(writes.iter().all(|w| w.as_str() != Some("custom:org")), "{name:?} may write custom:org");
        }
    }
    let audience = format!("{:?}", res["Api"]["Properties"]["Auth"]["Authorizers"]["Jwt"]["JwtConfiguration"]["audience"]);
    assert!(audience.contains("ProvisionerClient") && audience.contains("EndUserClient"), "{audience}");
    let env = format!("{:?}", doc["Globals"]["Function"]["Environment"]["Variables"]);
    for (var, own_pool) in [("END_USER_TOKEN_USE", "id"), ("END_USER_CLIENT_ID", "EndUserClient"), ("ORG_CLAIM", "custom:org")] {
        assert!(env.contains(var) && env.contains(own_pool), "{var} ({own_pool} in the stack's own pool): {env}");
    }
}
