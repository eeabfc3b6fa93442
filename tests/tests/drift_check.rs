//! The drift check on a real PostgreSQL: `Migrator::check` reports, per tenant, the applied
//! version, the migrations it lacks and every difference from the models (or from what the
//! migrations build); `Migrator::diff_models` and tenant-testing's
//! `assert_migrations_build` catch a forgotten migration; tenants provisioned from the
//! migrations (or from the models) are identical to migrated ones.

use tenant_runtime::error::{LifecycleError, MigrateError};
use tenant_runtime::lifecycle::{Connections, DriftState, Expected, Outcome, TenantDrift};
use tenant_runtime::model::{Difference, SchemaSnapshot};
use tenant_runtime::{
    embed_migrations, Allowlist, Client, Error, Migrations, Migrator, Model, ModelSet, Provisioner,
    Registry, Tenant,
};
use tenant_tests::{database_url, TestSchemas};

/// Builds exactly `models()`: customers, then invoices.
static DRIFT: Migrations = embed_migrations!("migrations/drift");

#[path = "support/drift_models.rs"]
mod drift_models;
use drift_models::{Customer, Invoice};

/// The same invoices with one more column no migration adds: a forgotten migration.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceWithDueDate {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    note: Option<String>,
    due_days: Option<i32>,
}

fn models() -> ModelSet {
    ModelSet::new().with::<Customer>().with::<Invoice>()
}

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

/// `keys` as tenants in schemas under the test prefix, created and migrated.
async fn migrated(schemas: &TestSchemas, client: &mut Client, keys: &[&str]) -> Vec<Tenant> {
    let tenants = schemas.allowlist(keys).tenants();
    for t in &tenants {
        client
            .as_tokio_postgres()
            .batch_execute(&format!("CREATE SCHEMA \"{}\"", t.schema().as_str()))
            .await
            .unwrap();
    }
    let report = Migrator::new(&DRIFT)
        .run(&mut *client, &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    tenants
}

async fn sql(client: &Client, sql: &str) {
    client.as_tokio_postgres().batch_execute(sql).await.unwrap();
}

fn line<'r>(lines: &'r [TenantDrift], key: &str) -> &'r TenantDrift {
    lines.iter().find(|t| t.tenant.key() == key).unwrap()
}

fn differences(t: &TenantDrift) -> &[Difference] {
    match &t.state {
        DriftState::Drifted(d) => d,
        other => panic!("{}: expected differences, got {other}", t.tenant.key()),
    }
}

