//! Versions (issue 13, part 3) on a real PostgreSQL: `Migrator::to` up and down through the
//! files' `-- down` sections (the catalog after a rollback is the catalog before the
//! migration), a version missing below the latest applied one refused with nothing applied,
//! a rollback without a down section refused, `stamp` adopting a hand-built schema,
//! `history`, and shared migrations run once, not per tenant.

use std::path::PathBuf;

use tenant_runtime::error::MigrateError;
use tenant_runtime::lifecycle::Outcome;
use tenant_runtime::model::SchemaSnapshot;
use tenant_runtime::{
    embed_migrations, Allowlist, Client, Error, Migrations, Migrator, ModelSet, Provisioner,
    Registry, SchemaMap, Tenant,
};
use tenant_tests::{database_url, TestSchemas};

static APP: Migrations = embed_migrations!("migrations/app");

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

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

/// A directory of migration files written by the test: `(file name, content)`.
fn migrations_dir(name: &str, files: &[(&str, &str)], slots: &[&'static str]) -> Migrations {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("versions-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let migrations = Migrations::from_dir(&dir, slots).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    migrations
}

fn failure(outcome: &Outcome) -> &MigrateError {
    match outcome {
        Outcome::Failed(Error::Migrate(m)) => m,
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_migration_applied_then_rolled_back_with_to_restores_the_previous_catalog_exactly() {
    let schemas = TestSchemas::new("versions_rollback").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 2).await;
    let names: Vec<_> = tenants.iter().map(|t| t.schema()).collect();

    let report = Migrator::new(&APP)
        .to(2)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(
        report
            .tenants
            .iter()
            .all(|t| matches!(&t.outcome, Outcome::Applied(v) if v == &[1, 2])),
        "{report}"
    );
    let at_2 = SchemaSnapshot::read(&client, &names).await.unwrap();

    let report = Migrator::new(&APP)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 2, "{report}");
    let at_3 = SchemaSnapshot::read(&client, &names).await.unwrap();
    for schema in &names {
        assert_ne!(
            at_2.get(*schema),
            at_3.get(*schema),
            "0003 changed the catalog"
        );
    }

    let report = Migrator::new(&APP)
        .to(2)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    for t in &report.tenants {
        match &t.outcome {
            Outcome::RolledBack {
                versions,
                then_applied,
            } => assert_eq!((&versions[..], then_applied.len()), (&[3][..], 0)),
            other => panic!("expected a rollback, got {other:?}"),
        }
        assert_eq!(t.version_before, Some(3));
    }
    assert!(report.to_string().contains("rolled back 3"), "{report}");
    assert_eq!(report.counts().rolled_back, 2);
    let back = SchemaSnapshot::read(&client, &names).await.unwrap();
    for schema in &names {
        let (before, after) = (at_2.get(*schema).unwrap(), back.get(*schema).unwrap());
        assert_eq!(before, after, "the catalog of {schema} after the rollback");
        assert!(before.diff(after).is_empty());
        assert_eq!(applied_versions(&client, schema.as_str()).await, [1, 2]);
    }

    // A dry run to 0 says what it would do and changes nothing; then all the way down.
    let report = Migrator::new(&APP)
        .to(0)
        .dry_run(true)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(
        matches!(&report.tenants[0].outcome, Outcome::PendingRollback { versions, .. } if versions == &[2, 1]),
        "{report}"
    );
    assert_eq!(applied_versions(&client, names[0].as_str()).await, [1, 2]);
    Migrator::new(&APP)
        .to(0)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(applied_versions(&client, names[0].as_str())
        .await
        .is_empty());
    assert!(!table_exists(&client, names[0].as_str(), "customers").await);

    // An unknown target is refused before anything runs.
    let refused = Migrator::new(&APP).to(7).run(&mut client, &tenants).await;
    match refused {
        Err(Error::Migrate(m)) => assert!(
            matches!(*m, MigrateError::UnknownVersion { version: 7, .. }),
            "{m}"
        ),
        other => panic!("expected UnknownVersion, got {other:?}"),
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_gap_below_the_latest_applied_version_is_refused_and_nothing_is_applied() {
    let schemas = TestSchemas::new("versions_gap").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 1).await;
    let schema = tenants[0].schema();
    let one = (
        "0001_a.sql",
        "CREATE TABLE {tenant}.a (id int);\n-- down\nDROP TABLE {tenant}.a;\n",
    );
    let three = (
        "0003_c.sql",
        "CREATE TABLE {tenant}.c (id int);\n-- down\nDROP TABLE {tenant}.c;\n",
    );
    let two = ("0002_b.sql", "CREATE TABLE {tenant}.b (id int);\n");
    let before = migrations_dir("gap_before", &[one, three], &[]);
    let merged = migrations_dir("gap_merged", &[one, two, three], &[]);

    let report = Migrator::new(&before)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    // 0002 arrives from a branch after 0003 was applied: refused, for a dry run too.
    for dry_run in [true, false] {
        let report = Migrator::new(&merged)
            .dry_run(dry_run)
            .run(&mut client, &tenants)
            .await
            .unwrap();
        match failure(&report.tenants[0].outcome) {
            MigrateError::MissingBelowApplied {
                missing, latest, ..
            } => assert_eq!((&missing[..], *latest), (&[2][..], 3)),
            other => panic!("expected MissingBelowApplied, got {other:?}"),
        }
        assert!(report.tenants[0]
            .outcome
            .to_string()
            .contains("has migration 3 applied but not 2"));
    }
    assert!(!table_exists(&client, schema.as_str(), "b").await);
    assert_eq!(applied_versions(&client, schema.as_str()).await, [1, 3]);

    // The way out the message names: roll back below the gap, then migrate.
    let report = Migrator::new(&merged)
        .to(1)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(
        matches!(&report.tenants[0].outcome, Outcome::RolledBack { versions, .. } if versions == &[3]),
        "{report}"
    );
    let report = Migrator::new(&merged)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(
        matches!(&report.tenants[0].outcome, Outcome::Applied(v) if v == &[2, 3]),
        "{report}"
    );

    // Going below 0002, which has no down section, is refused with nothing rolled back.
    let report = Migrator::new(&merged)
        .to(1)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    match failure(&report.tenants[0].outcome) {
        MigrateError::NoDown {
            version, target, ..
        } => assert_eq!((*version, *target), (2, 1)),
        other => panic!("expected NoDown, got {other:?}"),
    }
    assert_eq!(applied_versions(&client, schema.as_str()).await, [1, 2, 3]);
    assert!(table_exists(&client, schema.as_str(), "c").await);
    schemas.cleanup().await;
}

#[tokio::test]
async fn stamp_adopts_a_hand_built_schema_and_history_shows_it() {
    let schemas = TestSchemas::new("versions_stamp").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 1).await;
    let schema = tenants[0].schema();
    // Built by hand as migrations 0001 and 0002 would build it.
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE TABLE {schema}.customers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);
             CREATE TABLE {schema}.invoices (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 customer_id bigint NOT NULL REFERENCES {schema}.customers (id), amount_cents bigint NOT NULL);
             CREATE INDEX invoices_customer_idx ON {schema}.invoices (customer_id);"
        ))
        .await
        .unwrap();
    let migrator = Migrator::new(&APP);
    let report = migrator.stamp(&mut client, &tenants, 2).await.unwrap();
    match &report.tenants[0].outcome {
        Outcome::Stamped { recorded, removed } => {
            assert_eq!((&recorded[..], removed.len()), (&[1, 2][..], 0))
        }
        other => panic!("expected Stamped, got {other:?}"),
    }
    assert_eq!(applied_versions(&client, schema.as_str()).await, [1, 2]);
    let history = migrator.history(&mut client, &tenants).await.unwrap();
    assert_eq!(history[0].current(), Some(2));
    assert_eq!(history[0].pending, [3]);
    assert_eq!(
        history[0].applied[0].checksum,
        APP.get(1).unwrap().checksum()
    );

    // The rest migrates as usual: only 0003 runs (0001 would fail on the existing table).
    let report = migrator.run(&mut client, &tenants).await.unwrap();
    assert!(
        matches!(&report.tenants[0].outcome, Outcome::Applied(v) if v == &[3]),
        "{report}"
    );
    let history = migrator.history(&mut client, &tenants).await.unwrap();
    assert_eq!(history[0].current(), Some(3));
    assert!(history[0].pending.is_empty());
    assert!(history[0].error.is_none());

    // A schema that does not exist is the error of its own line.
    let ghost = Allowlist::new()
        .insert("ghost", &schemas.name("ghost"))
        .unwrap();
    let history = migrator.history(&mut client, &[ghost]).await.unwrap();
    assert!(history[0].error.is_some());
    schemas.cleanup().await;
}

