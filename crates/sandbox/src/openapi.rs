//! OpenAPI schemas of the served kinds, for `kubectl explain` and for kubectl's check
//! that the server validates fields itself: `/openapi/v3/<group-version>` documents
//! (paths and `components.schemas`) and the `/openapi/v2` document (`definitions`,
//! in JSON or in gnostic's `openapi.v2.Document` protobuf, which client-go asks for),
//! both built from k8s-openapi's schemas (with their descriptions) for exactly the
//! kinds in the resource table, each marked with `x-kubernetes-group-version-kind` as
//! kube-apiserver marks them. Built on first request, then kept: start-up does not
//! pay for them.
//!
//! It must not describe a kind the sandbox does not serve.

use std::sync::OnceLock;

use bytes::Bytes;

use k8s_openapi::api::{
    apps, authentication, authorization, coordination, core, discovery, events, policy,
};
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::resources::{self, ResourceDef};

/// Every schema the served kinds reach, by its Kubernetes name
/// (`io.k8s.api.core.v1.Pod`), with `$ref`s into `#/components/schemas/`.
fn definitions() -> &'static Map<String, Value> {
    static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(build_definitions)
}

/// The schema name and group/version/kind of each served kind.
fn served() -> Vec<(String, &'static ResourceDef)> {
    resources::RESOURCES
        .iter()
        .filter_map(|def| schema_name(def).map(|name| (name, def)))
        .collect()
}

/// k8s-openapi's name for a served kind's schema: `io.k8s.api.<group>.<version>.<Kind>`.
fn schema_name(def: &ResourceDef) -> Option<String> {
    let package = match def.group {
        "" => "core",
        "events.k8s.io" => "events",
        "discovery.k8s.io" => "discovery",
        "coordination.k8s.io" => "coordination",
        "authorization.k8s.io" => "authorization",
        "authentication.k8s.io" => "authentication",
        "rbac.authorization.k8s.io" => "rbac",
        "apps" | "policy" | "batch" => def.group,
        _ => return None,
    };
    Some(format!("io.k8s.api.{package}.{}.{}", def.version, def.kind))
}

fn build_definitions() -> Map<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    // One line per served kind: the resource table's kinds, nothing else.
    generator.subschema_for::<core::v1::Namespace>();
    generator.subschema_for::<core::v1::Node>();
    generator.subschema_for::<core::v1::Pod>();
    generator.subschema_for::<core::v1::Service>();
    generator.subschema_for::<core::v1::ConfigMap>();
    generator.subschema_for::<core::v1::Event>();
    generator.subschema_for::<core::v1::Endpoints>();
    generator.subschema_for::<apps::v1::Deployment>();
    generator.subschema_for::<apps::v1::ReplicaSet>();
    generator.subschema_for::<apps::v1::DaemonSet>();
    generator.subschema_for::<apps::v1::StatefulSet>();
    generator.subschema_for::<policy::v1::PodDisruptionBudget>();
    generator.subschema_for::<policy::v1::Eviction>();
    generator.subschema_for::<events::v1::Event>();
    generator.subschema_for::<authorization::v1::SelfSubjectAccessReview>();
    generator.subschema_for::<authorization::v1::SelfSubjectRulesReview>();
    generator.subschema_for::<authentication::v1::SelfSubjectReview>();
    generator.subschema_for::<discovery::v1::EndpointSlice>();
    generator.subschema_for::<coordination::v1::Lease>();
    generator.subschema_for::<core::v1::ServiceAccount>();
    generator.subschema_for::<authentication::v1::TokenRequest>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::Role>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::RoleBinding>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::ClusterRole>();
    generator.subschema_for::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>();
    generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
    generator.subschema_for::<k8s_openapi::api::batch::v1::Job>();
    generator.subschema_for::<k8s_openapi::api::batch::v1::CronJob>();
    generator.subschema_for::<core::v1::PersistentVolumeClaim>();
    let mut definitions = generator.take_definitions(true);
    for (name, def) in served() {
        if let Some(schema) = definitions.get_mut(&name) {
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": def.group, "kind": def.kind, "version": def.version}]);
        }
    }
    definitions
}

