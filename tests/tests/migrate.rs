//! Migrations across every tenant schema on a real PostgreSQL: 200 tenants with 8 jobs, a
//! failing tenant rolled back and reported while the others apply, reruns, fail-fast,
//! changed files, dry runs, named slots, concurrent runners, and the run-time loader.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tenant_runtime::error::{LifecycleError, MigrateError};
use tenant_runtime::lifecycle::{connect_many, Connections, Outcome};
use tenant_runtime::{
    embed_migrations, Allowlist, Client, Error, Migrations, Migrator, Model, ModelSet, Provisioner,
    Registry, SchemaMap, Tenant,
};
use tenant_tests::{database_url, TestSchemas};

static APP: Migrations = embed_migrations!("migrations/app");
/// Same versions as APP, with 0002 edited after the fact.
static CHANGED: Migrations = embed_migrations!("migrations/changed");
static SHARED: Migrations = embed_migrations!("migrations/shared", slots = ["shared"]);

/// A per-tenant table the provisioner creates (the migrations create the rest).
#[derive(Debug, Model)]
#[tenant(table = "settings")]
struct Setting {
    #[tenant(primary_key)]
    name: String,
    value: String,
}

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

/// `n` tenants `t000..` in schemas under the test prefix (schemas created, no tables).
async fn tenants(schemas: &TestSchemas, client: &Client, n: usize) -> Vec<Tenant> {
    let allowlist = Allowlist::new();
    let mut sql = String::new();
    for i in 0..n {
        let key = format!("t{i:03}");
        let schema = schemas.name(&key);
        allowlist.insert(&key, &schema).unwrap();
        sql.push_str(&format!("CREATE SCHEMA \"{schema}\";"));
    }
    client
        .as_tokio_postgres()
        .batch_execute(&sql)
        .await
        .unwrap();
    allowlist.tenants()
}

