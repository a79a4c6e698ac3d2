//! Malformed input answers 4xx with a JSON error body, never 500, and writes nothing.

use poem::http::Method;
use serde_json::json;

use crate::common::App;

#[tokio::test]
async fn bad_input_is_4xx_and_writes_nothing() {
    let app = App::new().await;
    let admin = app.admin().await;
    let count = || async {
        app.get("/api/v1/systems?limit=1000", &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed JSON", b"{\"name\": ".to_vec(), 400),
        ("wrong type", br#"{"name": ["a"], "type": "local"}"#.to_vec(), 400),
        ("wrong type in array", br#"{"name": "x0", "type": "local", "tags": "web"}"#.to_vec(), 400),
        ("unknown field", br#"{"name": "x1", "type": "local", "bogus": true}"#.to_vec(), 400),
        ("bad enum", br#"{"name": "x2", "type": "mainframe"}"#.to_vec(), 400),
        ("invalid name", br#"{"name": "has space", "type": "local"}"#.to_vec(), 400),
        ("both credentials", br#"{"name": "x3", "type": "linux", "username": "u", "credential": {"password": "p", "private_key": "k"}}"#.to_vec(), 400),
        ("huge body", [b"{\"name\": \"".to_vec(), vec![b'a'; 2 * 1024 * 1024], b"\"}".to_vec()].concat(), 413),
    ];
    for (what, body, status) in cases {
        let a = app
            .raw(
                Method::POST,
                "/api/v1/systems",
                Some(&admin),
                "application/json",
                body,
            )
            .await;
        assert_eq!(a.status, status, "{what}: {:?}", a.body);
        assert!(!a.code().is_empty(), "{what}: JSON error body");
        assert_eq!(
            a.body["request_id"].as_str().unwrap(),
            a.request_id(),
            "{what}"
        );
    }
    let wrong_ct = app
        .raw(
            Method::POST,
            "/api/v1/systems",
            Some(&admin),
            "text/plain",
            b"name=x".to_vec(),
        )
        .await;
    assert!(
        wrong_ct.status == 400 || wrong_ct.status == 415,
        "{:?}",
        wrong_ct.status
    );

    for (path, status) in [
        ("/api/v1/jobs/not-a-uuid", 400),
        ("/api/v1/executions/123", 400),
        ("/api/v1/systems?limit=0", 400),
        ("/api/v1/systems?limit=1001", 400),
        ("/api/v1/systems?offset=-1", 400),
        ("/api/v1/systems?limit=abc", 400),
        ("/api/v1/systems?type=mainframe", 400),
        ("/api/v1/audit?since=yesterday", 400),
        ("/api/v1/jobs/00000000-0000-0000-0000-000000000000", 404),
        ("/api/v1/nothing-here", 404),
    ] {
        let a = app.get(path, &admin).await;
        assert_eq!(a.status, status, "{path}: {:?}", a.body);
        assert!(!a.code().is_empty(), "{path}");
    }
    let bad_job = app
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"command": "", "targets": {"systems": ["local"]}}),
        )
        .await;
    assert_eq!(bad_job.status, 400);
    let no_target = app
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"command": "true", "targets": {}}),
        )
        .await;
    assert_eq!(no_target.status, 400, "{:?}", no_target.body);
    assert_eq!(count().await, before, "nothing was written");
}
