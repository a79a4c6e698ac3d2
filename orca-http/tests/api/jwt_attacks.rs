//! Forged and misused access tokens are refused; a correctly forged control token is accepted
//! (so the refusals are about the attack, not the harness).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orca_core::model::Role;
use serde_json::{Value, json};

use crate::common::{App, JWT_SECRET};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn payload(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn sign(alg: Algorithm, key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

#[tokio::test]
async fn attacks_are_refused() {
    let app = App::new().await;
    app.user("eve", Role::Viewer, vec![]).await;
    let victim = app.user("victim", Role::Admin, vec![]).await;
    let (real, refresh) = app.login("eve").await;
    let base = payload(&real);
    assert_eq!(base["typ"], "access");
    assert_eq!(base["iss"], "orca");
    assert_eq!(base["aud"], "orca-api");
    assert!(base["exp"].as_u64().unwrap() - base["iat"].as_u64().unwrap() <= 900);

    let claims = |f: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        let t = now();
        c["iat"] = json!(t);
        c["nbf"] = json!(t);
        c["exp"] = json!(t + 300);
        f(&mut c);
        c
    };
    let key = JWT_SECRET.as_bytes();
    let app = &app;
    let me = |t: String| async move { app.get("/api/v1/auth/me", &t).await.status };

    // Control: a token forged with the right key and claims works.
    assert_eq!(me(sign(Algorithm::HS256, key, &claims(&|_| {}))).await, 200);
    // Within the leeway (30 s) an expired token still passes; beyond it, not.
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["exp"] = json!(now() - 10))
        ))
        .await,
        200
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["exp"] = json!(now() - 45))
        ))
        .await,
        401,
        "expired"
    );

    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&|_| {})).unwrap());
    assert_eq!(me(format!("{header}.{body}.")).await, 401, "alg none");
    assert_eq!(
        me(format!("{header}.{body}")).await,
        401,
        "alg none, no signature part"
    );
    // Another HMAC algorithm with the right key: the algorithm is pinned.
    assert_eq!(
        me(sign(Algorithm::HS512, key, &claims(&|_| {}))).await,
        401,
        "HS512"
    );
    // Wrong key.
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            b"another-key-another-key-another-key!",
            &claims(&|_| {})
        ))
        .await,
        401,
        "wrong key"
    );
    // Wrong audience, issuer, type; missing claims.
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["aud"] = json!("someone-else"))
        ))
        .await,
        401,
        "aud"
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["iss"] = json!("evil"))
        ))
        .await,
        401,
        "iss"
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["typ"] = json!("refresh"))
        ))
        .await,
        401,
        "typ"
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            })
        ))
        .await,
        401,
        "no aud"
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })
        ))
        .await,
        401,
        "no exp"
    );
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["nbf"] = json!(now() + 600))
        ))
        .await,
        401,
        "not yet valid"
    );
    // A lifetime beyond the 15-minute maximum.
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["exp"] = json!(now() + 86400))
        ))
        .await,
        401,
        "too long"
    );
    // Refresh token presented as an access token.
    assert_eq!(me(refresh.clone()).await, 401, "refresh as access");
    // Tampered claims: another subject with the original signature.
    let parts: Vec<&str> = real.split('.').collect();
    let mut tampered = base.clone();
    tampered["sub"] = json!(victim.to_string());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap()),
        parts[2]
    );
    assert_eq!(me(forged).await, 401, "tampered subject");
    // Right key, but the subject does not own the session.
    assert_eq!(
        me(sign(
            Algorithm::HS256,
            key,
            &claims(&|c| c["sub"] = json!(victim.to_string()))
        ))
        .await,
        401,
        "foreign session"
    );
    // Garbage.
    assert_eq!(me("not-a-token".into()).await, 401);
    assert_eq!(me("orca_at_bogus".into()).await, 401);
}
