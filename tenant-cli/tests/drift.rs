//! End-to-end tests of `tenant check` (and of `tenants create` building tenants as the
//! migrations say) against PostgreSQL: output, JSON and exit codes.

use tenant_tests::{database_url, Cli, Run, TestSchemas};

/// Migrations that build customers and invoices (shared with the library's drift tests).
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/drift");

/// Runs `tenant <args>` with the test database, `registry` and the drift migrations.
fn tenant(url: &str, registry: &str, args: &[&str]) -> Run {
    Cli::new(env!("CARGO_BIN_EXE_tenant"))
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry)
        .env("TENANT_MIGRATIONS", MIGRATIONS)
        .run(args)
}

async fn sql(url: &str, statements: &str) {
    tenant_tests::connect_to(url)
        .await
        .batch_execute(statements)
        .await
        .unwrap();
}

/// `tenants create` of acme and globex, each built as the migrations say, in its
/// provisioning transaction.
fn create_acme_and_globex(schemas: &TestSchemas, url: &str, registry: &str) {
    for key in ["acme", "globex"] {
        let schema = schemas.name(key);
        let run = tenant(url, registry, &["tenants", "create", key, &schema]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains(&format!(
                "{key} ({schema}): applied 1, 2 (in the provisioning transaction)"
            )),
            "{run:?}"
        );
    }
}

#[tokio::test]
async fn check_prints_json_and_exits_1_on_drift() {
    let schemas = TestSchemas::new("cli_check").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    create_acme_and_globex(&schemas, &url, &registry);

    let run = tenant(&url, &registry, &["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["against"], "migrations");
    assert_eq!(json["migrations"]["latest_version"], 2);
    assert_eq!(json["summary"]["checked"], 2);
    assert_eq!(json["summary"]["clean"], 2);
    for t in json["tenants"].as_array().unwrap() {
        assert_eq!(t["state"], "clean", "{t}");
        assert_eq!(t["version"], 2, "{t}");
        assert_eq!(t["pending"], serde_json::json!([]), "{t}");
    }

    // A hand-made change in one tenant.
    sql(
        &url,
        &format!(
            "ALTER TABLE \"{}\".invoices DROP COLUMN note; CREATE INDEX stray ON \"{0}\".customers (name)",
            schemas.name("globex")
        ),
    )
    .await;
    let run = tenant(&url, &registry, &["check", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["drifted"], 1);
    assert_eq!(json["summary"]["clean"], 1);
    let globex = json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "globex")
        .unwrap();
    assert_eq!(globex["state"], "drifted");
    let kinds: Vec<&str> = globex["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["extra_index", "missing_column"], "{globex}");
    assert_eq!(globex["differences"][1]["table"], "invoices");
    assert_eq!(
        globex["differences"][1]["message"],
        r#"table "invoices" has no column "note""#
    );

    // Text: only the tenant that differs gets lines; one tenant can be checked alone.
    let run = tenant(&url, &registry, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "globex ({}): version 2: 2 difference(s)",
            schemas.name("globex")
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(r#"  table "invoices" has no column "note""#),
        "{run:?}"
    );
    assert!(!run.stdout.contains("acme ("), "{run:?}");
    assert!(
        run.stdout
            .contains("2 tenant(s) checked against migrations up to 2"),
        "{run:?}"
    );
    let run = tenant(&url, &registry, &["check", "--tenant", "acme"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("1 tenant(s) checked"), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    schemas.cleanup().await;
}

#[tokio::test]
async fn check_reports_versions_applied_by_a_newer_build() {
    let schemas = TestSchemas::new("cli_check_newer").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    create_acme_and_globex(&schemas, &url, &registry);
    // A newer build migrated globex further: versions 7 and 8, which these migrations lack.
    sql(
        &url,
        &format!(
            "INSERT INTO \"{}\"._tenant_migrations (version, name, checksum) \
             VALUES (7, 'from_the_future', 'x'), (8, 'further', 'y')",
            schemas.name("globex")
        ),
    )
    .await;

    let run = tenant(&url, &registry, &["check", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["ahead"], 1, "{json}");
    assert_eq!(json["summary"]["clean"], 1, "{json}");
    for t in json["tenants"].as_array().unwrap() {
        let unknown = if t["key"] == "globex" {
            serde_json::json!([7, 8])
        } else {
            serde_json::json!([])
        };
        assert_eq!(t["unknown_applied"], unknown, "{t}");
    }

    let run = tenant(&url, &registry, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "globex ({}): version 8, applied by a newer build: 7, 8",
            schemas.name("globex")
        )),
        "{run:?}"
    );
    assert!(!run.stdout.contains("acme ("), "{run:?}");
    assert!(run.stdout.contains("1 ahead"), "{run:?}");
    schemas.cleanup().await;
}
