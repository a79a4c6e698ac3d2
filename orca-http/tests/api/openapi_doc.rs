//! The served OpenAPI document is one that mainstream client generators take whole: no
//! `allOf` wrapped around a reference (generators that "cannot take allOf a non-object" drop the
//! schema and every operation using it), every reference resolves, and no `$ref` has a
//! `nullable` beside it. CI also generates a Python client from it and uses it
//! (`orca-http/clients/python_smoke.py`).

use serde_json::Value;

use crate::common::App;

fn walk<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(o) => {
            out.push((path.clone(), v));
            for (k, x) in o {
                walk(x, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_has_no_wrapped_references() {
    let app = App::new().await;
    let spec: Value = serde_json::from_str(&orca_http::openapi_json(&app.state)).unwrap();
    let mut objects = Vec::new();
    walk(&spec, String::new(), &mut objects);
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let mut wrong = Vec::new();
    let mut refs = 0;
    for (path, o) in &objects {
        if let Some(all) = o.get("allOf").and_then(Value::as_array)
            && all.iter().any(|x| x.get("$ref").is_some())
        {
            wrong.push(format!("{path}: allOf around a $ref"));
        }
        if let Some(r) = o.get("$ref").and_then(Value::as_str) {
            refs += 1;
            let name = r.trim_start_matches("#/components/schemas/");
            if !schemas.contains_key(name) {
                wrong.push(format!("{path}: {r} does not resolve"));
            }
            if o.get("nullable").is_some() {
                wrong.push(format!("{path}: nullable beside $ref"));
            }
        }
    }
    assert!(refs > 50, "only {refs} references");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Enum properties keep their description beside the reference.
    let outcome = &schemas["AuditRecord"]["properties"]["outcome"];
    assert_eq!(outcome["$ref"], "#/components/schemas/AuditOutcome");
    assert!(outcome["description"].is_string(), "{outcome}");
}
