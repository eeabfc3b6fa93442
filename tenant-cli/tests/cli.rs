//! End-to-end tests of the `tenant` binary against PostgreSQL: output and exit codes.
//!
//! Every test uses a registry schema and tenant schemas under its own `TestSchemas` prefix.

use std::process::Command;

use tenant_tests::{database_url, Cli, Run, TestSchemas};

/// The migrations the tests apply (shared with the library's integration tests).
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/app");

/// Runs `tenant <args>` with the test database and `registry`, without a terminal.
async fn tenant(url: &str, registry: &str, args: &[&str]) -> Run {
    cli(url, registry).run(args)
}

/// The stock binary with the test database and `registry`.
fn cli(url: &str, registry: &str) -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_tenant"))
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry)
}

fn without_database(args: &[&str]) -> Run {
    Cli::new(env!("CARGO_BIN_EXE_tenant")).run(args)
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
        run.stderr
            .contains("does not exist; create it with `tenant tenants init`"),
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
        "/../tests/ui/cases/migrations/fixtures/several_errors"
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

/// Runs `tenant <args>` in `dir` (a directory without `migrations/` unless the test makes one).
async fn tenant_in(dir: &std::path::Path, url: &str, registry: &str, args: &[&str]) -> Run {
    cli(url, registry).current_dir(dir).run(args)
}

/// A fresh, empty directory of this test.
fn empty_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn schema_exists(url: &str, schema: &str) -> bool {
    tenant_tests::connect_to(url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

/// Runs `tenant <args>` with DATABASE_URL, TENANT_REGISTRY and TENANT_MIGRATIONS set.
fn with_env(args: &[&str]) -> Run {
    cli("postgres://secret@127.0.0.1:1/db", "registry_from_env")
        .env("TENANT_MIGRATIONS", "dir_from_env")
        .run(args)
}

#[test]
fn the_usage_lines_and_env_hints_are_honest() {
    // Options set from the environment are not shown as if they were required arguments.
    for (args, expected) in [
        (
            &["migrate"][..],
            "Usage: tenant migrate <--all|--tenant <KEY>|--shared>",
        ),
        (&["status", "--bogus"][..], "Usage: tenant status [OPTIONS]"),
        (
            &["tenants", "purge"][..],
            "Usage: tenant tenants purge --older-than <GRACE>",
        ),
        (
            &["tenants", "create", "acme"][..],
            "Usage: tenant tenants create <KEY> <SCHEMA>",
        ),
    ] {
        for run in [with_env(args), without_database(args)] {
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
            let usage = run
                .stderr
                .lines()
                .find(|l| l.starts_with("Usage:"))
                .unwrap();
            assert!(usage.starts_with(expected), "{args:?}: {usage}");
            for option in ["--database-url", "--registry", "--migrations"] {
                assert!(!usage.contains(option), "{args:?}: {usage}");
            }
        }
    }
    for command in [
        &["migrate", "--help"][..],
        &["status", "--help"],
        &["tenants", "list", "--help"],
    ] {
        let run = with_env(command);
        assert_eq!(run.code, 0, "{run:?}");
        let usage = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap();
        assert!(!usage.contains("--database-url"), "{command:?}: {usage}");
        assert!(run.stdout.contains("--database-url <URL>"), "{run:?}");
    }

    // `[env: NAME]` without a dangling `=`, and never the value (it may be a secret).
    for run in [
        with_env(&["status", "--help"]),
        without_database(&["status", "--help"]),
    ] {
        assert_eq!(run.code, 0, "{run:?}");
        for env in ["DATABASE_URL", "TENANT_REGISTRY", "TENANT_MIGRATIONS"] {
            assert!(
                run.stdout.contains(&format!("[env: {env}]")),
                "{env}: {run:?}"
            );
            assert!(!run.stdout.contains(&format!("{env}=")), "{env}: {run:?}");
        }
        for secret in ["secret@", "registry_from_env", "dir_from_env"] {
            assert!(!run.stdout.contains(secret), "{secret}: {run:?}");
        }
    }
    // The variables are still read: the registry and the migrations come from them.
    let run = with_env(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("no migrations directory at dir_from_env"),
        "{run:?}"
    );
    let run = with_env(&["tenants", "list"]);
    assert_eq!(run.code, 3, "the URL from DATABASE_URL is used: {run:?}");
}

#[test]
fn negative_and_ill_formed_grace_periods_are_usage_errors() {
    for args in [
        &["tenants", "purge", "--older-than", "-1d"][..],
        &["tenants", "purge", "--older-than=-1d"][..],
        &["tenants", "purge", "--older-than", "-0"][..],
    ] {
        let run = without_database(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("a grace period cannot be negative"),
            "{args:?}: {run:?}"
        );
        assert!(
            !run.stderr.contains("unexpected argument"),
            "{args:?}: {run:?}"
        );
    }
    for bad in ["3x", "30", "d", "1d 3x"] {
        let run = without_database(&["tenants", "purge", "--older-than", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
        assert!(
            run.stderr.contains("use a duration such as 30d"),
            "{bad}: {run:?}"
        );
    }
    // humantime's forms are accepted (the command then stops at the missing database URL).
    for good in ["30d", "12h", "1h 30m", "1h30m", "1.5d", "2weeks", "0"] {
        let run = without_database(&["tenants", "purge", "--older-than", good]);
        assert!(run.stderr.contains("no database URL"), "{good}: {run:?}");
    }
}

#[tokio::test]
async fn status_with_a_missing_migrations_directory_exits_2() {
    let schemas = TestSchemas::new("cli_status_dir").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let dir = empty_dir("status");
    let run = tenant_in(
        &dir,
        &url,
        &registry,
        &["tenants", "create", "acme", &schemas.name("acme")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");

    // Named, and not there: a usage error, as for `migrate`.
    for args in [
        &["status", "--migrations", "./nope"][..],
        &["migrate", "--all", "--migrations", "./nope"][..],
        &["status", "--format", "json", "--migrations", "./nope"][..],
    ] {
        let run = tenant_in(&dir, &url, &registry, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("no migrations directory at ./nope"),
            "{args:?}: {run:?}"
        );
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
    }
    let run = cli(&url, &registry)
        .current_dir(&dir)
        .env("TENANT_MIGRATIONS", "./nope")
        .run(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("no migrations directory at ./nope"),
        "{run:?}"
    );

    // Not named, and no ./migrations: the tenants without their versions.
    let run = tenant_in(&dir, &url, &registry, &["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "1 active tenant(s); no migrations directory at migrations: versions not shown"
        ),
        "{run:?}"
    );
    // ... and ./migrations when it is there.
    std::fs::create_dir(dir.join("migrations")).unwrap();
    std::fs::copy(
        format!("{MIGRATIONS}/0001_create_customers.sql"),
        dir.join("migrations/0001_create_customers.sql"),
    )
    .unwrap();
    let run = tenant_in(&dir, &url, &registry, &["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("latest migration 1: 0 up to date, 1 behind, 0 failed"),
        "{run:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn purge_dry_run_lists_and_changes_nothing_and_without_a_terminal_purge_does_not_ask() {
    let schemas = TestSchemas::new("cli_purge").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let (acme, globex) = (schemas.name("acme"), schemas.name("globex"));
    for (key, schema) in [("acme", &acme), ("globex", &globex)] {
        let run = tenant(&url, &registry, &["tenants", "create", key, schema]).await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let run = tenant(&url, &registry, &["tenants", "drop", "globex"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let retired = format!("{globex}_deleted_");

    let run = tenant(
        &url,
        &registry,
        &["tenants", "purge", "--older-than", "30d", "--dry-run"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "0 tenant(s) retired more than 30d ago would be purged; dry run, nothing was changed\n"
    );

    let run = tenant(
        &url,
        &registry,
        &["tenants", "purge", "--older-than", "0", "--dry-run"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].starts_with(&format!("would purge tenant globex: drop schema {retired}")),
        "{run:?}"
    );
    assert!(lines[0].ends_with(" UTC)"), "{run:?}");
    assert_eq!(
        lines[1],
        "1 tenant(s) retired more than 0s ago would be purged; dry run, nothing was changed"
    );
    // Nothing changed: the tenant is still retired and its schema is still there.
    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert!(run.stdout.contains("1 active, 1 retired"), "{run:?}");
    let renamed = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with(&retired))
        .unwrap()
        .to_owned();
    assert!(schema_exists(&url, &renamed).await);

    // Standard input is not a terminal here (as in scripts and CI): no question, it purges.
    let run = tenant(&url, &registry, &["tenants", "purge", "--older-than", "0"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("purged tenant globex: dropped schema {renamed}\npurged 1 tenant(s) retired more than 0s ago\n")
    );
    assert_eq!(run.stderr, "", "no question asked: {run:?}");
    assert!(!schema_exists(&url, &renamed).await);
    assert!(
        schema_exists(&url, &acme).await,
        "the active tenant is untouched"
    );
    schemas.cleanup().await;
}

/// Runs `tenant <args>` on a pseudo-terminal (util-linux `script`), typing `input`.
fn tenant_on_a_terminal(url: &str, registry: &str, args: &str, input: &str) -> Run {
    use std::io::Write;
    let command = format!("'{}' {args}", env!("CARGO_BIN_EXE_tenant"));
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry)
        .env_remove("TENANT_MIGRATIONS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (package bsdutils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from_output(child.wait_with_output().unwrap())
}

#[tokio::test]
async fn purge_on_a_terminal_lists_and_asks_and_yes_skips_the_question() {
    let schemas = TestSchemas::new("cli_purge_tty").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let keys = ["t0", "t1", "t2"];
    for key in keys {
        let schema = schemas.name(key);
        let run = tenant(&url, &registry, &["tenants", "create", key, &schema]).await;
        assert_eq!(run.code, 0, "{run:?}");
        let run = tenant(&url, &registry, &["tenants", "drop", key]).await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let t0 = schemas.name("t0");

    // Answered "no" (or anything but y/yes): nothing is dropped, exit 1.
    for answer in ["n\n", "\n", "maybe\n"] {
        let run = tenant_on_a_terminal(&url, &registry, "tenants purge --older-than 0", answer);
        assert_eq!(run.code, 1, "{answer:?}: {run:?}");
        assert!(
            run.stdout
                .contains(&format!("would purge tenant t0: drop schema {t0}_deleted_")),
            "{run:?}"
        );
        assert!(
            run.stdout.contains(
                "Drop the schemas of these 3 tenant(s) and all their data, for good? [y/N]"
            ),
            "{run:?}"
        );
        assert!(
            run.stdout.contains("not confirmed: nothing was purged"),
            "{run:?}"
        );
        assert!(!run.stdout.contains("purged tenant"), "{run:?}");
    }
    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert!(run.stdout.contains("0 active, 3 retired"), "{run:?}");

    // Nothing due: nothing to ask about.
    let run = tenant_on_a_terminal(&url, &registry, "tenants purge --older-than 30d", "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("[y/N]"), "{run:?}");
    assert!(
        run.stdout
            .contains("purged 0 tenant(s) retired more than 30d ago"),
        "{run:?}"
    );

    // --dry-run on a terminal does not ask either.
    let run = tenant_on_a_terminal(
        &url,
        &registry,
        "tenants purge --older-than 0 --dry-run",
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("[y/N]"), "{run:?}");

    // "y": the three listed tenants are purged.
    let run = tenant_on_a_terminal(&url, &registry, "tenants purge --older-than 0", "y\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("[y/N]"), "{run:?}");
    assert!(
        run.stdout
            .contains("purged 3 tenant(s) retired more than 0s ago"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("not purged"), "{run:?}");

    // --yes: no question.
    let run = tenant(
        &url,
        &registry,
        &["tenants", "create", "t3", &schemas.name("t3")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "drop", "t3"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant_on_a_terminal(&url, &registry, "tenants purge --older-than 0 --yes", "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("[y/N]"), "{run:?}");
    assert!(run.stdout.contains("purged tenant t3"), "{run:?}");
    schemas.cleanup().await;
}

#[tokio::test]
async fn list_and_status_print_json() {
    let schemas = TestSchemas::new("cli_json").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let (acme, globex) = (schemas.name("acme"), schemas.name("globex"));

    let run = tenant(&url, &registry, &["tenants", "init"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "list", "--format", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let empty: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        empty,
        serde_json::json!({"registry": registry, "tenants": []})
    );

    for (key, schema) in [("acme", &acme), ("globex", &globex)] {
        let run = tenant(&url, &registry, &["tenants", "create", key, schema]).await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let run = tenant(&url, &registry, &["tenants", "drop", "globex"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(
        &url,
        &registry,
        &["migrate", "--tenant", "acme", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");

    let run = tenant(&url, &registry, &["tenants", "list", "--format", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one document on one line: {run:?}"
    );
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["registry"], registry.as_str());
    let tenants = list["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "{list}");
    assert_eq!(tenants[0]["key"], "acme");
    assert_eq!(tenants[0]["schema"], acme.as_str());
    assert_eq!(tenants[0]["state"], "active");
    assert_eq!(tenants[0]["retired_schema"], serde_json::Value::Null);
    assert_eq!(tenants[0]["retired_at"], serde_json::Value::Null);
    assert_eq!(tenants[0]["error"], serde_json::Value::Null);
    let created = tenants[0]["created_at"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "RFC 3339 in UTC, whole seconds: {created}"
    );
    assert_eq!(tenants[1]["key"], "globex");
    assert_eq!(tenants[1]["state"], "retired");
    assert!(tenants[1]["retired_schema"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{globex}_deleted_")));
    assert!(tenants[1]["retired_at"].as_str().unwrap().ends_with('Z'));

    let run = tenant(
        &url,
        &registry,
        &["status", "--format", "json", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["registry"], registry.as_str());
    assert_eq!(status["migrations"]["dir"], MIGRATIONS);
    assert_eq!(status["migrations"]["latest_version"], 3);
    assert_eq!(
        status["summary"],
        serde_json::json!({"active": 1, "retired": 1, "up_to_date": 1, "behind": 0, "failed": 0})
    );
    let tenants = status["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "{status}");
    assert_eq!(
        tenants[0],
        serde_json::json!({
            "key": "acme", "schema": acme, "state": "active", "retired_schema": null,
            "version": 3, "pending": [], "error": null
        })
    );
    assert_eq!(tenants[1]["key"], "globex");
    assert_eq!(tenants[1]["state"], "retired");
    assert_eq!(tenants[1]["version"], serde_json::Value::Null);
    assert_eq!(tenants[1]["pending"], serde_json::Value::Null);

    // A tenant behind: its pending versions are listed.
    let run = tenant(
        &url,
        &registry,
        &["tenants", "create", "initech", &schemas.name("initech")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant(
        &url,
        &registry,
        &["status", "--format", "json", "--migrations", MIGRATIONS],
    )
    .await;
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let initech = &status["tenants"][2];
    assert_eq!(initech["key"], "initech", "{status}");
    assert_eq!(initech["version"], serde_json::Value::Null);
    assert_eq!(initech["pending"], serde_json::json!([1, 2, 3]));
    assert_eq!(status["summary"]["behind"], 1);

    // Without migrations: "migrations" and the versions are null.
    let dir = empty_dir("json");
    let run = tenant_in(&dir, &url, &registry, &["status", "--format", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["migrations"], serde_json::Value::Null);
    assert_eq!(status["tenants"][0]["version"], serde_json::Value::Null);
    assert_eq!(status["tenants"][0]["pending"], serde_json::Value::Null);
    std::fs::remove_dir_all(&dir).unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn registry_keys_are_printed_escaped() {
    let schemas = TestSchemas::new("cli_escape").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let run = tenant(
        &url,
        &registry,
        &["tenants", "create", "acme", &schemas.name("acme")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    // Rows written behind the library's back: an escape sequence and a forged line in keys.
    let hostile = "\x1b[31mred\nforged 0 tenant(s)";
    let bell = "bell\x07";
    sql(
        &url,
        &format!(
            "INSERT INTO \"{registry}\".tenants (key, schema) VALUES \
             (E'\\x1b[31mred\\nforged 0 tenant(s)', '{}'), (E'bell\\x07', '{}')",
            schemas.name("hostile"),
            schemas.name("bell")
        ),
    )
    .await;
    let raw_control = |s: &str| s.chars().any(|c| c.is_control() && c != '\n');

    let run = tenant(&url, &registry, &["tenants", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !raw_control(&run.stdout) && !raw_control(&run.stderr),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(r"\u{1b}[31mred\nforged 0 tenant(s)"),
        "{run:?}"
    );
    assert!(run.stdout.contains(r"bell\u{7}"), "{run:?}");
    assert!(
        !run.stdout.lines().any(|l| l.starts_with("forged")),
        "no forged line: {run:?}"
    );
    assert!(
        run.stdout.contains("3 tenant(s): 3 active, 0 retired"),
        "{run:?}"
    );
    // The library's key rule refuses these rows when it loads the registry: say so, escaped.
    assert!(
        run.stderr.contains(
            r#"warning: the registry row of tenant \u{1b}[31mred\nforged 0 tenant(s) cannot be loaded: malformed tenant key"#
        ),
        "{run:?}"
    );

    // JSON: the exact key for a parser, and no raw control character for a terminal.
    let run = tenant(&url, &registry, &["tenants", "list", "--format", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!raw_control(&run.stdout), "{run:?}");
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    // Sorted by key in the database's collation, which may place control characters anywhere.
    let by_key = |key: &str| {
        list["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key:?} in {list}"))
    };
    assert!(by_key(hostile)["error"]
        .as_str()
        .unwrap()
        .starts_with("malformed tenant key"));
    assert!(by_key(bell)["error"].is_string());
    assert_eq!(by_key("acme")["error"], serde_json::Value::Null);

    // status reports every row: the good tenant's version, the refused rows as errors.
    let run = tenant(&url, &registry, &["status", "--migrations", MIGRATIONS]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        !raw_control(&run.stdout) && !raw_control(&run.stderr),
        "{run:?}"
    );
    let acme_line = run.stdout.lines().find(|l| l.starts_with("acme ")).unwrap();
    assert!(acme_line.ends_with("-        3"), "{run:?}");
    assert!(run.stdout.contains(r"\u{1b}[31mred\nforged"), "{run:?}");
    assert!(
        run.stderr
            .contains(r"error: \u{1b}[31mred\nforged 0 tenant(s): malformed tenant key"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("3 active tenant(s); latest migration 3: 0 up to date, 1 behind, 2 failed"),
        "{run:?}"
    );

    // migrate names the refused rows escaped, migrates the good tenant anyway, and exits 1
    // (not 2: the run happened, two registered rows were left out).
    let run = tenant(
        &url,
        &registry,
        &["migrate", "--all", "--migrations", MIGRATIONS],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        !raw_control(&run.stdout) && !raw_control(&run.stderr),
        "{run:?}"
    );
    assert!(run.stderr.contains("malformed tenant key"), "{run:?}");
    assert!(
        run.stderr.contains(
            r#"warning: the registry row of tenant \u{1b}[31mred\nforged 0 tenant(s) cannot be loaded: malformed tenant key"#
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("1 tenant(s) in"), "{run:?}");
    assert!(run.stdout.contains("1 migrated"), "{run:?}");
    assert!(run.stdout.contains("2 registry row(s) skipped"), "{run:?}");
    schemas.cleanup().await;
}

// Issue 13, part 6: bounded waits, and each tenant's line as it finishes.

/// `migrate` without a terminal prints each tenant's line as the tenant finishes (a log shows
/// progress while a locked tenant waits), and `--lock-timeout` fails the locked tenant, with
/// the option named, while the others migrate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_prints_each_tenant_as_it_finishes_and_bounds_a_locked_tenant() {
    use std::io::BufRead;
    use std::time::Duration;

    let schemas = TestSchemas::new("cli_locked").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    for key in ["t0", "t1", "t2", "t3"] {
        let run = tenant(
            &url,
            &registry,
            &["tenants", "create", key, &schemas.name(key)],
        )
        .await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    // The application holds t1's version table (made ahead, as a first run would) locked.
    let t1 = schemas.name("t1");
    let app = tenant_tests::connect_to(&url).await;
    let lock = format!(
        "CREATE TABLE IF NOT EXISTS \"{t1}\"._tenant_migrations (version bigint PRIMARY KEY, \
         name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); \
         BEGIN; LOCK TABLE \"{t1}\"._tenant_migrations IN ACCESS EXCLUSIVE MODE"
    );
    app.batch_execute(&lock).await.unwrap();

    // Waiting without bound (--lock-timeout 0): the others' lines arrive while it waits.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenant"))
        .args([
            "migrate",
            "--all",
            "--jobs",
            "2",
            "--lock-timeout",
            "0",
            "--migrations",
            MIGRATIONS,
        ])
        .env("DATABASE_URL", &url)
        .env("TENANT_REGISTRY", &registry)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            lines_tx.send(line.unwrap()).unwrap();
        }
    });
    let mut early = Vec::new();
    while early.len() < 3 {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}: only {early:?}"));
        early.push(line);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running while t1 is locked: {early:?}"
    );
    for line in &early {
        assert!(line.ends_with(": applied 1, 2, 3"), "{early:?}");
        assert!(!line.starts_with("t1 "), "{early:?}");
    }
    app.batch_execute("ROLLBACK").await.unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{early:?} {rest:?}");
    assert!(
        rest[0].starts_with(&format!("t1 ({t1}): applied 1, 2, 3")),
        "{rest:?}"
    );
    assert!(
        rest[1].contains(": 4 migrated, 0 up to date, 0 pending, 0 failed, 0 not run"),
        "{rest:?}"
    );

    // With a bound, the locked tenant fails after it, saying which option to raise.
    app.batch_execute(&lock).await.unwrap();
    let run = tenant(
        &url,
        &registry,
        &[
            "migrate",
            "--all",
            "--lock-timeout",
            "300ms",
            "--migrations",
            MIGRATIONS,
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "t1 ({t1}): FAILED: tenant \"t1\" (schema \"{t1}\"): waited longer than --lock-timeout (300ms)"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(": 0 migrated, 3 up to date, 0 pending, 1 failed, 0 not run"),
        "{run:?}"
    );
    app.batch_execute("ROLLBACK").await.unwrap();

    let run = without_database(&["migrate", "--all", "--lock-timeout", "soon"]);
    assert_eq!(run.code, 2, "{run:?}");
    schemas.cleanup().await;
}

// Issue 13, part 3: versions from the command line.

#[tokio::test]
async fn migrate_to_history_current_stamp_and_shared() {
    let schemas = TestSchemas::new("cli_versions").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    for key in ["t0", "t1", "t2"] {
        let run = tenant(
            &url,
            &registry,
            &["tenants", "create", key, &schemas.name(key)],
        )
        .await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    let (t0, t2) = (schemas.name("t0"), schemas.name("t2"));

    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "--tenant", "t0", "--tenant", "t1", "--to", "2"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("t0 ({t0}): applied 1, 2\n")),
        "{run:?}"
    );

    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "current", "--all", "--format", "json"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["latest_version"], 3);
    let current: Vec<(String, serde_json::Value, serde_json::Value)> = json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_owned(),
                t["current"].clone(),
                t["pending"].clone(),
            )
        })
        .collect();
    assert_eq!(
        current,
        [
            (
                "t0".to_owned(),
                serde_json::json!(2),
                serde_json::json!([3])
            ),
            (
                "t1".to_owned(),
                serde_json::json!(2),
                serde_json::json!([3])
            ),
            (
                "t2".to_owned(),
                serde_json::Value::Null,
                serde_json::json!([1, 2, 3])
            ),
        ]
    );
    assert!(json["tenants"][0].get("applied").is_none(), "{json}");

    // Hand-built t2 (as 0001 builds it) is adopted with stamp, then migrates the rest.
    sql(
        &url,
        &format!("CREATE TABLE \"{t2}\".customers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE)"),
    )
    .await;
    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "stamp", "1", "--tenant", "t2"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "t2 ({t2}): stamped: recorded 1 without running them"
        )),
        "{run:?}"
    );
    assert!(run.stdout.contains(", 1 stamped"), "{run:?}");

    let run = tenant(&url, &registry, &with_migrations(&["migrate", "--all"])).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("t2 ({t2}): applied 2, 3")),
        "{run:?}"
    );

    // Down again, for one tenant.
    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "--tenant", "t0", "--to", "2"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("t0 ({t0}): rolled back 3\n")),
        "{run:?}"
    );
    assert!(run.stdout.contains(", 1 rolled back"), "{run:?}");

    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "history", "--all", "--format", "json"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let versions = |i: usize| -> Vec<u64> {
        json["tenants"][i]["applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        (versions(0), versions(1), versions(2)),
        (vec![1, 2], vec![1, 2, 3], vec![1, 2, 3])
    );
    let first = &json["tenants"][0]["applied"][0];
    assert_eq!(first["name"], "create_customers");
    assert_eq!(first["checksum"].as_str().unwrap().len(), 64);
    assert!(
        first["applied_at"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    assert_eq!(json["tenants"][0]["pending"], serde_json::json!([3]));

    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "history", "--tenant", "t0"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("t0 ({t0}): at 2\n")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("add_paid_and_audit  pending"),
        "{run:?}"
    );
    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "current", "--all"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.lines().nth(1).unwrap().starts_with("t0"),
        "{run:?}"
    );

    // Shared migrations (none in this directory): run once, recorded in the registry.
    let run = tenant(&url, &registry, &with_migrations(&["migrate", "--shared"])).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("shared ({registry}): up to date\n"),
        "{run:?}"
    );

    // A version that is not there is a usage error.
    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "--all", "--to", "9"]),
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("there is no migration 9"), "{run:?}");
    schemas.cleanup().await;
}

/// `args` followed by `--migrations` and the test migrations.
fn with_migrations<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--migrations", MIGRATIONS]);
    all
}

// Issue 13, part 5: resumable after kill -9.

/// `tenant migrate --all` killed with SIGKILL mid-run leaves every tenant at no version or
/// at the latest (one transaction each); a rerun finishes the rest, and each migration is
/// applied once: the tenants the first run reported are up to date in the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_killed_mid_run_resumes_and_applies_each_migration_once() {
    use std::io::BufRead;
    use std::time::Duration;
    use tenant_runtime::{Allowlist, ModelSet, Provisioner, Registry};

    // Small by default (CI); TENANT_KILL9_TENANTS=3000 for a longer run.
    let tenants_n: usize = std::env::var("TENANT_KILL9_TENANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(120);
    let schemas = TestSchemas::new("cli_kill9").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let provisioner = Provisioner::new(ModelSet::new())
        .unwrap()
        .with_registry(Registry::new(&registry).unwrap());
    let mut clients = tenant_runtime::lifecycle::connect_many(&url, 4)
        .await
        .unwrap();
    provisioner.install(&clients[0]).await.unwrap();
    let pairs: Vec<(String, String)> = (0..tenants_n)
        .map(|i| (format!("t{i:03}"), schemas.name(&format!("t{i:03}"))))
        .collect();
    for r in provisioner
        .provision_many(&mut clients, &Allowlist::new(), &pairs)
        .await
    {
        r.unwrap();
    }
    drop(clients);
    let started = std::time::Instant::now();

    let mut child = Command::new(env!("CARGO_BIN_EXE_tenant"))
        .args(with_migrations(&["migrate", "--all", "--jobs", "4"]))
        .env("DATABASE_URL", &url)
        .env("TENANT_REGISTRY", &registry)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first_run = Vec::new();
    while first_run.len() < 20 {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{first_run:?}");
        assert!(line.trim_end().ends_with(": applied 1, 2, 3"), "{line}");
        first_run.push(line.split(' ').next().unwrap().to_owned());
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed, not exited: {status:?}");

    // Every tenant is at nothing or at 3: no half-applied tenant.
    let check = tenant_tests::connect_to(&url).await;
    let count_at = |rows: &[tokio_postgres::Row]| -> (usize, usize) {
        let done = rows.iter().filter(|r| r.get::<_, i64>(1) == 3).count();
        let none = rows.iter().filter(|r| r.get::<_, i64>(1) == 0).count();
        (done, none)
    };
    let mut rows = Vec::new();
    for (_, schema) in &pairs {
        let exists: bool = check
            .query_one(
                "SELECT to_regclass(format('%I._tenant_migrations', $1::text)) IS NOT NULL",
                &[schema],
            )
            .await
            .unwrap()
            .get(0);
        let sql = if exists {
            format!("SELECT $1::text, count(*) FROM \"{schema}\"._tenant_migrations")
        } else {
            "SELECT $1::text, 0::bigint".to_owned()
        };
        rows.push(check.query_one(&sql, &[schema]).await.unwrap());
    }
    let (done, none) = count_at(&rows);
    assert_eq!(done + none, tenants_n, "every tenant at 0 or 3 migrations");
    assert!(
        done >= 20 && done < tenants_n,
        "killed mid-run: {done} done"
    );
    eprintln!(
        "killed after {} reported lines: {done} tenants done, {none} not started",
        first_run.len()
    );

    // The rerun: the rest is migrated, nothing twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let run = tenant(
        &url,
        &registry,
        &with_migrations(&["migrate", "--all", "--jobs", "4"]),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    eprintln!("rerun done ({:.1?})", started.elapsed());
    assert!(
        run.stdout.contains(&format!(
            ": {none} migrated, {done} up to date, 0 pending, 0 failed, 0 not run"
        )),
        "{run:?}"
    );
    for key in &first_run {
        assert!(
            !run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{key} "))),
            "{key} was applied in the first run: {run:?}"
        );
    }
    let mut rows = Vec::new();
    for (_, schema) in &pairs {
        rows.push(
            check
                .query_one(
                    &format!("SELECT $1::text, count(*) FROM \"{schema}\"._tenant_migrations"),
                    &[schema],
                )
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        count_at(&rows),
        (tenants_n, 0),
        "every schema at the latest version"
    );
    schemas.cleanup().await;
}
