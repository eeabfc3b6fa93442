//! End-to-end tests of an application's own `tenant` binary (`src/bin/app_tenant.rs`: the
//! CLI built with the application's models, as the README's migration workflow says), run as
//! a child process against PostgreSQL: `migrate generate` writes the migration that the
//! models need, `migrate` applies it, and `check` (against the models) goes from exit 1 to 0.
//!
//! The stock binary's side (no models: `migrate generate` exits 2) is tested in
//! `tenant-cli/tests/generate.rs`.

use std::path::{Path, PathBuf};

use tenant_tests::{database_url, fresh_copy, Cli, Run, TestSchemas};

/// Migrations that build the release before the binary's models (`drift_models.rs`).
const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/drift");

/// Runs the application's `tenant <args>` without a terminal; `env`: DATABASE_URL,
/// TENANT_REGISTRY, TENANT_MIGRATIONS (each unset when `None`).
fn app_tenant(
    url: Option<&str>,
    registry: Option<&str>,
    migrations: Option<&Path>,
    args: &[&str],
) -> Run {
    let mut cli = Cli::new(env!("CARGO_BIN_EXE_app_tenant"));
    if let Some(url) = url {
        cli = cli.env("DATABASE_URL", url);
    }
    if let Some(registry) = registry {
        cli = cli.env("TENANT_REGISTRY", registry);
    }
    if let Some(migrations) = migrations {
        cli = cli.env("TENANT_MIGRATIONS", migrations);
    }
    cli.run(args)
}

/// A copy of the base migrations in a directory of its own.
fn copy_of_base(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-generate-{name}-{}", std::process::id()));
    fresh_copy(Path::new(BASE), &dir);
    dir
}

