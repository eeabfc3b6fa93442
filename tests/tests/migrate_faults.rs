//! Faults injected into migration runs (issue 13, part 6), on the test's own schemas and its
//! own backends only: a table the application keeps locked fails its tenant after the lock
//! timeout while the others migrate; a statement over the statement timeout fails its tenant;
//! a job connection terminated mid-run costs at most the tenant it was running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenant_runtime::error::{LifecycleError, MigrateError, TimeLimit};
use tenant_runtime::lifecycle::{connect_many, Connections, Outcome};
use tenant_runtime::{embed_migrations, Allowlist, Client, Error, Migrations, Migrator, Tenant};
use tenant_tests::{connect_to, database_url, TestSchemas};

static APP: Migrations = embed_migrations!("migrations/app");

/// A bound on each run, so a regression shows as a failure instead of a hung test.
const RUN_LIMIT: Duration = Duration::from_secs(120);

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

/// `n` tenants `t000..` in schemas under the test prefix (schemas created, no tables).
async fn tenants(schemas: &TestSchemas, n: usize) -> Vec<Tenant> {
    let allowlist = Allowlist::new();
    let mut sql = String::new();
    for i in 0..n {
        let key = format!("t{i:03}");
        let schema = schemas.name(&key);
        allowlist.insert(&key, &schema).unwrap();
        sql.push_str(&format!("CREATE SCHEMA \"{schema}\";"));
    }
    connect_to(&database_url().await)
        .await
        .batch_execute(&sql)
        .await
        .unwrap();
    allowlist.tenants()
}

