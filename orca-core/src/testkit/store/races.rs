//! Races across areas: what must happen exactly once when many callers try at the same time.

use std::sync::Arc;

use super::StoreFactory;
use super::fixtures::{ctx, opts, secs};
use crate::ids::UserId;
use crate::model::{ExecutionStatus, Finish, JobOptions, Role, User};
use crate::{ClaimRequest, ErrorKind, StoreExt, TokenKind, TokenRecord};

/// Concurrent claimers never exceed a job's `concurrency` nor the `per_system` limit.
pub async fn claim_limits_hold_under_concurrency(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..12 {
        systems.push(c.system(&format!("n{i:02}")).await);
    }
    let refs: Vec<_> = systems.iter().collect();
    let (limited, _) = c
        .job(
            &refs,
            JobOptions {
                concurrency: Some(3),
                ..opts()
            },
        )
        .await;
    // Many single-system jobs on one hot system.
    let hot = c.system("hot").await;
    for _ in 0..10 {
        c.job(&[&hot], opts()).await;
    }
    for round in 0..4 {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = Arc::clone(&c.store);
            tasks.push(tokio::spawn(async move {
                store
                    .claim(&ClaimRequest {
                        worker: format!("r{round}w{w}"),
                        limit: 2,
                        lease_for: secs(60),
                        per_system: Some(1),
                    })
                    .await
                    .expect("claim")
            }));
        }
        let mut claims = Vec::new();
        for t in tasks {
            claims.extend(t.await.expect("task"));
        }
        let counts = c.store.job_counts(limited.id).await.expect("counts");
        assert!(
            counts.running <= 3,
            "job concurrency 3 exceeded: {counts:?}"
        );
        let on_hot = claims.iter().filter(|cl| cl.system.id == hot.id).count();
        assert!(
            on_hot <= 1,
            "per_system 1 exceeded on the hot system: {on_hot}"
        );
        // Finish what was claimed so the next round claims again.
        for cl in claims {
            c.store
                .finish_one(&cl.lease, &Finish::exited(0))
                .await
                .expect("finish");
        }
    }
    let counts = c.store.job_counts(limited.id).await.expect("counts");
    assert!(
        counts.completed >= 3,
        "the limited job made progress: {counts:?}"
    );
}

/// Many finishes of the same execution at once: exactly one wins, the rest answer
/// `LeaseLost` (or `Conflict`), and the stored outcome is the winner's.
pub async fn finish_race_single_winner(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("racy").await;
    c.job(&[&s], opts()).await;
    let cl = c.claim("w", 1).await.remove(0);
    let mut tasks = Vec::new();
    for code in 0..8 {
        let store = Arc::clone(&c.store);
        let lease = cl.lease.clone();
        tasks.push(tokio::spawn(async move {
            (code, store.finish_one(&lease, &Finish::exited(code)).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (code, r) = t.await.expect("task");
        match r {
            Ok(done) => winners.push((code, done)),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::LeaseLost | ErrorKind::Conflict),
                "loser answered {e}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one finish wins");
    let (code, done) = &winners[0];
    let e = c.store.get_execution(cl.execution.id).await.expect("get");
    assert_eq!(e.exit_code, Some(*code));
    assert_eq!(&e, &done.execution);
    let counts = c.store.job_counts(cl.job.id).await.expect("counts");
    assert_eq!(counts.total(), 1, "{counts:?}");
}

/// Reapers on several nodes at once rescue each expired lease exactly once.
pub async fn rescue_race_once(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..10 {
        systems.push(c.system(&format!("r{i}")).await);
    }
    let refs: Vec<_> = systems.iter().collect();
    let (job, _) = c.job(&refs, opts()).await;
    assert_eq!(c.claim("w", 10).await.len(), 10);
    c.advance(secs(31));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&c.store);
        tasks.push(tokio::spawn(async move {
            store.rescue_expired(3).await.expect("rescue")
        }));
    }
    let mut rescued = Vec::new();
    for t in tasks {
        rescued.extend(t.await.expect("task"));
    }
    rescued.extend(c.store.rescue_expired(100).await.expect("rescue"));
    let mut ids: Vec<_> = rescued.iter().map(|e| e.id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "an execution was rescued twice");
    assert_eq!(ids.len(), 10);
    let counts = c.store.job_counts(job.id).await.expect("counts");
    assert_eq!(counts.lost, 10, "{counts:?}");
    assert!(rescued.iter().all(|e| e.status == ExecutionStatus::Lost));
}

/// Concurrent creates of one name: one system, one audit record; concurrent uses of one
/// refresh token: one `true`.
pub async fn unique_and_single_use_races(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&c.store);
        let s = c.new_system("contended");
        let a = c.audit("system", "create");
        tasks.push(tokio::spawn(async move {
            (a.id, store.create_system(&s, &a).await)
        }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let (audit, r) = t.await.expect("task");
        match r {
            Ok(()) => ok.push(audit),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one create wins");
    assert_eq!(c.audit_count(ok[0]).await, 1);
    let audits = c
        .store
        .list_audit(
            &crate::model::AuditFilter {
                resource_type: Some("system".into()),
                ..Default::default()
            },
            super::fixtures::page(0, 100),
        )
        .await
        .expect("list");
    assert_eq!(audits.len(), 1, "losers wrote no audit records");

    let now = c.now();
    let user = User {
        id: UserId::new(),
        username: "racer".into(),
        role: Role::Operator,
        password_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    c.store
        .create_user(&user, &c.audit("user", "create"))
        .await
        .expect("user");
    let token = TokenRecord {
        id: uuid::Uuid::now_v7(),
        user_id: user.id,
        kind: TokenKind::Refresh,
        family: Some(uuid::Uuid::now_v7()),
        hash: "f".repeat(64),
        name: None,
        scopes: vec![],
        created_at: now,
        expires_at: None,
        used_at: None,
        revoked_at: None,
    };
    c.store.create_token(&token, None).await.expect("token");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&c.store);
        tasks.push(tokio::spawn(async move {
            store.use_token(token.id).await.expect("use")
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1, "a refresh token is used once");
}