/// The file names in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn generate_writes_the_migration_that_migrate_applies_and_check_then_passes() {
    let schemas = TestSchemas::new("cli_generate").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let dir = copy_of_base("workflow");
    let tenant = |args: &[&str]| app_tenant(Some(&url), Some(&registry), Some(&dir), args);

    // Two tenants built by the migrations of the release before.
    for key in ["acme", "globex"] {
        let run = tenant(&["tenants", "create", key, &schemas.name(key)]);
        assert_eq!(run.code, 0, "{run:?}");
    }

    // The binary checks against its models: the schemas lack what the models changed.
    let run = tenant(&["check", "--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["against"], "models");
    assert_eq!(json["summary"]["drifted"], 2, "{json}");
    let kinds: Vec<&str> = json["tenants"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["renamed_column", "missing_table"], "{json}");
    let run = tenant(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("2 difference(s) from the models")
            && run
                .stdout
                .contains("2 tenant(s) checked against the models (migrations up to 2)"),
        "{run:?}"
    );

    // Generate: the file, the differences it closes, the choice, loudly.
    let run = tenant(&["migrate", "generate", "memo_and_payments"]);
    assert_eq!(run.code, 0, "{run:?}");
    let file = dir.join("0003_memo_and_payments.sql");
    assert!(
        run.stdout.contains(&format!(
            "wrote {} (version 3): it closes 2 difference(s)",
            file.display()
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(r#"  table "payments" is missing"#),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "warning: CHOICE 1 of 1, to decide by hand before applying (the line `-- CHOICE:` in {}): column \"invoices\".\"note\" is gone from the model and \"memo\" is new",
            file.display()
        )),
        "{run:?}"
    );
    assert!(run.stdout.contains("and decide its 1 CHOICE(S)"), "{run:?}");
    let sql = std::fs::read_to_string(&file).unwrap();
    assert!(sql.contains(r#"RENAME COLUMN "note" TO "memo""#), "{sql}");
    assert!(
        sql.contains("-- CHOICE:") && sql.contains("ADD COLUMN"),
        "{sql}"
    );
    assert!(
        sql.contains(r#"CREATE TABLE IF NOT EXISTS {tenant}."payments""#),
        "{sql}"
    );

    // A second run sees the file as a migration: nothing to do, nothing written or
    // overwritten.
    let before = files(&dir);
    let run = tenant(&["migrate", "generate", "memo_and_payments"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!(
            "no changes: the migrations in {} build the models; nothing was written",
            dir.display()
        )),
        "{run:?}"
    );
    assert_eq!(files(&dir), before);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), sql);

    // A row written by the release before, to see what the migration does with its note.
    let client = tenant_tests::connect_to(&url).await;
    let acme = schemas.name("acme");
    client
        .batch_execute(&format!(
            "INSERT INTO \"{acme}\".customers (email, name) VALUES ('a@example.com', 'A'); \
             INSERT INTO \"{acme}\".invoices (customer_id, amount_cents, note) \
             SELECT id, 100, 'kept' FROM \"{acme}\".customers"
        ))
        .await
        .unwrap();

    // Apply, then the check is clean.
    let run = tenant(&["migrate", "--all"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 migrated"), "{run:?}");
    let run = tenant(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["against"], "models");
    assert_eq!(json["migrations"]["latest_version"], 3);
    assert_eq!(json["summary"]["clean"], 2, "{json}");
    for t in json["tenants"].as_array().unwrap() {
        assert_eq!(t["state"], "clean", "{t}");
        assert_eq!(t["version"], 3, "{t}");
    }
    // The rename, not a drop and an add, was applied: the note is kept as the memo.
    let memo: Option<String> = client
        .query_one(&format!("SELECT memo FROM \"{acme}\".invoices"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(memo.as_deref(), Some("kept"));
    schemas.cleanup().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn generate_creates_a_missing_directory_and_without_one_tenants_create_builds_the_models() {
    let url = database_url().await;
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-generate-first-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    let dir = parent.join("migrations");
    let run = app_tenant(
        Some(&url),
        None,
        Some(&dir),
        &["migrate", "generate", "init"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "created the migrations directory {} (it did not exist)",
            dir.display()
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "wrote {} (version 1)",
            dir.join("0001_init.sql").display()
        )),
        "{run:?}"
    );
    assert_eq!(files(&dir), ["0001_init.sql"]);
    let sql = std::fs::read_to_string(dir.join("0001_init.sql")).unwrap();
    assert!(sql.contains("CREATE TABLE"), "{sql}");
    // That one file builds the models.
    let run = app_tenant(
        Some(&url),
        None,
        Some(&dir),
        &["migrate", "generate", "again"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("no changes"), "{run:?}");
    assert_eq!(files(&dir), ["0001_init.sql"]);

    // Without a migrations directory, the application's `tenants create` builds the tables
    // from the models: what that first migration builds, difference for difference.
    let schemas = TestSchemas::new("cli_generate_models").await;
    let registry = schemas.name("registry");
    let schema = schemas.name("acme");
    let run = Cli::new(env!("CARGO_BIN_EXE_app_tenant"))
        .current_dir(&dir) // no ./migrations here
        .env("DATABASE_URL", &url)
        .env("TENANT_REGISTRY", &registry)
        .run(&["tenants", "create", "acme", &schema]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "acme ({schema}): tables built from the models (no migrations directory)"
        )),
        "{run:?}"
    );
    let run = app_tenant(
        Some(&url),
        Some(&registry),
        Some(&dir),
        &["check", "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let acme = &json["tenants"][0];
    assert_eq!(acme["state"], "clean", "{run:?}");
    assert_eq!(acme["differences"], serde_json::json!([]), "{run:?}");
    // Built, not migrated: the version table has no record of 0001 (adopt with `stamp`).
    assert_eq!(acme["pending"], serde_json::json!([1]), "{run:?}");
    assert_eq!(run.code, 1, "{run:?}");
    schemas.cleanup().await;
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn generate_refuses_an_invalid_name_with_2_before_connecting() {
    let dir = copy_of_base("invalid-name");
    for name in ["Add-Payments", "add payments", ""] {
        let run = app_tenant(None, None, Some(&dir), &["migrate", "generate", name]);
        assert_eq!(run.code, 2, "{name:?}: {run:?}");
        assert!(
            run.stderr
                .contains(&format!("invalid value '{name}' for '<NAME>'"))
                && run.stderr.contains("[a-z0-9_]"),
            "{name:?}: {run:?}"
        );
    }
    assert_eq!(
        files(&dir),
        ["0001_create_customers.sql", "0002_create_invoices.sql"]
    );
    // A valid name gets as far as the database URL.
    let run = app_tenant(None, None, Some(&dir), &["migrate", "generate", "add_x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no database URL"), "{run:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_of_a_binary_with_models_says_check_compares_with_them() {
    let run = app_tenant(None, None, None, &["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("Check every active tenant's schema against this binary's models"),
        "{run:?}"
    );
    let run = app_tenant(None, None, None, &["migrate", "generate", "--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("<next version>_<NAME>.sql"), "{run:?}");
}
