//! The OpenAPI 3 document of the REST API, generated from the route registry.
//!
//! Paths, methods, path parameters and who may call each operation come from the same
//! registry that builds the router ([`crate::api`]), so the document cannot list a route the
//! server lacks or miss one it has. Bodies are described by the schemas below: the resources
//! clients page through are spelled out field by field; the rest are objects whose fields the
//! operation's summary and the README describe. The committed copy, `docs/openapi.json`, is
//! checked against this generator by a test.

use serde_json::{json, Map, Value};

use crate::api::RouteRule;
use crate::auth::Access;

/// The document for the given routes.
pub fn document(rules: &[RouteRule]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for rule in rules
        .iter()
        .filter(|r| r.path.starts_with("/api/") || r.path == "/healthz" || r.path == "/metrics")
    {
        let entry = paths
            .entry(rule.path.to_string())
            .or_insert_with(|| json!({}));
        entry[rule.method.to_ascii_lowercase()] = operation(rule);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "karya",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST API of karya, the operating system of a knowledge and business process outsourcing firm. \
                Every error is {\"error\": {\"code\", \"message\"}}. Lists are paginated by cursor: pass next_after as ?after=."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (karya token create, or POST /api/v1/auth/tokens)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "karya_session"}
            },
            "schemas": schemas(),
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        }
    })
}

fn operation(rule: &RouteRule) -> Value {
    let mut op = json!({
        "operationId": operation_id(rule),
        "summary": summary(rule),
        "responses": responses(rule),
    });
    let params: Vec<Value> = rule
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "period" => json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}),
                "skill" | "calendar_id" | "step" => {
                    json!({"type": "string", "minLength": 1, "maxLength": 100})
                }
                _ => json!({"type": "string", "format": "uuid"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .chain(query_parameters(rule))
        .collect();
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if matches!(rule.method, "POST" | "PUT") {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": request_schema(rule)}}
        });
    }
    match rule.access {
        Access::Public => op["security"] = json!([]),
        _ => op["security"] = json!([{"bearer": []}, {"session": []}]),
    }
    op["x-access"] = json!(access_text(rule.access));
    op
}

fn operation_id(rule: &RouteRule) -> String {
    let mut id = rule.method.to_ascii_lowercase();
    for segment in rule
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
    {
        id.push('_');
        id.push_str(
            &segment
                .trim_matches(|c| c == '{' || c == '}')
                .replace('-', "_"),
        );
    }
    id
}

fn summary(rule: &RouteRule) -> String {
    let last = rule
        .path
        .rsplit('/')
        .find(|s| !s.starts_with('{'))
        .unwrap_or("root");
    let verb = match rule.method {
        "GET" if rule.path.ends_with('}') => "read one",
        "GET" => "read",
        "POST" => "create or act",
        "PUT" => "set",
        "DELETE" => "delete",
        _ => "call",
    };
    format!("{verb}: {}", last.replace('-', " "))
}

fn access_text(access: Access) -> String {
    let roles = |roles: &[karya_core::model::Role]| {
        roles
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match access {
        Access::Public => "anyone".into(),
        Access::SignedIn => "any signed-in user".into(),
        Access::Firm(firm) => format!("firm roles: {}", roles(firm)),
        Access::Tenant {
            firm,
            client,
            holder,
        } => format!(
            "firm roles: {}; the client's own: {}{}",
            roles(firm),
            if client.is_empty() {
                "none".into()
            } else {
                roles(client)
            },
            if holder {
                "; a worker holding the task or item"
            } else {
                ""
            }
        ),
        Access::OwnWorker { firm } => format!("the worker themself; firm roles: {}", roles(firm)),
    }
}

fn query_parameters(rule: &RouteRule) -> Vec<Value> {
    if rule.method != "GET" || rule.path.ends_with('}') && !rule.path.ends_with("{period}") {
        return Vec::new();
    }
    let mut params = Vec::new();
    let listing = [
        "/work-items",
        "/engagements",
        "/events",
        "/decisions",
        "/users",
        "/clients",
    ];
    if listing.iter().any(|suffix| rule.path.ends_with(suffix)) {
        params.push(json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 500}}));
        params.push(json!({"name": "after", "in": "query", "required": false, "schema": {"type": "string", "maxLength": 64}}));
    }
    params
}