/// The media types client-go asks `/openapi/v2` for: the `@` form is not a valid
/// media type, so a server answers with the dotted one.
pub const V2_PROTOBUF_ACCEPTED: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The schemas with `$ref`s pointing under `prefix` instead (`#/definitions/` for v2),
/// and v3's `allOf: [{$ref}]` beside a description back in v2's `$ref` form.
fn with_ref_prefix(value: &Value, prefix: &str) -> Value {
    match value {
        Value::Object(map)
            if map
                .get("allOf")
                .and_then(Value::as_array)
                .is_some_and(|a| a.len() == 1 && a[0].get("$ref").is_some()) =>
        {
            let mut flat = map.clone();
            if let Some(Value::Array(all)) = flat.remove("allOf")
                && let Some(Value::Object(target)) = all.into_iter().next()
            {
                flat.extend(target);
            }
            with_ref_prefix(&Value::Object(flat), prefix)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => json!(r.replace("#/components/schemas/", prefix)),
                        _ => with_ref_prefix(v, prefix),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| with_ref_prefix(v, prefix)).collect())
        }
        other => other.clone(),
    }
}

/// The query parameters every write operation documents: kubectl looks for
/// `fieldValidation` to leave field validation to the server.
fn write_parameters(v2: bool) -> Value {
    let parameter = |name: &str| {
        if v2 {
            json!({"name": name, "in": "query", "type": "string", "uniqueItems": true})
        } else {
            json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
        }
    };
    json!([
        parameter("dryRun"),
        parameter("fieldManager"),
        parameter("fieldValidation")
    ])
}

/// The paths of the kinds in `defs`: create, and update and patch by name.
fn paths<'a>(defs: impl Iterator<Item = &'a ResourceDef>, v2: bool) -> Map<String, Value> {
    let mut paths = Map::new();
    for def in defs {
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        let operation = |action: &str| {
            json!({
                "operationId": format!("{action}{}", def.kind),
                "parameters": write_parameters(v2),
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": action,
            })
        };
        let gv_path = if def.group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{}/{}", def.group, def.version)
        };
        let prefix = if def.namespaced {
            format!("{gv_path}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{gv_path}/{}", def.plural)
        };
        paths.insert(prefix.clone(), json!({"post": operation("post")}));
        paths.insert(
            format!("{prefix}/{{name}}"),
            json!({"patch": operation("patch"), "put": operation("put")}),
        );
    }
    paths
}

/// `/openapi/v3/{gv}`: the group/version's paths and every served schema.
pub fn group_version(group: &str, version: &str) -> Value {
    let defs = resources::RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths(defs, false),
        "components": {"schemas": definitions()},
    })
}

/// `/openapi/v2`: the whole API in one Swagger 2.0 document.
pub fn v2() -> &'static Value {
    static V2: OnceLock<Value> = OnceLock::new();
    V2.get_or_init(|| {
        let definitions: Map<String, Value> = definitions()
            .iter()
            .map(|(k, v)| (k.clone(), with_ref_prefix(v, "#/definitions/")))
            .collect();
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": paths(resources::RESOURCES.iter(), true),
            "definitions": definitions,
        })
    })
}

/// `/openapi/v2` as an `openapi.v2.Document` protobuf (gnostic's `OpenAPIv2.proto`).
pub fn v2_protobuf() -> &'static Bytes {
    static V2: OnceLock<Bytes> = OnceLock::new();
    V2.get_or_init(|| Bytes::from(v2_document(v2())))
}

/// A protobuf message under construction: fields appended in order.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, number: u64, bytes: &[u8]) {
        self.varint(number << 3 | 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, number: u64, value: &Value) {
        if let Some(text) = value.as_str().filter(|t| !t.is_empty()) {
            self.bytes(number, text.as_bytes());
        }
    }

    fn message(&mut self, number: u64, message: Message) {
        self.bytes(number, &message.0);
    }

    fn boolean(&mut self, number: u64, value: bool) {
        if value {
            self.varint(number << 3);
            self.varint(1);
        }
    }

    fn int(&mut self, number: u64, value: &Value) {
        if let Some(n) = value.as_i64() {
            self.varint(number << 3);
            self.varint(n as u64);
        }
    }

    /// `NamedAny`s of every `x-` key: the value as YAML (JSON is YAML).
    fn vendor_extensions(&mut self, number: u64, object: &Map<String, Value>) {
        for (key, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut any = Message::default();
            any.bytes(2, value.to_string().as_bytes());
            let mut named = Message::default();
            named.bytes(1, key.as_bytes());
            named.message(2, any);
            self.message(number, named);
        }
    }
}

