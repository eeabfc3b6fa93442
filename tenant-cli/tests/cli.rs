//! End-to-end tests of the `tenant` binary against PostgreSQL: output and exit codes.
//!
//! Every test uses a registry schema and tenant schemas under its own `TestSchemas` prefix.

use std::process::{Command, Output};

use tenant_tests::{database_url, TestSchemas};

/// The migrations the tests apply (shared with the library's integration tests).
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/app");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `tenant <args>` with the test database and `registry`, without a terminal.
async fn tenant(url: &str, registry: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry)
        .env_remove("TENANT_MIGRATIONS")
        .output()
        .expect("the tenant binary runs");
    finish(output)
}

fn without_database(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("the tenant binary runs");
    finish(output)
}

async fn sql(url: &str, statements: &str) {
    tenant_tests::connect_to(url)
        .await
        .batch_execute(statements)
        .await
        .unwrap();
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    let run = without_database(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    for needle in [
        "tenants",
        "migrate",
        "status",
        "Exit codes:",
        "3  the database could not be reached",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {run:?}");
    }
    let run = without_database(&["tenants", "--help"]);
    for needle in ["list", "create", "drop", "restore", "purge"] {
        assert!(run.stdout.contains(needle), "{needle}: {run:?}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &[][..],
        &["migrate", "--jobs", "2"][..], // neither --all nor --tenant
        &["migrate", "--all", "--jobs", "0"][..],
        &["tenants", "purge", "--older-than", "3w"][..],
        &["frobnicate"][..],
    ] {
        let run = without_database(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let run = without_database(&["tenants", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("no database URL"), "{run:?}");
}

#[tokio::test]
async fn configuration_errors_exit_with_2_and_an_unreachable_database_with_3() {
    let schemas = TestSchemas::new("cli_config").await;
    let url = database_url().await;
    let registry = schemas.name("registry");

    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("does not exist; install it first"),
        "{run:?}"
    );

    let run = tenant(&url, "Bad Registry", &["tenants", "list"]).await;
    assert_eq!(run.code, 2, "{run:?}");

    for schema in ["public", "pg_catalog", "Tenant_Acme"] {
        let run = tenant(&url, &registry, &["tenants", "create", "acme", schema]).await;
        assert_eq!(run.code, 2, "{schema}: {run:?}");
    }

    let bad_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/ui/migrations/fixtures/several_errors"
    );
    let run = tenant(
        &url,
        &registry,
        &["migrate", "--all", "--migrations", bad_dir],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("0001_create_notes.sql:1:14: unknown placeholder {tenat}"),
        "{run:?}"
    );
    assert!(run.stderr.contains("notes.txt"), "{run:?}");

    let run = tenant(
        "postgres://postgres@127.0.0.1:1/postgres",
        &registry,
        &["tenants", "list"],
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("cannot connect to the database"),
        "{run:?}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn tenants_create_list_drop_restore_and_purge() {
    let schemas = TestSchemas::new("cli_tenants").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let (acme, globex) = (schemas.name("acme"), schemas.name("globex"));

    let run = tenant(&url, &registry, &["tenants", "init"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("no tenants"), "{run:?}");

    for (key, schema) in [("acme", &acme), ("globex", &globex), ("acme", &acme)] {
        let run = tenant(&url, &registry, &["tenants", "create", key, schema]).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            run.stdout,
            format!("provisioned tenant {key} in schema {schema}\n")
        );
    }
    // The key is taken by another schema: refused.
    let run = tenant(&url, &registry, &["tenants", "create", "acme", &globex]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is registered with schema"), "{run:?}");

    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("KEY"), "{run:?}");
    assert!(
        lines[1].starts_with("acme") && lines[1].contains(&acme) && lines[1].contains("active")
    );
    assert!(lines[2].starts_with("globex"));
    assert_eq!(lines[3], "2 tenant(s): 2 active, 0 retired");

    let run = tenant(&url, &registry, &["tenants", "drop", "acme"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let renamed = format!("{acme}_deleted_");
    assert!(run.stdout.contains(&renamed), "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert!(run.stdout.contains("retired"), "{run:?}");
    assert!(run.stdout.contains("1 active, 1 retired"), "{run:?}");

    for (args, needle) in [
        (&["tenants", "drop", "acme"][..], "is retired"),
        (
            &["tenants", "drop", "nobody"][..],
            "unknown tenant \"nobody\"",
        ),
        (&["tenants", "restore", "globex"][..], "is not retired"),
    ] {
        let run = tenant(&url, &registry, args).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }

    let run = tenant(&url, &registry, &["tenants", "restore", "acme"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("restored tenant acme in schema {acme}\n")
    );

    let run = tenant(&url, &registry, &["tenants", "drop", "globex"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(
        &url,
        &registry,
        &["tenants", "purge", "--older-than", "30d"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "purged 0 tenant(s) retired more than 30d ago\n");
    let run = tenant(&url, &registry, &["tenants", "purge", "--older-than", "0"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!(
            "purged tenant globex: dropped schema {globex}_deleted_"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .ends_with("purged 1 tenant(s) retired more than 0s ago\n"),
        "{run:?}"
    );

    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert!(
        run.stdout.contains("1 tenant(s): 1 active, 0 retired"),
        "{run:?}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn migrate_reports_each_failing_tenant_and_a_rerun_finishes() {
    let schemas = TestSchemas::new("cli_migrate").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let keys = ["t0", "t1", "t2", "t3", "t4"];
    for key in keys {
        let run = tenant(
            &url,
            &registry,
            &["tenants", "create", key, &schemas.name(key)],
        )
        .await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    // Injected failure: t2 already has a table that migration 0003 creates.
    let t2 = schemas.name("t2");
    sql(&url, &format!("CREATE TABLE \"{t2}\".audit_log (id int)")).await;

    let run = tenant(
        &url,
        &registry,
        &["migrate", "--all", "--dry-run", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("5 pending"), "{run:?}");

    let run = tenant(
        &url,
        &registry,
        &[
            "migrate",
            "--all",
            "--jobs",
            "3",
            "--migrations",
            MIGRATIONS,
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "t2 ({t2}): FAILED: migration 3 (add_paid_and_audit) failed"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("42P07"),
        "the server's error code is reported: {run:?}"
    );
    assert!(
        run.stdout
            .contains(": 4 migrated, 0 up to date, 0 pending, 1 failed, 0 not run"),
        "{run:?}"
    );
    // Not a terminal: no progress bar on stderr.
    assert_eq!(run.stderr, "", "{run:?}");

    let run = tenant(&url, &registry, &["status", "--migrations", MIGRATIONS]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let t2_line = run.stdout.lines().find(|l| l.starts_with("t2 ")).unwrap();
    assert!(
        t2_line.ends_with("-        3"),
        "t2 is at no version with 3 pending: {run:?}"
    );
    assert!(
        run.stdout
            .contains("latest migration 3: 4 up to date, 1 behind, 0 failed"),
        "{run:?}"
    );

    sql(&url, &format!("DROP TABLE \"{t2}\".audit_log")).await;
    let run = tenant(
        &url,
        &registry,
        &["migrate", "--tenant", "t2", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("t2 ({t2}): applied 1, 2, 3")),
        "{run:?}"
    );
    let run = tenant(
        &url,
        &registry,
        &[
            "migrate",
            "--all",
            "--jobs",
            "8",
            "--migrations",
            MIGRATIONS,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(": 0 migrated, 5 up to date"), "{run:?}");

    let run = tenant(
        &url,
        &registry,
        &["migrate", "--tenant", "nobody", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("unknown tenant \"nobody\""), "{run:?}");

    // A tenant created with --migrate is migrated at once.
    let t5 = schemas.name("t5");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "create",
            "t5",
            &t5,
            "--migrate",
            "--migrations",
            MIGRATIONS,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("t5 ({t5}): applied 1, 2, 3")),
        "{run:?}"
    );
    schemas.cleanup().await;
}