/// The success response of each operation, and the error responses every operation may give.
fn responses(rule: &RouteRule) -> Value {
    let error = json!({"$ref": "#/components/responses/Error"});
    let mut responses = json!({
        "400": error, "401": error, "403": error, "404": error, "409": error, "413": error, "415": error,
        "422": error, "429": error
    });
    if matches!(rule.access, Access::Public) {
        for code in ["401", "403"] {
            responses.as_object_mut().expect("object").remove(code);
        }
    }
    let (code, schema) = success(rule);
    responses[code] = match schema {
        None => json!({"description": "done, no content"}),
        Some(schema) if rule.path == "/metrics" => {
            let _ = schema;
            json!({"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        Some(schema) if rule.path.ends_with("/invoices/{period}") => json!({
            "description": "the invoice (?format=json|csv|html)",
            "content": {
                "application/json": {"schema": schema},
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}}
            }
        }),
        Some(schema) => {
            json!({"description": "ok", "content": {"application/json": {"schema": schema}}})
        }
    };
    responses
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn page_of(name: &str) -> Value {
    json!({"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": reference(name)},
        "next_after": {"type": "string"}
    }})
}

fn success(rule: &RouteRule) -> (&'static str, Option<Value>) {
    let object = json!({"type": "object"});
    let path = rule.path;
    let created = |schema: Value| ("201", Some(schema));
    match (rule.method, path) {
        ("GET", "/healthz") => (
            "200",
            Some(
                json!({"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string"}, "database": {"type": "string"}}}),
            ),
        ),
        ("GET", "/api/v1/clients") => ("200", Some(page_of("Client"))),
        ("POST", "/api/v1/clients") => created(reference("Client")),
        ("GET", "/api/v1/clients/{client_id}") => ("200", Some(reference("Client"))),
        ("GET", "/api/v1/clients/{client_id}/engagements") => ("200", Some(page_of("Engagement"))),
        ("POST", "/api/v1/clients/{client_id}/engagements") => created(reference("Engagement")),
        ("GET", "/api/v1/clients/{client_id}/engagements/{engagement_id}") => {
            ("200", Some(reference("Engagement")))
        }
        ("GET", "/api/v1/clients/{client_id}/work-items") => ("200", Some(page_of("WorkItem"))),
        ("POST", "/api/v1/clients/{client_id}/work-items") => created(reference("WorkItem")),
        ("GET", "/api/v1/clients/{client_id}/work-items/{work_item_id}") => {
            ("200", Some(reference("WorkItem")))
        }
        ("POST", "/api/v1/clients/{client_id}/work-items/{work_item_id}/transitions") => {
            ("200", Some(reference("WorkItem")))
        }
        ("GET", "/api/v1/clients/{client_id}/work-items/{work_item_id}/tasks") => {
            ("200", Some(page_of("Task")))
        }
        ("GET", p) if p.ends_with("/events") => ("200", Some(page_of("Event"))),
        ("POST", "/api/v1/auth/logout") | ("DELETE", _) => ("204", None),
        ("POST", p) if p.ends_with("/presence") => ("204", None),
        ("PUT", p) if p.ends_with("/profile") || p.contains("/skills/") => ("204", None),
        ("POST", "/api/v1/auth/login") | ("POST", "/api/v1/auth/tokens") => ("200", Some(object)),
        ("POST", p)
            if p.ends_with("/approval")
                || p.ends_with("/undo")
                || p.ends_with("/disable")
                || p.ends_with("/resume")
                || p.ends_with("/lift") =>
        {
            ("200", Some(object))
        }
        ("POST", p) if p.ends_with("/next") => ("200", Some(object)),
        ("POST", _) => created(object),
        _ => ("200", Some(object)),
    }
}