#[tokio::test]
async fn shared_migrations_run_once_not_per_tenant() {
    let schemas = TestSchemas::new("versions_shared").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 3).await;
    let shared = schemas.name("shared");
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA \"{shared}\""))
        .await
        .unwrap();
    let registry = Registry::new(&schemas.name("registry")).unwrap();
    Provisioner::new(ModelSet::new())
        .unwrap()
        .with_registry(registry.clone())
        .install(&client)
        .await
        .unwrap();
    let migrations = migrations_dir(
        "shared",
        &[
            ("0001_plans.sql", "CREATE TABLE {shared}.plans (code text PRIMARY KEY);\n"),
            (
                "0002_subscriptions.sql",
                "CREATE TABLE {tenant}.subscriptions (plan text REFERENCES {shared}.plans (code));\n",
            ),
        ],
        &["shared"],
    );
    assert!(migrations.get(1).unwrap().is_shared());
    assert!(!migrations.get(2).unwrap().is_shared());
    let migrator = Migrator::new(&migrations)
        .with_schema_map(SchemaMap::new().with("shared", &shared).unwrap());

    let outcome = migrator.run_shared(&mut client, &registry).await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Applied(v) if v == &[1]),
        "{outcome}"
    );
    assert!(table_exists(&client, &shared, "plans").await);
    let outcome = migrator.run_shared(&mut client, &registry).await.unwrap();
    assert!(matches!(outcome, Outcome::UpToDate), "{outcome}");
    assert_eq!(
        applied_versions(&client, registry.schema().as_str()).await,
        [1]
    );

    let report = migrator.run(&mut client, &tenants).await.unwrap();
    for t in &report.tenants {
        assert!(
            matches!(&t.outcome, Outcome::Applied(v) if v == &[2]),
            "{report}"
        );
        assert_eq!(
            applied_versions(&client, t.tenant.schema().as_str()).await,
            [2]
        );
    }
    schemas.cleanup().await;
}

