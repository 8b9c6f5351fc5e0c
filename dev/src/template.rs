//! Reads `template.yaml` — the one definition of the table and the routes — so
//! the local table and the local front are made from the deployed template,
//! with no second copy to drift.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use serde_yaml_ng::Value;

/// The template, compiled in: the binary never looks for it at run time.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

/// The logical id of the table resource.
pub const TABLE_RESOURCE: &str = "Table";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableProperties {
    pub attribute_definitions: Vec<AttrDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<GsiDef>,
    pub time_to_live_specification: Option<TtlDef>,
    #[serde(default)]
    pub stream_specification: Option<StreamDef>,
}

/// `StreamSpecification`: the table's stream, the events' outbox.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDef {
    pub stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttrDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

/// An HTTP API route declared by a function's event, with its binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub function: String,
    pub binary: String,
    pub method: String,
    pub path: String,
    /// `Auth.AuthorizationScopes`: each entry as written, a `!Sub` as
    /// `!Sub <its string>` (`!Sub ${ScopePrefix}admin`).
    pub scopes: Vec<String>,
}

fn parse() -> Result<Value, String> {
    serde_yaml_ng::from_str(TEMPLATE_YAML).map_err(|e| format!("template.yaml: {e}"))
}

pub fn table_properties() -> Result<TableProperties, String> {
    let doc = parse()?;
    let props = doc
        .get("Resources")
        .and_then(|r| r.get(TABLE_RESOURCE))
        .and_then(|t| t.get("Properties"))
        .ok_or("template.yaml: no Resources.Table.Properties")?;
    serde_yaml_ng::from_value(props.clone()).map_err(|e| format!("template.yaml table: {e}"))
}

/// Every function of the template: its logical id and its binary.
pub fn functions() -> Result<Vec<(String, String)>, String> {
    let doc = parse()?;
    let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or("template.yaml: no Resources")?;
    let mut out: Vec<(String, String)> = resources
        .iter()
        .filter(|(_, res)| res.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(name, res)| {
            let binary = res.get("Metadata").and_then(|m| m.get("BuildProperties")).and_then(|b| b.get("Binary")).and_then(Value::as_str);
            (name.as_str().unwrap_or_default().to_owned(), binary.unwrap_or_default().to_owned())
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Every `Type: HttpApi` event of every function (the `$default` route included).
pub fn routes() -> Result<Vec<TemplateRoute>, String> {
    let doc = parse()?;
    let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or("template.yaml: no Resources")?;
    let mut out = Vec::new();
    for (name, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = name.as_str().unwrap_or_default().to_owned();
        let binary = res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let events = res.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
        for (_, event) in events.into_iter().flatten() {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let method = props.and_then(|p| p.get("Method")).and_then(Value::as_str).unwrap_or("ANY").to_uppercase();
            let path = props.and_then(|p| p.get("Path")).and_then(Value::as_str).unwrap_or("$default").to_owned();
            let scopes = props
                .and_then(|p| p.get("Auth"))
                .and_then(|a| a.get("AuthorizationScopes"))
                .and_then(Value::as_sequence)
                .map(|list| {
                    list.iter()
                        .map(|v| match v {
                            Value::Tagged(t) => format!("{} {}", t.tag, t.value.as_str().unwrap_or_default()),
                            other => other.as_str().unwrap_or_default().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(TemplateRoute { function: function.clone(), binary: binary.clone(), method, path, scopes });
        }
    }
    out.sort();
    Ok(out)
}

/// Creates table `name` as template.yaml defines it, unless it exists;
/// its stream only if `stream` (DynamoDB Local writes stream records in the
/// write's own path, which AWS does not: a table nobody follows is made
/// without, so tests and the bench measure the writes alone).
pub async fn ensure_table(client: &Client, name: &str, stream: bool) -> Result<(), String> {
    let exists = client.describe_table().table_name(name).send().await.is_ok();
    if exists {
        return Ok(());
    }
    let props = table_properties()?;
    let key = |k: &KeyDef| -> Result<KeySchemaElement, String> {
        KeySchemaElement::builder()
            .attribute_name(&k.attribute_name)
            .key_type(KeyType::from(k.key_type.as_str()))
            .build()
            .map_err(|e| e.to_string())
    };
    let mut create = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for a in &props.attribute_definitions {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for k in &props.key_schema {
        create = create.key_schema(key(k)?);
    }
    for g in &props.global_secondary_indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&g.index_name)
            .projection(Projection::builder().projection_type(ProjectionType::from(g.projection.projection_type.as_str())).build());
        for k in &g.key_schema {
            gsi = gsi.key_schema(key(k)?);
        }
        create = create.global_secondary_indexes(gsi.build().map_err(|e| e.to_string())?);
    }
    if let Some(stream) = props.stream_specification.as_ref().filter(|_| stream) {
        create = create.stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(stream.stream_view_type.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    match create.send().await {
        Ok(_) => {}
        // Another process created it between our check and our create.
        Err(e) if format!("{e:?}").contains("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(format!("create table {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e))),
    }
    if let Some(ttl) = props.time_to_live_specification.filter(|t| t.enabled) {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl.attribute_name)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| format!("enable TTL on {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}