fn request_schema(rule: &RouteRule) -> Value {
    let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
    match (rule.method, rule.path) {
        ("POST", "/api/v1/clients") => {
            json!({"type": "object", "additionalProperties": false, "required": ["name", "currency"],
            "properties": {"name": text(200), "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}})
        }
        ("POST", "/api/v1/clients/{client_id}/engagements") => {
            json!({"type": "object", "additionalProperties": false,
            "required": ["name", "service_line"],
            "properties": {"name": text(200), "service_line": {"type": "string", "enum": karya_core::service_line::ServiceLine::ALL.iter().map(|l| l.code()).collect::<Vec<_>>()}}})
        }
        ("POST", "/api/v1/clients/{client_id}/work-items") => {
            json!({"type": "object", "additionalProperties": false,
            "required": ["engagement_id", "title", "input"],
            "properties": {
                "engagement_id": {"type": "string", "format": "uuid"},
                "title": text(300),
                "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
                "external_ref": text(128),
                "input": {"type": "object"}
            }})
        }
        ("POST", "/api/v1/clients/{client_id}/work-items/{work_item_id}/transitions") => {
            json!({"type": "object",
            "additionalProperties": false, "required": ["to"],
            "properties": {
                "to": {"type": "string", "enum": karya_core::lifecycle::WorkItemState::ALL.iter().map(|s| s.code()).collect::<Vec<_>>()},
                "reason": text(1000),
                "expected_version": {"type": "integer", "minimum": 0}
            }})
        }
        ("POST", "/api/v1/clients/{client_id}/webhooks") => {
            json!({"type": "object", "additionalProperties": false, "required": ["url", "events"],
            "properties": {
                "url": {"type": "string", "format": "uri", "maxLength": 2048},
                "events": {"type": "array", "minItems": 1, "maxItems": karya_core::webhook::FILTERS_MAX,
                    "items": {"type": "string", "pattern": "^([a-z_.]{1,64}|\\*)$"}}
            }})
        }
        ("POST", "/api/v1/sites") => {
            json!({"type": "object", "additionalProperties": false,
            "required": ["name", "time_zone", "country"],
            "properties": {"name": text(200), "time_zone": text(64), "country": text(200)}})
        }
        ("POST", "/api/v1/clients/{client_id}/tasks/{task_id}/reassignment") => {
            json!({"type": "object", "additionalProperties": false, "required": ["reason"],
            "properties": {
                "worker_id": {"type": "string", "format": "uuid"},
                "reason": text(500)
            }})
        }
        ("POST", "/api/v1/workers/{worker_id}/leave") => {
            json!({"type": "object", "additionalProperties": false, "required": ["from", "until"],
            "properties": {
                "from": {"type": "string", "format": "date-time"},
                "until": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "maxLength": 200}
            }})
        }
        ("POST", "/api/v1/auth/login") => {
            json!({"type": "object", "additionalProperties": false, "required": ["email", "password"],
            "properties": {"email": {"type": "string"}, "password": {"type": "string"}}})
        }
        ("POST", "/api/v1/auth/tokens") => {
            json!({"type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {"name": text(100)}})
        }
        _ => json!({"type": "object"}),
    }
}

fn schemas() -> Value {
    let id = json!({"type": "string", "format": "uuid"});
    let time = json!({"type": "string"});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
        }}},
        "Client": {"type": "object", "required": ["id", "name", "currency", "created_at"], "properties": {
            "id": id, "name": {"type": "string"}, "currency": {"type": "string"}, "created_at": time
        }},
        "Engagement": {"type": "object", "required": ["id", "client_id", "name", "service_line", "created_at"], "properties": {
            "id": id, "client_id": id, "name": {"type": "string"}, "service_line": {"type": "string"}, "created_at": time
        }},
        "WorkItem": {"type": "object", "required": ["id", "client_id", "engagement_id", "title", "priority", "state", "input",
                                                     "received_at", "updated_at", "version"], "properties": {
            "id": id, "client_id": id, "engagement_id": id, "external_ref": {"type": "string"}, "title": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
            "state": {"type": "string", "enum": karya_core::lifecycle::WorkItemState::ALL.iter().map(|s| s.code()).collect::<Vec<_>>()},
            "input": {"type": "object"}, "received_at": time, "updated_at": time, "version": {"type": "integer"}
        }},
        "Task": {"type": "object", "required": ["id", "work_item_id", "step", "priority", "state", "created_at", "updated_at"], "properties": {
            "id": id, "work_item_id": id, "step": {"type": "string"}, "priority": {"type": "string"},
            "state": {"type": "string", "enum": karya_core::lifecycle::TaskState::ALL.iter().map(|s| s.code()).collect::<Vec<_>>()},
            "created_at": time, "updated_at": time
        }},
        "Event": {"type": "object", "required": ["seq", "at", "kind", "entity_type", "entity_id", "payload", "hash"], "properties": {
            "seq": {"type": "integer"}, "at": time, "kind": {"type": "string"}, "entity_type": {"type": "string"},
            "entity_id": {"type": "string"}, "payload": {}, "hash": {"type": "string"}
        }}
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_api_route_is_documented_once() {
        let rules = crate::route_rules();
        let document = super::document(&rules);
        for rule in rules.iter().filter(|r| r.path.starts_with("/api/")) {
            let operation = &document["paths"][rule.path][rule.method.to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{} {} is not documented",
                rule.method,
                rule.path
            );
        }
        let ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "operation ids are unique");
    }
}