#[tokio::test]
async fn check_reports_each_tenants_version_pending_migrations_and_differences() {
    let schemas = TestSchemas::new("drift_check_report").await;
    let mut client = connect().await;
    let tenants = migrated(&schemas, &mut client, &["clean", "altered", "behind"]).await;
    let s = |k: &str| schemas.name(k);
    // altered: a hand-made change; behind: migration 2 never applied.
    sql(
        &client,
        &format!("ALTER TABLE \"{}\".invoices DROP COLUMN note", s("altered")),
    )
    .await;
    sql(
        &client,
        &format!(
            "DROP TABLE \"{0}\".invoices; DELETE FROM \"{0}\"._tenant_migrations WHERE version = 2",
            s("behind")
        ),
    )
    .await;
    // A registered tenant whose schema was dropped outside tenant.
    let mut all = tenants.clone();
    all.push(schemas.allowlist(&["gone"]).resolve("gone").unwrap());

    let url = database_url().await;
    for expected in [Expected::Models(&models()), Expected::Migrations] {
        let report = Migrator::new(&DRIFT)
            .check(Connections::url(&url, 2), &all, expected)
            .await
            .unwrap();
        assert_eq!(report.tenants.len(), 4);
        assert_eq!(report.latest_version, Some(2));
        let keys: Vec<&str> = report.tenants.iter().map(|t| t.tenant.key()).collect();
        let given: Vec<&str> = all.iter().map(|t| t.key()).collect();
        assert_eq!(keys, given, "in the order given");

        let clean = line(&report.tenants, "clean");
        assert!(clean.is_clean(), "{}", clean.state);
        assert_eq!(
            (clean.version, clean.pending.as_slice()),
            (Some(2), &[][..])
        );

        let altered = line(&report.tenants, "altered");
        assert_eq!(altered.version, Some(2));
        assert_eq!(
            differences(altered),
            [Difference::MissingColumn {
                table: "invoices".into(),
                column: "note".into()
            }]
        );

        let behind = line(&report.tenants, "behind");
        assert_eq!(
            (behind.version, behind.pending.as_slice()),
            (Some(1), &[2][..])
        );
        assert_eq!(
            differences(behind),
            [Difference::MissingTable {
                table: "invoices".into()
            }]
        );

        let gone = line(&report.tenants, "gone");
        assert!(
            matches!(
                &gone.state,
                DriftState::Failed(Error::Lifecycle(LifecycleError::SchemaNotFound { .. }))
            ),
            "{}",
            gone.state
        );
        assert!(!report.is_clean());
        assert_eq!(report.drifted().count(), 3);
        let text = report.to_string();
        assert!(text.contains("altered ("), "{text}");
        assert!(
            text.contains(r#"table "invoices" has no column "note""#),
            "{text}"
        );
        assert!(text.contains("lacks 2"), "{text}");
        assert!(text.contains("4 tenants checked"), "{text}");
        assert!(
            !text.contains("clean ("),
            "clean tenants get no line: {text}"
        );
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn check_of_many_tenants_spans_batches_and_connections() {
    // More than one 500-schema batch when DRIFT_TENANTS is raised; 40 by default (fast).
    let n: usize = std::env::var("DRIFT_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let schemas = TestSchemas::new("drift_check_many").await;
    let mut client = connect().await;
    let keys: Vec<String> = (0..n).map(|i| format!("t{i:05}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let tenants = migrated(&schemas, &mut client, &refs).await;
    let odd = tenants[n / 2].schema();
    sql(
        &client,
        &format!("CREATE INDEX extra_idx ON {odd}.customers (name)"),
    )
    .await;
    let url = database_url().await;
    let report = Migrator::new(&DRIFT)
        .check(
            Connections::url(&url, 4),
            &tenants,
            Expected::Models(&models()),
        )
        .await
        .unwrap();
    assert_eq!(report.tenants.len(), n);
    let drifted: Vec<&str> = report.drifted().map(|t| t.tenant.key()).collect();
    assert_eq!(drifted, [keys[n / 2].as_str()]);
    assert!(matches!(
        differences(&report.tenants[n / 2]),
        [Difference::ExtraIndex { name, .. }] if name == "extra_idx"
    ));
    schemas.cleanup().await;
}

#[tokio::test]
async fn diff_models_names_the_forgotten_migration() {
    let mut client = connect().await;
    let migrator = Migrator::new(&DRIFT);
    assert_eq!(
        migrator.diff_models(&mut client, &models()).await.unwrap(),
        []
    );
    let newer = ModelSet::new()
        .with::<Customer>()
        .with::<InvoiceWithDueDate>();
    assert_eq!(
        migrator.diff_models(&mut client, &newer).await.unwrap(),
        [Difference::MissingColumn {
            table: "invoices".into(),
            column: "due_days".into()
        }]
    );
    // The scratch schema lived in a rolled-back transaction: nothing is left.
    let left: i64 = client
        .as_tokio_postgres()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_tenant\\_scratch%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn tenant_testing_asserts_that_the_migrations_build_the_models() {
    tenant_testing::assert_migrations_build(&Migrator::new(&DRIFT), &models()).await;
    let newer = ModelSet::new()
        .with::<Customer>()
        .with::<InvoiceWithDueDate>();
    let failure = tokio::spawn(async move {
        tenant_testing::assert_migrations_build(&Migrator::new(&DRIFT), &newer).await;
    })
    .await
    .expect_err("a forgotten migration fails the assertion");
    let message = failure.into_panic();
    let message = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or("");
    assert!(
        message.contains(r#"table "invoices" has no column "due_days""#),
        "{message}"
    );
    assert!(message.contains("Migrator::generate"), "{message}");
}

#[tokio::test]
async fn check_against_migrations_that_fail_on_an_empty_schema_is_an_error() {
    let dir = std::env::temp_dir().join(format!("tenant_drift_bad_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_bad.sql"),
        "ALTER TABLE {tenant}.nowhere ADD COLUMN x int;",
    )
    .unwrap();
    let bad = Migrations::from_dir(&dir, &[]).unwrap();
    let mut client = connect().await;
    let acme = Allowlist::from_pairs([("acme", "drift_nowhere_acme")])
        .unwrap()
        .tenants();
    let err = Migrator::new(&bad)
        .check(&mut client, &acme, Expected::Migrations)
        .await
        .unwrap_err();
    match &err {
        Error::Migrate(m) => assert!(
            matches!(**m, MigrateError::ScratchFailed { version: 1, .. }),
            "{err}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("fix that migration"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_tenant_provisioned_from_the_migrations_is_identical_to_a_migrated_one() {
    let schemas = TestSchemas::new("drift_provision").await;
    let mut client = connect().await;
    let registry = Registry::new(&schemas.name("registry")).unwrap();
    let allowlist = Allowlist::new();

    // old: provisioned empty (as before), then migrated.
    let empty = Provisioner::new(ModelSet::new())
        .unwrap()
        .with_registry(registry.clone());
    empty.install(&client).await.unwrap();
    let old = empty
        .provision(&mut client, &allowlist, "old", &schemas.name("old"))
        .await
        .unwrap();
    let report = Migrator::new(&DRIFT)
        .run(&mut client, std::slice::from_ref(&old))
        .await
        .unwrap();
    assert!(
        matches!(report.tenants[0].outcome, Outcome::Applied(_)),
        "{report}"
    );

    // new: built by the migrations inside the provisioning transaction.
    let from_migrations = Provisioner::new(models())
        .unwrap()
        .with_registry(registry.clone())
        .with_migrations(&DRIFT);
    let new = from_migrations
        .provision(&mut client, &allowlist, "new", &schemas.name("new"))
        .await
        .unwrap();
    // Provisioning it again changes nothing (its migrations are recorded).
    from_migrations
        .provision(&mut client, &allowlist, "new", &schemas.name("new"))
        .await
        .unwrap();
    // models: no migrations, so built from the models' DDL.
    let from_models = Provisioner::new(models())
        .unwrap()
        .with_registry(registry.clone());
    let modeled = from_models
        .provision(&mut client, &allowlist, "modeled", &schemas.name("modeled"))
        .await
        .unwrap();

    let migrator = Migrator::new(&DRIFT);
    let tenants = [old.clone(), new.clone(), modeled.clone()];
    let report = migrator
        .check(&mut client, &tenants, Expected::Models(&models()))
        .await
        .unwrap();
    for t in &report.tenants[..2] {
        assert!(
            t.is_clean(),
            "{}: {} (pending {:?})",
            t.tenant.key(),
            t.state,
            t.pending
        );
        assert_eq!(t.version, Some(2));
    }
    // The models' tenant has the same tables, and no migration recorded.
    let modeled_line = &report.tenants[2];
    assert!(
        matches!(modeled_line.state, DriftState::Clean),
        "{}",
        modeled_line.state
    );
    assert_eq!(
        (modeled_line.version, modeled_line.pending.as_slice()),
        (None, &[1, 2][..])
    );

    // The same catalog, object for object, the version table included.
    let snapshot = SchemaSnapshot::read(&client, &[old.schema(), new.schema()])
        .await
        .unwrap();
    let mut new_shape = snapshot.get(new.schema()).unwrap().clone();
    let old_shape = snapshot.get(old.schema()).unwrap();
    assert_eq!(
        new_shape.tables.len(),
        3,
        "customers, invoices, the version table"
    );
    new_shape.schema = old_shape.schema.clone();
    for table in new_shape.tables.values_mut() {
        for c in table.constraints.values_mut() {
            if let Some(r) = c.references.as_mut() {
                r.schema = old_shape.schema.clone();
            }
        }
    }
    assert_eq!(new_shape.diff(old_shape), []);
    assert_eq!(old_shape.diff(&new_shape), []);

    // And the migrator has nothing to do for the new tenant.
    let report = migrator.run(&mut client, &[new]).await.unwrap();
    assert!(
        matches!(report.tenants[0].outcome, Outcome::UpToDate),
        "{report}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn check_reports_versions_applied_by_a_newer_build_as_drift() {
    let schemas = TestSchemas::new("drift_check_newer").await;
    let mut client = connect().await;
    let tenants = migrated(&schemas, &mut client, &["current", "newer"]).await;
    // A newer build migrated `newer` further: versions 7 and 8, which this build lacks.
    sql(
        &client,
        &format!(
            "INSERT INTO \"{}\"._tenant_migrations (version, name, checksum) \
             VALUES (7, 'from_the_future', 'x'), (8, 'further', 'y')",
            schemas.name("newer")
        ),
    )
    .await;
    for expected in [Expected::Models(&models()), Expected::Migrations] {
        let report = Migrator::new(&DRIFT)
            .check(&mut client, &tenants, expected)
            .await
            .unwrap();
        let current = line(&report.tenants, "current");
        assert!(current.is_clean(), "{report}");
        assert_eq!(current.unknown_applied, [0u64; 0]);
        let newer = line(&report.tenants, "newer");
        assert_eq!(newer.unknown_applied, [7, 8], "{report}");
        assert_eq!(newer.version, Some(8));
        assert!(newer.pending.is_empty());
        // Its schema is what this build expects, yet it is not clean: drift.
        assert!(matches!(newer.state, DriftState::Clean), "{}", newer.state);
        assert!(!newer.is_clean());
        assert!(!report.is_clean());
        assert_eq!(report.drifted().count(), 1);
        let text = report.to_string();
        assert!(
            text.contains(&format!(
                "newer ({}): version 8, applied by a newer build: 7, 8: clean",
                schemas.name("newer")
            )),
            "{text}"
        );
        assert!(text.contains("1 ahead"), "{text}");
    }
    schemas.cleanup().await;
}