async fn applied_versions(client: &Client, schema: &str) -> Vec<i64> {
    let sql = format!("SELECT version FROM \"{schema}\".\"_tenant_migrations\" ORDER BY version");
    match client.as_tokio_postgres().query(&sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) if e.code().map(|c| c.code()) == Some("42P01") => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

async fn table_exists(client: &Client, schema: &str, table: &str) -> bool {
    client
        .as_tokio_postgres()
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .is_some()
}

fn applied(outcome: &Outcome) -> Option<&[u64]> {
    match outcome {
        Outcome::Applied(v) => Some(v),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_200_tenants_and_migrates_all_with_8_jobs() {
    let schemas = TestSchemas::new("migrate_200").await;
    let url = database_url().await;
    let mut clients = connect_many(&url, 8).await.unwrap();
    let provisioner = Provisioner::new(ModelSet::new().with::<Setting>())
        .unwrap()
        .with_registry(Registry::new(&schemas.name("registry")).unwrap());
    provisioner.install(&clients[0]).await.unwrap();

    let pairs: Vec<(String, String)> = (0..200)
        .map(|i| (format!("t{i:03}"), schemas.name(&format!("t{i:03}"))))
        .collect();
    let allowlist = Allowlist::new();
    let started = Instant::now();
    let provisioned = provisioner
        .provision_many(&mut clients, &allowlist, &pairs)
        .await;
    let provision_time = started.elapsed();
    for r in &provisioned {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(allowlist.len(), 200);

    // Another process would load the tenants from the registry.
    let loaded = Allowlist::load_from_registry(&clients[0], provisioner.registry())
        .await
        .unwrap();
    let tenants = loaded.tenants();
    assert_eq!(tenants.len(), 200);

    let calls = Arc::new(AtomicUsize::new(0));
    let last_done = Arc::new(AtomicUsize::new(0));
    let (c, d) = (calls.clone(), last_done.clone());
    let migrator = Migrator::new(&APP).on_progress(move |p| {
        c.fetch_add(1, Ordering::SeqCst);
        d.fetch_max(p.done, Ordering::SeqCst);
        assert_eq!(p.total, 200);
    });
    let started = Instant::now();
    let report = migrator.run(&mut clients, &tenants).await.unwrap();
    let migrate_time = started.elapsed();
    eprintln!(
        "200 tenants: provisioned in {provision_time:.2?}, migrated (3 migrations, 8 jobs) in {migrate_time:.2?}"
    );
    assert!(report.is_success(), "{report}");
    assert_eq!(report.counts().applied, 200);
    for t in &report.tenants {
        assert_eq!(
            applied(&t.outcome),
            Some(&[1, 2, 3][..]),
            "{}",
            t.tenant.key()
        );
        assert_eq!(t.version_before, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 200);
    assert_eq!(last_done.load(Ordering::SeqCst), 200);

    // Versions are recorded, and the migrated tables are there, in every schema.
    let client = &clients[0];
    for tenant in &tenants {
        let schema = tenant.schema();
        assert_eq!(applied_versions(client, schema.as_str()).await, [1, 2, 3]);
    }
    let paid_columns: i64 = client
        .as_tokio_postgres()
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE left(table_schema, length($1)) = $1 AND table_name = 'invoices' AND column_name = 'paid'",
            &[&format!("{}_t", schemas.prefix())],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(paid_columns, 200);

    // A rerun has nothing to do.
    let report = Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert_eq!(report.counts().up_to_date, 200, "{report}");
    assert!(report.tenants.iter().all(|t| t.version_before == Some(3)));

    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_failing_tenant_is_rolled_back_and_reported_while_the_others_apply() {
    let schemas = TestSchemas::new("migrate_failure").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 12).await;
    let broken = &tenants[5];
    let broken_schema = broken.schema();
    // Injected failure: migration 0003 creates audit_log, which already exists here.
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE TABLE {broken_schema}.audit_log (id int)"))
        .await
        .unwrap();

    let mut clients = connect_many(&database_url().await, 4).await.unwrap();
    let report = Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(!report.is_success());
    assert_eq!(report.counts().applied, 11);
    assert_eq!(report.counts().failed, 1);
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed[0].tenant, *broken);
    match &failed[0].outcome {
        Outcome::Failed(Error::Migrate(failed)) => {
            let MigrateError::Failed {
                tenant,
                version,
                name,
                source,
                ..
            } = &**failed
            else {
                panic!("expected MigrateError::Failed, got {failed:?}");
            };
            assert_eq!(
                (tenant.as_str(), *version, name.as_str()),
                ("t005", 3, "add_paid_and_audit")
            );
            assert_eq!(
                source.sqlstate(),
                Some("42P07"),
                "duplicate table: {source}"
            );
        }
        other => panic!("expected a failed migration, got {other:?}"),
    }
    assert!(report.to_string().contains("t005"));
    assert!(report.to_string().contains("FAILED"));

    // The broken tenant is exactly as before: 0001 and 0002 were rolled back with 0003.
    assert!(applied_versions(&client, broken_schema.as_str())
        .await
        .is_empty());
    assert!(!table_exists(&client, broken_schema.as_str(), "customers").await);
    assert!(!table_exists(&client, broken_schema.as_str(), "_tenant_migrations").await);
    for t in tenants.iter().filter(|t| *t != broken) {
        assert_eq!(
            applied_versions(&client, t.schema().as_str()).await,
            [1, 2, 3]
        );
    }

    // Fix the cause and rerun: only the broken tenant has work left.
    client
        .as_tokio_postgres()
        .batch_execute(&format!("DROP TABLE {broken_schema}.audit_log"))
        .await
        .unwrap();
    let report = Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.counts().up_to_date, 11);
    assert_eq!(report.counts().applied, 1);
    let fixed = report.tenants.iter().find(|t| t.tenant == *broken).unwrap();
    assert_eq!(applied(&fixed.outcome), Some(&[1, 2, 3][..]));
    assert_eq!(
        applied_versions(&client, broken_schema.as_str()).await,
        [1, 2, 3]
    );
    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn fail_fast_starts_no_tenant_after_a_failure() {
    let schemas = TestSchemas::new("migrate_fail_fast").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 6).await;
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE TABLE {}.customers (id int)",
            tenants[1].schema()
        ))
        .await
        .unwrap();

    // One connection: tenants run in order, so the outcome is deterministic.
    let mut clients = vec![connect().await];
    let report = Migrator::new(&APP)
        .fail_fast(true)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    let outcomes: Vec<&str> = report
        .tenants
        .iter()
        .map(|t| match t.outcome {
            Outcome::Applied(_) => "applied",
            Outcome::Failed(_) => "failed",
            Outcome::NotRun => "not run",
            _ => "other",
        })
        .collect();
    assert_eq!(
        outcomes,
        ["applied", "failed", "not run", "not run", "not run", "not run"]
    );
    for t in &tenants[2..] {
        assert!(applied_versions(&client, t.schema().as_str())
            .await
            .is_empty());
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_changed_applied_migration_and_an_unknown_version_are_detected() {
    let schemas = TestSchemas::new("migrate_checksum").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 2).await;
    let mut clients = vec![connect().await, connect().await];
    assert!(Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap()
        .is_success());
    assert_ne!(
        APP.get(2).unwrap().checksum(),
        CHANGED.get(2).unwrap().checksum()
    );

    for dry_run in [true, false] {
        let report = Migrator::new(&CHANGED)
            .dry_run(dry_run)
            .run(&mut clients, &tenants)
            .await
            .unwrap();
        assert_eq!(report.counts().failed, 2, "{report}");
        for t in &report.tenants {
            match &t.outcome {
                Outcome::Failed(Error::Migrate(mismatch)) => {
                    let MigrateError::ChecksumMismatch {
                        version,
                        applied,
                        embedded,
                        ..
                    } = &**mismatch
                    else {
                        panic!("expected a checksum mismatch, got {mismatch:?}");
                    };
                    assert_eq!(*version, 2);
                    assert_eq!(applied, APP.get(2).unwrap().checksum());
                    assert_eq!(embedded, CHANGED.get(2).unwrap().checksum());
                }
                other => panic!("expected a checksum mismatch, got {other:?}"),
            }
        }
    }

    // A version applied by a newer build is reported, not ignored.
    let schema = tenants[0].schema();
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "INSERT INTO {schema}.\"_tenant_migrations\" (version, name, checksum) VALUES (99, 'from_the_future', 'x')"
        ))
        .await
        .unwrap();
    let report = Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(matches!(
        report.tenants[0].outcome,
        Outcome::Failed(Error::Migrate(ref e))
            if matches!(**e, MigrateError::UnknownApplied { version: 99, .. })
    ));
    assert!(matches!(report.tenants[1].outcome, Outcome::UpToDate));
    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_reports_pending_versions_and_changes_nothing() {
    let schemas = TestSchemas::new("migrate_dry_run").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 3).await;
    let mut clients = vec![connect().await];

    let report = Migrator::new(&APP)
        .dry_run(true)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(report.is_success());
    assert_eq!(report.counts().pending, 3);
    assert!(report
        .tenants
        .iter()
        .all(|t| matches!(&t.outcome, Outcome::Pending(v) if v == &[1, 2, 3])));
    for t in &tenants {
        assert!(!table_exists(&client, t.schema().as_str(), "_tenant_migrations").await);
        assert!(!table_exists(&client, t.schema().as_str(), "customers").await);
    }

    // One tenant migrated: the dry run now says so.
    Migrator::new(&APP)
        .run(&mut clients[0], &tenants[..1])
        .await
        .unwrap();
    let report = Migrator::new(&APP)
        .dry_run(true)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(matches!(report.tenants[0].outcome, Outcome::UpToDate));
    assert_eq!(report.counts().pending, 2);
    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn named_slots_in_migrations_follow_the_schema_map() {
    let schemas = TestSchemas::new("migrate_named_slot").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 2).await;
    let plans = schemas.name("plans_eu");
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE SCHEMA \"{plans}\"; CREATE TABLE \"{plans}\".plans (code text PRIMARY KEY)"
        ))
        .await
        .unwrap();
    let mut clients = vec![connect().await];
    let report = Migrator::new(&SHARED)
        .with_schema_map(SchemaMap::new().with("shared", &plans).unwrap())
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    for t in &tenants {
        let target: String = client
            .as_tokio_postgres()
            .query_one(
                "SELECT n.nspname::text FROM pg_constraint c \
                 JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
                 WHERE c.contype = 'f' AND c.conrelid = format('%I.subscriptions', $1::text)::regclass",
                &[&t.schema().as_str()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(target, plans);
    }
    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_once() {
    let schemas = TestSchemas::new("migrate_concurrent").await;
    let client = connect().await;
    let tenants = tenants(&schemas, &client, 10).await;
    let url = database_url().await;
    let (mut a, mut b) = (
        connect_many(&url, 3).await.unwrap(),
        connect_many(&url, 3).await.unwrap(),
    );
    // Two deployments start migrating the same tenants at the same moment.
    let migrator = Migrator::new(&APP);
    let (ra, rb) = tokio::join!(
        migrator.run(&mut a, &tenants),
        migrator.run(&mut b, &tenants)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.is_success() && rb.is_success(), "{ra}\n{rb}");
    for (x, y) in ra.tenants.iter().zip(&rb.tenants) {
        let applied_by = [&x.outcome, &y.outcome]
            .iter()
            .filter(|o| matches!(o, Outcome::Applied(_)))
            .count();
        assert_eq!(
            applied_by,
            1,
            "{}: {} / {}",
            x.tenant.key(),
            x.outcome,
            y.outcome
        );
    }
    for t in &tenants {
        assert_eq!(
            applied_versions(&client, t.schema().as_str()).await,
            [1, 2, 3]
        );
    }
    drop((a, b));
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_missing_schema_fails_only_its_tenant() {
    let schemas = TestSchemas::new("migrate_missing_schema").await;
    let client = connect().await;
    let mut tenants = tenants(&schemas, &client, 2).await;
    let ghost = Allowlist::new()
        .insert("ghost", &schemas.name("ghost"))
        .unwrap();
    tenants.insert(1, ghost);
    let mut clients = vec![connect().await];
    let report = Migrator::new(&APP)
        .run(&mut clients, &tenants)
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 2);
    assert!(matches!(
        report.tenants[1].outcome,
        Outcome::Failed(Error::Lifecycle(LifecycleError::SchemaNotFound { .. }))
    ));
    drop(clients);
    schemas.cleanup().await;
}

#[test]
fn the_run_time_loader_agrees_with_the_macro() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/app");
    let loaded = Migrations::from_dir(dir, &[]).unwrap();
    assert_eq!(loaded.len(), APP.len());
    for (a, b) in loaded.iter().zip(APP.iter()) {
        assert_eq!(
            (a.version(), a.name(), a.file_name(), a.checksum()),
            (b.version(), b.name(), b.file_name(), b.checksum())
        );
        assert_eq!(a.template().to_string(), b.template().to_string());
    }
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/shared");
    assert!(Migrations::from_dir(shared, &["shared"]).is_ok());
    // Without the slot declared, the same file is refused, with file, line and column.
    match Migrations::from_dir(shared, &[]) {
        Err(Error::Migrate(e)) => match &*e {
            MigrateError::Invalid { problems } => assert!(
                problems.iter().any(|p| p
                    .contains("0001_create_subscriptions.sql:4:35: unknown placeholder {shared}")),
                "{problems:?}"
            ),
            other => panic!("expected MigrateError::Invalid, got {other:?}"),
        },
        other => panic!("expected InvalidMigrations, got {other:?}"),
    }
}

#[tokio::test]
async fn one_entry_point_runs_on_one_client_on_several_or_on_a_url() {
    let schemas = TestSchemas::new("migrate_targets").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 3).await;
    let migrator = Migrator::new(&APP);

    // One client, one tenant.
    let report = migrator.run(&mut client, &tenants[..1]).await.unwrap();
    assert_eq!(applied(&report.tenants[0].outcome), Some(&[1, 2, 3][..]));
    // Connections opened for the run from a URL: the first tenant is done already.
    let url = database_url().await;
    let report = migrator
        .run(Connections::url(&url, 2), &tenants)
        .await
        .unwrap();
    assert!(matches!(report.tenants[0].outcome, Outcome::UpToDate));
    assert_eq!(report.counts().applied, 2, "{report}");
    // Clients the caller holds.
    let mut clients = connect_many(&url, 2).await.unwrap();
    let report = migrator.run(&mut clients, &tenants).await.unwrap();
    assert_eq!(report.counts().up_to_date, 3, "{report}");
    // Only opening the connections is an `Err`; nothing ran.
    let unreachable = migrator
        .run(
            Connections::url("postgres://postgres@127.0.0.1:1/postgres", 2),
            &tenants,
        )
        .await;
    assert!(matches!(unreachable, Err(Error::Db(_))), "{unreachable:?}");
    drop(clients);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_version_beyond_bigint_fails_its_tenant_with_a_typed_error() {
    let dir = std::env::temp_dir().join(format!("tenant_migrate_big_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 10^19 fits a u64 but not PostgreSQL's bigint.
    std::fs::write(
        dir.join("10000000000000000000_big.sql"),
        "CREATE TABLE {tenant}.big (id int);\n",
    )
    .unwrap();
    let migrations = Migrations::from_dir(&dir, &[]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let schemas = TestSchemas::new("migrate_big_version").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 1).await;
    let report = Migrator::new(&migrations)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    match &report.tenants[0].outcome {
        Outcome::Failed(Error::Migrate(failed)) => match &**failed {
            MigrateError::Failed {
                version, source, ..
            } => {
                assert_eq!(*version, 10_000_000_000_000_000_000);
                assert!(
                    matches!(&**source, Error::Migrate(e)
                        if matches!(**e, MigrateError::VersionOutOfRange { version: 10_000_000_000_000_000_000 })),
                    "{source}"
                );
                assert!(
                    source.to_string().contains("does not fit a bigint"),
                    "{source}"
                );
            }
            other => panic!("expected MigrateError::Failed, got {other:?}"),
        },
        other => panic!("expected a failed tenant, got {other:?}"),
    }
    // Rolled back with the tenant: the table the migration created is gone.
    assert!(!table_exists(&client, tenants[0].schema().as_str(), "big").await);
    schemas.cleanup().await;
}
