//! One way in (issue 20): a password change made over HTTP and one made by the CLI's admin verb
//! go through the same facade operation, so both end every token of the user at once and each
//! is audited once, in records of the same shape (actor, action, resource, outcome, request id,
//! client, user agent).

mod support;

use serde_json::{Value, json};
use support::{Api, Orca, Server};

/// The `update` records of user `id` that changed its password, oldest first.
fn password_records(admin: &Api, id: &str) -> Vec<Value> {
    let (status, body) = admin.call(
        "GET",
        &format!("/api/v1/audit?resource_type=user&resource_id={id}&action=update&limit=100"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut v: Vec<Value> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["details"]["changed"]["password"] == "changed")
        .cloned()
        .collect();
    v.reverse();
    v
}

fn text<'a>(r: &'a Value, path: &[&str]) -> &'a str {
    let mut v = r;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("{} is not a string in {r}", path.join(".")))
}

#[test]
fn a_password_change_over_http_and_by_the_cli_ends_tokens_and_is_audited_once_alike() {
    let orca = Orca::new();
    // No credential cache: the CLI runs in another process on SQLite (no bus between them), so
    // with the default cache a revoked token could be reused for up to a second.
    let server = Server::start(&orca, &[], &[("ORCA_HTTP_AUTH_CACHE_TTL_MS", "0")]);
    let admin_password = server.password.clone().expect("a generated admin password");
    let mut admin = Api::new(&server);
    admin.login("admin", &admin_password);

    let (status, user) = admin.call(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "hana", "role": "operator", "password": "first-Passw0rd-1"})),
    );
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_str().expect("an id").to_string();

    // Over HTTP.
    let mut hana = Api::new(&server);
    hana.login("hana", "first-Passw0rd-1");
    assert_eq!(hana.call("GET", "/api/v1/auth/me", None).0, 200);
    let (status, body) = admin.call(
        "POST",
        &format!("/api/v1/users/{id}/password"),
        Some(json!({"password": "second-Passw0rd-2"})),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        hana.call("GET", "/api/v1/auth/me", None).0,
        401,
        "a password reset over HTTP ends the user's sessions"
    );
    assert_eq!(password_records(&admin, &id).len(), 1, "audited once");

    // By the CLI's admin verb, beside the running server.
    hana.login("hana", "second-Passw0rd-2");
    assert_eq!(hana.call("GET", "/api/v1/auth/me", None).0, 200);
    let out = orca.run(
        &["user", "passwd", "hana", "--password-stdin"],
        "third-Passw0rd-3\n",
        &[],
    );
    assert!(out.ok(), "{out}");
    assert_eq!(
        hana.call("GET", "/api/v1/auth/me", None).0,
        401,
        "a password change by `orca user passwd` ends the user's sessions"
    );
    hana.login("hana", "third-Passw0rd-3");

    let recs = password_records(&admin, &id);
    assert_eq!(recs.len(), 2, "each change audited once: {recs:#?}");
    let (http, cli) = (&recs[0], &recs[1]);
    assert_eq!(text(http, &["actor"]), "admin");
    assert!(
        text(cli, &["actor"]).starts_with("orca-cli:"),
        "{}",
        cli["actor"]
    );
    for r in [http, cli] {
        assert_eq!(text(r, &["action"]), "update");
        assert_eq!(text(r, &["resource_type"]), "user");
        assert_eq!(text(r, &["resource_id"]), id);
        assert_eq!(text(r, &["outcome"]), "success");
        assert_eq!(r["details"]["tokens_ended"], true, "{r}");
        assert_eq!(text(r, &["details", "username"]), "hana");
        assert!(!text(r, &["details", "request_id"]).is_empty(), "{r}");
        assert!(!text(r, &["details", "client_address"]).is_empty(), "{r}");
    }
    assert_eq!(text(cli, &["details", "client_address"]), "local");
    assert!(text(cli, &["details", "user_agent"]).starts_with("orca-cli/"));
    assert_ne!(
        text(http, &["details", "request_id"]),
        text(cli, &["details", "request_id"])
    );
    // The same shape: every field of the record (the CLI acts as a system actor, so it has no
    // `actor_id`) and of its details (the test's HTTP client sends no user agent).
    let keys = |v: &Value, skip: &str| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != skip)
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(http, "actor_id"),
        keys(cli, "actor_id"),
        "{http}\n{cli}"
    );
    assert_eq!(
        keys(&http["details"], "user_agent"),
        keys(&cli["details"], "user_agent"),
        "{http}\n{cli}"
    );
    let serialized = serde_json::to_string(&recs).unwrap();
    for secret in ["second-Passw0rd-2", "third-Passw0rd-3", "argon2"] {
        assert!(
            !serialized.contains(secret),
            "{secret} leaked into the audit log"
        );
    }
}