/// How many times the tenant's version table was scanned, by the server's statistics
/// (flushed by a backend when it ends: the history's connections are opened for it).
async fn version_table_scans(client: &Client, schema: &str) -> i64 {
    client
        .as_tokio_postgres()
        .query_one(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = '_tenant_migrations'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0)
}

/// [`version_table_scans`] once it stops changing (statistics arrive shortly after a
/// backend ends).
async fn settled_scans(client: &Client, schema: &str) -> i64 {
    let mut last = version_table_scans(client, schema).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = version_table_scans(client, schema).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn history_reads_each_version_table_once() {
    let schemas = TestSchemas::new("history_reads_once").await;
    let mut client = connect().await;
    let tenants = tenants(&schemas, &client, 1).await;
    let migrator = Migrator::new(&APP);
    assert!(migrator
        .run(&mut client, &tenants)
        .await
        .unwrap()
        .is_success());
    let schema = tenants[0].schema().as_str().to_owned();
    // The run's own reads are counted once its connection ends.
    drop(client);
    let client = connect().await;
    let before = settled_scans(&client, &schema).await;
    let url = database_url().await;
    let history = migrator
        .history(
            tenant_runtime::lifecycle::Connections::url(&url, 1),
            &tenants,
        )
        .await
        .unwrap();
    assert_eq!(history[0].current(), Some(3));
    assert_eq!(history[0].applied.len(), 3);
    let mut after = settled_scans(&client, &schema).await;
    for _ in 0..20 {
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = settled_scans(&client, &schema).await;
    }
    assert_eq!(
        after - before,
        1,
        "scans of the version table by one history"
    );
    schemas.cleanup().await;
}
