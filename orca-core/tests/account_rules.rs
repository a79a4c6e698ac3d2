//! Account rules held by the facade for every frontend: a new password or a disabled account
//! ends every session and API token of the user, in one audited update; a role change does not.

use std::sync::Arc;

use orca_core::memory::MemoryStore;
use orca_core::model::{NewUser, Principal, Role};
use orca_core::{
    Clock, KeyRing, Orca, Store, SystemClock, TokenKind, TokenRecord, UserPatch, auth,
};
use secrecy::SecretString;

fn token(user: orca_core::ids::UserId, n: u8) -> TokenRecord {
    TokenRecord {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        kind: TokenKind::Api,
        family: None,
        hash: format!("{n:064x}"),
        name: Some(format!("t{n}")),
        scopes: vec!["purpose:api".into()],
        created_at: chrono::Utc::now(),
        expires_at: None,
        used_at: None,
        revoked_at: None,
    }
}

async fn live_tokens(store: &Arc<dyn Store>, user: orca_core::ids::UserId) -> usize {
    store
        .list_tokens(user)
        .await
        .unwrap()
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .count()
}

#[tokio::test]
async fn password_change_and_disable_end_every_token_once_in_the_facade() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
    let orca = Orca::builder()
        .store(store.clone())
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .build()
        .unwrap();
    let admin = Principal::system("test");
    let pw = SecretString::from("a long enough passphrase".to_string());
    let hash = auth::hash_password_async("ann", pw.clone()).await.unwrap();
    assert!(auth::verify_password(&pw, Some(&hash)));
    let ann = orca
        .create_user(
            &admin,
            NewUser {
                username: "ann".into(),
                role: Role::Operator,
                password_hash: Some(hash),
            },
        )
        .await
        .unwrap();
    let mut n = 0u8;
    let mut issue = async |store: &Arc<dyn Store>| {
        for _ in 0..2 {
            n += 1;
            store.create_token(&token(ann.id, n), None).await.unwrap();
        }
    };

    // A role change keeps the tokens (they act with the new role at their next use).
    issue(&store).await;
    let patch = UserPatch {
        role: Some(Role::Viewer),
        ..Default::default()
    };
    orca.update_user(&admin, ann.id, patch).await.unwrap();
    assert_eq!(live_tokens(&store, ann.id).await, 2);

    // A new password ends them all; the update's audit record says so.
    let new = auth::hash_password_async(
        "ann",
        SecretString::from("another long passphrase".to_string()),
    )
    .await
    .unwrap();
    let patch = UserPatch {
        password_hash: Some(new),
        ..Default::default()
    };
    orca.update_user(&admin, ann.id, patch).await.unwrap();
    assert_eq!(live_tokens(&store, ann.id).await, 0);
    let recs = store
        .list_audit(
            &Default::default(),
            orca_core::model::Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let update = recs.iter().find(|r| r.action == "update").unwrap();
    assert_eq!(update.details["tokens_ended"], true, "{update:?}");
    assert!(
        !update.details.to_string().contains("argon2"),
        "no hash in audit"
    );

    // Disabling ends them too.
    issue(&store).await;
    assert_eq!(live_tokens(&store, ann.id).await, 2);
    let patch = UserPatch {
        active: Some(false),
        ..Default::default()
    };
    orca.update_user(&admin, ann.id, patch).await.unwrap();
    assert_eq!(live_tokens(&store, ann.id).await, 0);
}
