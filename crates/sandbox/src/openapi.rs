//! OpenAPI schemas of the served kinds, for `kubectl explain` and for kubectl's check
//! that the server validates fields itself: `/openapi/v3/<group-version>` documents
//! (paths and `components.schemas`) and the `/openapi/v2` document (`definitions`),
//! both built from k8s-openapi's schemas (with their descriptions) for exactly the
//! kinds in the resource table, each marked with `x-kubernetes-group-version-kind` as
//! kube-apiserver marks them. Built on first request, then kept: start-up does not
//! pay for them.
//!
//! It must not describe a kind the sandbox does not serve.

use std::sync::OnceLock;

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
        "apps" | "policy" => def.group,
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
    generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
    let mut definitions = generator.take_definitions(true);
    for (name, def) in served() {
        if let Some(schema) = definitions.get_mut(&name) {
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": def.group, "kind": def.kind, "version": def.version}]);
        }
    }
    definitions
}

/// The schemas with `$ref`s pointing under `prefix` instead (`#/definitions/` for v2).
fn with_ref_prefix(value: &Value, prefix: &str) -> Value {
    match value {
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