/// The first `n` migrations of APP, loaded from a copy of their files (same checksums).
fn first_migrations(n: usize, name: &str) -> Migrations {
    let from = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/app");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files.iter().take(n) {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
    let migrations = Migrations::from_dir(&dir, &[]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    migrations
}

async fn applied_versions(client: &tokio_postgres::Client, schema: &str) -> Vec<i64> {
    let sql = format!("SELECT version FROM \"{schema}\".\"_tenant_migrations\" ORDER BY version");
    match client.query(&sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) if e.code().map(|c| c.code()) == Some("42P01") => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_locked_by_the_application_fails_after_the_lock_timeout_while_the_others_migrate()
{
    let schemas = TestSchemas::new("migrate_locked").await;
    let tenants = tenants(&schemas, 8).await;
    let url = database_url().await;
    let first_two = first_migrations(2, "locked");
    let report = Migrator::new(&first_two)
        .run(Connections::url(&url, 4), &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");

    // The application holds ACCESS EXCLUSIVE on one tenant's invoices, which 0003 alters.
    let locked = &tenants[3];
    let app = connect_to(&url).await;
    app.batch_execute(&format!(
        "BEGIN; LOCK TABLE {}.invoices IN ACCESS EXCLUSIVE MODE",
        locked.schema()
    ))
    .await
    .unwrap();

    let report = tokio::time::timeout(
        RUN_LIMIT,
        Migrator::new(&APP)
            .lock_timeout(Duration::from_millis(300))
            .run(Connections::url(&url, 4), &tenants),
    )
    .await
    .expect("the run ends although a table stays locked")
    .unwrap();
    assert_eq!(report.counts().applied, 7, "{report}");
    assert_eq!(report.counts().failed, 1, "{report}");
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed[0].tenant, *locked);
    let Outcome::Failed(error) = &failed[0].outcome else {
        unreachable!()
    };
    match error {
        Error::Migrate(m) => match &**m {
            MigrateError::TimedOut {
                tenant,
                version,
                name,
                limit,
                after,
                ..
            } => {
                assert_eq!(tenant, locked.key());
                assert_eq!(
                    (*version, name.as_deref()),
                    (Some(3), Some("add_paid_and_audit"))
                );
                assert_eq!(*limit, TimeLimit::Lock);
                assert_eq!(*after, Duration::from_millis(300));
            }
            other => panic!("expected MigrateError::TimedOut, got {other:?}"),
        },
        other => panic!("expected a migration error, got {other:?}"),
    }
    let message = error.to_string();
    for needle in [
        "at migration 3 (add_paid_and_audit)",
        "waited longer than the lock timeout (300ms, lock_timeout)",
        "nothing of this run was applied to that tenant",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let check = connect_to(&url).await;
    for t in &tenants {
        let expected: &[i64] = if t == locked { &[1, 2] } else { &[1, 2, 3] };
        assert_eq!(
            applied_versions(&check, t.schema().as_str()).await,
            expected
        );
    }

    // The application lets go: a rerun finishes the locked tenant.
    app.batch_execute("ROLLBACK").await.unwrap();
    let report = Migrator::new(&APP)
        .run(Connections::url(&url, 4), &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.counts().applied, 1, "{report}");
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_statement_over_the_statement_timeout_fails_its_tenant() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_slow.sql"),
        "CREATE TABLE {tenant}.slow (id int);\nSELECT pg_sleep(3);\n",
    )
    .unwrap();
    let slow = Migrations::from_dir(&dir, &[]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let schemas = TestSchemas::new("migrate_slow").await;
    let tenants = tenants(&schemas, 1).await;
    let mut client = connect().await;
    let report = Migrator::new(&slow)
        .statement_timeout(Duration::from_millis(200))
        .run(&mut client, &tenants)
        .await
        .unwrap();
    match &report.tenants[0].outcome {
        Outcome::Failed(Error::Migrate(m)) => assert!(
            matches!(
                **m,
                MigrateError::TimedOut {
                    limit: TimeLimit::Statement,
                    version: Some(1),
                    ..
                }
            ),
            "{m}"
        ),
        other => panic!("expected a statement timeout, got {other:?}"),
    }
    assert!(report.tenants[0]
        .outcome
        .to_string()
        .contains("statement_timeout"));
    // The client is fine afterwards (the limit was local to the tenant's transaction).
    let timeout: String = client
        .as_tokio_postgres()
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
    schemas.cleanup().await;
}

/// Migrates 120 tenants over 4 connections named `application_name` and terminates one of
/// those backends once 10 tenants are done; returns the report and whether a backend was
/// terminated while tenants were still left.
async fn run_and_terminate_one(
    schemas: &TestSchemas,
    tenants: &[Tenant],
    application_name: &str,
    from_url: bool,
) -> (tenant_runtime::lifecycle::MigrationReport, bool) {
    let url = format!(
        "{}?application_name={application_name}",
        database_url().await
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let killed_early = Arc::new(AtomicBool::new(false));
    let total = tenants.len();
    let migrator = Migrator::new(&APP).on_progress(move |p| {
        if p.done == 10 {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
        assert_eq!(p.total, total);
    });
    let killer = {
        let killed_early = killed_early.clone();
        let name = application_name.to_owned();
        let admin = connect_to(&database_url().await).await;
        async move {
            rx.await.unwrap();
            // One of this test's own job connections: the lowest pid of its name.
            let row = admin
                .query_one(
                    "SELECT pg_terminate_backend(min(pid)), count(*) FROM pg_stat_activity \
                     WHERE application_name = $1",
                    &[&name],
                )
                .await
                .unwrap();
            let (terminated, connections): (Option<bool>, i64) = (row.get(0), row.get(1));
            assert_eq!(connections, 4, "the run's 4 connections");
            killed_early.store(terminated == Some(true), Ordering::SeqCst);
        }
    };
    let run = async {
        if from_url {
            migrator
                .run(Connections::url(&url, 4), tenants)
                .await
                .unwrap()
        } else {
            let mut clients = connect_many(&url, 4).await.unwrap();
            migrator.run(&mut clients, tenants).await.unwrap()
        }
    };
    let (report, ()) = tokio::time::timeout(RUN_LIMIT, async { tokio::join!(run, killer) })
        .await
        .expect("the run ends");
    let _ = schemas;
    (report, killed_early.load(Ordering::SeqCst))
}

async fn assert_costs_at_most_one_tenant(
    report: &tenant_runtime::lifecycle::MigrationReport,
    tenants: &[Tenant],
) {
    let c = report.counts();
    assert!(c.failed <= 1, "{report}");
    assert_eq!(
        c.applied + c.up_to_date + c.failed,
        tenants.len(),
        "{report}"
    );
    for failed in report.failed() {
        assert!(
            matches!(&failed.outcome, Outcome::Failed(Error::Migrate(m))
                if matches!(**m, MigrateError::ConnectionLost { .. })),
            "{}",
            failed.outcome
        );
    }
    let check = connect_to(&database_url().await).await;
    let mut behind = 0;
    for t in tenants {
        match applied_versions(&check, t.schema().as_str()).await[..] {
            [1, 2, 3] => {}
            [] => behind += 1,
            ref other => panic!("{}: {other:?}", t.key()),
        }
    }
    assert_eq!(behind, c.failed, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_job_connection_opened_from_a_url_costs_at_most_its_tenant() {
    let schemas = TestSchemas::new("migrate_kill_url").await;
    let tenants = tenants(&schemas, 120).await;
    let (report, killed) = run_and_terminate_one(&schemas, &tenants, schemas.prefix(), true).await;
    assert!(killed, "a job connection was terminated mid-run");
    eprintln!(
        "terminated 1 of 4 connections: {} applied, {} failed",
        report.counts().applied,
        report.counts().failed
    );
    assert_costs_at_most_one_tenant(&report, &tenants).await;
    schemas.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_client_of_the_caller_hands_its_tenant_to_the_others() {
    let schemas = TestSchemas::new("migrate_kill_held").await;
    let tenants = tenants(&schemas, 120).await;
    let (report, killed) = run_and_terminate_one(&schemas, &tenants, schemas.prefix(), false).await;
    assert!(killed, "a job connection was terminated mid-run");
    eprintln!(
        "terminated 1 of 4 held clients: {} applied, {} failed",
        report.counts().applied,
        report.counts().failed
    );
    assert_costs_at_most_one_tenant(&report, &tenants).await;
    schemas.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_job_connection_dies_the_tenants_not_started_say_so_and_a_rerun_finishes() {
    let schemas = TestSchemas::new("migrate_kill_all").await;
    let tenants = tenants(&schemas, 120).await;
    let name = schemas.prefix().to_owned();
    let url = format!("{}?application_name={name}", database_url().await);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let migrator = Migrator::new(&APP).on_progress(move |p| {
        if p.done == 10 {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    });
    let admin = connect_to(&database_url().await).await;
    let killer = async {
        rx.await.unwrap();
        // Every one of this run's job connections (the caller's clients: none is replaced).
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&name],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let mut clients = connect_many(&url, 2).await.unwrap();
    let run = migrator.run(&mut clients, &tenants);
    let (report, killed) = tokio::time::timeout(RUN_LIMIT, async { tokio::join!(run, killer) })
        .await
        .expect("the run ends");
    let report = report.unwrap();
    assert_eq!(killed, 2, "both job connections terminated");
    let mut not_started = Vec::new();
    for t in report.failed() {
        match &t.outcome {
            // The tenants in flight when their connection died.
            Outcome::Failed(Error::Migrate(m))
                if matches!(**m, MigrateError::ConnectionLost { .. }) => {}
            Outcome::Failed(e @ Error::Lifecycle(LifecycleError::ConnectionsLost { .. })) => {
                not_started.push(e.to_string())
            }
            other => panic!("{}: {other}", t.tenant.key()),
        }
    }
    let c = report.counts();
    assert!(!not_started.is_empty(), "{report}");
    assert!(c.failed - not_started.len() <= 2, "{report}");
    assert_eq!(c.applied + c.failed, tenants.len(), "{report}");
    let message = &not_started[0];
    assert!(
        message.contains("every job connection was lost"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{} tenant(s) were not started", not_started.len())),
        "{message}"
    );
    assert!(message.contains("rerun"), "{message}");
    assert!(!message.contains("pass at least one client"), "{message}");

    // As it says: a rerun finishes them.
    let rerun = Migrator::new(&APP)
        .run(Connections::url(&database_url().await, 2), &tenants)
        .await
        .unwrap();
    assert!(rerun.is_success(), "{rerun}");
    let check = connect_to(&database_url().await).await;
    for t in &tenants {
        assert_eq!(
            applied_versions(&check, t.schema().as_str()).await,
            [1, 2, 3],
            "{}",
            t.key()
        );
    }
    schemas.cleanup().await;
}