fn v2_document(doc: &Value) -> Vec<u8> {
    let mut out = Message::default();
    out.string(1, &doc["swagger"]);
    let mut info = Message::default();
    info.string(1, &doc["info"]["title"]);
    info.string(2, &doc["info"]["version"]);
    out.message(2, info);
    let mut paths = Message::default();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let mut encoded = Message::default();
        for (verb, number) in [
            ("get", 2),
            ("put", 3),
            ("post", 4),
            ("delete", 5),
            ("patch", 8),
        ] {
            if let Some(operation) = item[verb].as_object() {
                encoded.message(number, v2_operation(operation));
            }
        }
        let mut named = Message::default();
        named.bytes(1, path.as_bytes());
        named.message(2, encoded);
        paths.message(2, named);
    }
    out.message(8, paths);
    let mut definitions = Message::default();
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        let mut named = Message::default();
        named.bytes(1, name.as_bytes());
        named.message(2, v2_schema(schema));
        definitions.message(1, named);
    }
    out.message(9, definitions);
    out.0
}

fn v2_operation(operation: &Map<String, Value>) -> Message {
    let mut out = Message::default();
    out.string(5, &operation["operationId"]);
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let mut query = Message::default();
        query.string(2, &parameter["in"]);
        query.string(4, &parameter["name"]);
        query.string(6, &parameter["type"]);
        query.boolean(20, parameter["uniqueItems"] == true);
        let mut non_body = Message::default();
        non_body.message(3, query);
        let mut parameter = Message::default();
        parameter.message(2, non_body);
        let mut item = Message::default();
        item.message(1, parameter);
        out.message(8, item);
    }
    let mut responses = Message::default();
    for (code, response) in operation["responses"].as_object().into_iter().flatten() {
        let mut encoded = Message::default();
        encoded.string(1, &response["description"]);
        let mut value = Message::default();
        value.message(1, encoded);
        let mut named = Message::default();
        named.bytes(1, code.as_bytes());
        named.message(2, value);
        responses.message(1, named);
    }
    out.message(9, responses);
    out.vendor_extensions(13, operation);
    out
}

fn v2_schema(schema: &Value) -> Message {
    let mut out = Message::default();
    let Some(object) = schema.as_object() else {
        return out;
    };
    out.string(1, &schema["$ref"]);
    out.string(2, &schema["format"]);
    out.string(3, &schema["title"]);
    out.string(4, &schema["description"]);
    for required in schema["required"].as_array().into_iter().flatten() {
        out.string(19, required);
    }
    for value in schema["enum"].as_array().into_iter().flatten() {
        let mut any = Message::default();
        any.bytes(2, value.to_string().as_bytes());
        out.message(20, any);
    }
    match &schema["additionalProperties"] {
        Value::Bool(allowed) => {
            let mut item = Message::default();
            item.boolean(2, *allowed);
            out.message(21, item);
        }
        Value::Object(_) => {
            let mut item = Message::default();
            item.message(1, v2_schema(&schema["additionalProperties"]));
            out.message(21, item);
        }
        _ => {}
    }
    if let Some(kind) = schema["type"].as_str() {
        let mut item = Message::default();
        item.bytes(1, kind.as_bytes());
        out.message(22, item);
    }
    if schema["items"].is_object() {
        let mut item = Message::default();
        item.message(1, v2_schema(&schema["items"]));
        out.message(23, item);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.message(24, v2_schema(part));
    }
    if let Some(properties) = schema["properties"].as_object() {
        let mut encoded = Message::default();
        for (name, property) in properties {
            let mut named = Message::default();
            named.bytes(1, name.as_bytes());
            named.message(2, v2_schema(property));
            encoded.message(1, named);
        }
        out.message(25, encoded);
    }
    out.int(17, &schema["maxProperties"]);
    out.vendor_extensions(31, object);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_schema_marked_with_its_group_version_kind() {
        let definitions = definitions();
        for def in resources::RESOURCES {
            let name = schema_name(def).expect("a schema name");
            let schema = definitions
                .get(&name)
                .unwrap_or_else(|| panic!("no schema for {name}"));
            assert_eq!(
                schema["x-kubernetes-group-version-kind"][0]["kind"], def.kind,
                "{name}"
            );
        }
        let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
    }

    #[test]
    fn the_v2_document_refers_into_its_own_definitions() {
        let text = v2().to_string();
        assert!(!text.contains("#/components/schemas/"));
        assert!(text.contains("#/definitions/io.k8s.api.core.v1.Container"));
    }
}
