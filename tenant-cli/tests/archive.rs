//! End-to-end tests of `tenant tenants export | import | clone` against PostgreSQL: output,
//! exit codes, and that a refused import creates nothing.

use tenant_tests::{database_url, Cli, Run, TestSchemas};

/// The migrations the archive tests use (an enum type, a self-reference, a generated column).
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/archive");
/// Another application's migrations (another version and other tables).
const OTHER_MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/app");

fn tenant(url: &str, registry: &str, args: &[&str]) -> Run {
    tenant_with(url, registry, args, None)
}

/// Runs `tenant <args>`, with `TENANT_SNAPSHOT_DIR` set to `snapshot_dir` if given.
fn tenant_with(url: &str, registry: &str, args: &[&str], snapshot_dir: Option<&str>) -> Run {
    let mut cli = Cli::new(env!("CARGO_BIN_EXE_tenant"))
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry);
    if let Some(dir) = snapshot_dir {
        cli = cli.env("TENANT_SNAPSHOT_DIR", dir);
    }
    cli.run(args)
}

async fn query_i64(url: &str, sql: &str) -> i64 {
    tenant_tests::connect_to(url)
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

async fn schema_exists(url: &str, schema: &str) -> bool {
    query_i64(
        url,
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"),
    )
    .await
        == 1
}

async fn registered(url: &str, registry: &str, key: &str) -> bool {
    query_i64(
        url,
        &format!("SELECT count(*) FROM \"{registry}\".tenants WHERE key = '{key}'"),
    )
    .await
        == 1
}

#[tokio::test]
async fn export_import_and_clone_a_tenant_and_refuse_bad_archives() {
    let schemas = TestSchemas::new("cli_archive").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let acme = schemas.name("acme");
    let dir = std::env::temp_dir().join(schemas.prefix());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("acme.tenant");
    let file_arg = file.to_str().unwrap();

    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "create",
            "acme",
            &acme,
            "--migrate",
            "--migrations",
            MIGRATIONS,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    tenant_tests::connect_to(&url)
        .await
        .batch_execute(&format!(
            r#"INSERT INTO "{acme}".accounts (name, mood) SELECT 'a' || g, 'meh' FROM generate_series(1, 30) g;
               INSERT INTO "{acme}".entries (account_id, amount) SELECT g % 30 + 1, g FROM generate_series(1, 3000) g;"#
        ))
        .await
        .unwrap();

    let run = tenant(
        &url,
        &registry,
        &["tenants", "export", "acme", "--out", file_arg],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("  entries: 3000 rows, sha256 "),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("exported tenant acme") && run.stdout.contains("migration version 2"),
        "{run:?}"
    );
    assert!(file.exists());

    // Import as a new tenant: the same rows, the sequences going on.
    let copy = schemas.name("copy");
    let args = [
        "tenants",
        "import",
        "--key",
        "copy",
        "--schema",
        &copy,
        file_arg,
        "--migrations",
        MIGRATIONS,
    ];
    let run = tenant(&url, &registry, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("  entries: 3000 rows, sha256 "),
        "{run:?}"
    );
    assert!(run.stdout.contains("imported tenant copy"), "{run:?}");
    let same = query_i64(
        &url,
        &format!(
            "SELECT count(*) FROM (SELECT e::text FROM \"{acme}\".entries e EXCEPT ALL \
             SELECT e::text FROM \"{copy}\".entries e) d"
        ),
    )
    .await;
    assert_eq!(same, 0);
    let next = query_i64(
        &url,
        &format!("INSERT INTO \"{copy}\".accounts (name) VALUES ('new') RETURNING id"),
    )
    .await;
    assert_eq!(next, 31);
    let run = tenant(&url, &registry, &["tenants", "list"]);
    assert!(run.stdout.contains("2 tenant(s): 2 active"), "{run:?}");

    // Refused, exit 1, nothing created: the key again, a damaged archive, other migrations.
    let run = tenant(&url, &registry, &args);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("exists already"), "{run:?}");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    let damaged = dir.join("damaged.tenant");
    std::fs::write(&damaged, &bytes).unwrap();
    let truncated = dir.join("truncated.tenant");
    std::fs::write(&truncated, &bytes[..bytes.len() - 20]).unwrap();
    let bad = schemas.name("bad");
    for (archive, migrations, needle) in [
        (&damaged, MIGRATIONS, "damaged"),
        (&truncated, MIGRATIONS, "truncated"),
        (
            &file,
            OTHER_MIGRATIONS,
            "migration version 2, but the target is at 3",
        ),
    ] {
        let run = tenant(
            &url,
            &registry,
            &[
                "tenants",
                "import",
                "--key",
                "bad",
                "--schema",
                &bad,
                archive.to_str().unwrap(),
                "--migrations",
                migrations,
            ],
        );
        assert_eq!(run.code, 1, "{archive:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{archive:?}: {run:?}");
        assert!(!schema_exists(&url, &bad).await);
        assert!(!registered(&url, &registry, "bad").await);
    }

    // Usage errors (exit 2): a file that is not there, a missing argument.
    let missing = dir.join("missing.tenant");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "import",
            "--key",
            "bad",
            "--schema",
            &bad,
            missing.to_str().unwrap(),
            "--migrations",
            MIGRATIONS,
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot open"), "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "export", "acme"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = tenant(
        &url,
        &registry,
        &["tenants", "export", "nobody", "--out", file_arg],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("unknown tenant \"nobody\""), "{run:?}");

    // Clone without a file.
    let demo = schemas.name("demo");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "clone",
            "acme",
            "--key",
            "demo",
            "--schema",
            &demo,
            "--migrations",
            MIGRATIONS,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("  entries: 3000 rows"), "{run:?}");
    assert!(
        run.stdout.contains("cloned tenant acme into tenant demo"),
        "{run:?}"
    );
    assert_eq!(
        query_i64(&url, &format!("SELECT count(*) FROM \"{demo}\".entries")).await,
        3000
    );

    // The database unreachable: exit 3.
    let run = tenant(
        "postgres://postgres@127.0.0.1:1/postgres",
        &registry,
        &["tenants", "export", "acme", "--out", file_arg],
    );
    assert_eq!(run.code, 3, "{run:?}");

    std::fs::remove_dir_all(&dir).unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn purge_with_a_snapshot_dir_writes_an_importable_archive_and_is_refused_when_it_cannot() {
    let schemas = TestSchemas::new("cli_snapshot").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let dir = std::env::temp_dir().join(schemas.prefix());
    std::fs::create_dir_all(&dir).unwrap();
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let unwritable = blocker.join("snapshots");
    let snapshots = dir.join("snapshots");
    let (acme, globex) = (schemas.name("acme"), schemas.name("globex"));
    for (key, schema) in [("acme", &acme), ("globex", &globex)] {
        let run = tenant(
            &url,
            &registry,
            &[
                "tenants",
                "create",
                key,
                schema,
                "--migrate",
                "--migrations",
                MIGRATIONS,
            ],
        );
        assert_eq!(run.code, 0, "{run:?}");
        tenant_tests::connect_to(&url)
            .await
            .batch_execute(&format!(
                "INSERT INTO \"{schema}\".accounts (name) SELECT 'a' || g FROM generate_series(1, 12) g"
            ))
            .await
            .unwrap();
        let run = tenant(&url, &registry, &["tenants", "drop", key]);
        assert_eq!(run.code, 0, "{run:?}");
    }

    // The directory cannot be made (a regular file is in the way, even for root): refused,
    // exit 1, and both schemas kept.
    let purge = [
        "tenants",
        "purge",
        "--older-than",
        "0",
        "--snapshot-dir",
        unwritable.to_str().unwrap(),
    ];
    let run = tenant(&url, &registry, &purge);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("could not be written"), "{run:?}");
    assert!(run.stderr.contains("--no-snapshot"), "{run:?}");
    let run = tenant(&url, &registry, &["tenants", "list"]);
    assert!(run.stdout.contains("0 active, 2 retired"), "{run:?}");

    // The dry run says where the snapshots would go; the purge writes them.
    let snapshots_arg = snapshots.to_str().unwrap();
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "purge",
            "--older-than",
            "0",
            "--dry-run",
            "--snapshot-dir",
            snapshots_arg,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("after a snapshot to"), "{run:?}");
    assert!(!snapshots.exists());
    // From the environment, as a cron job would have it.
    let run = tenant_with(
        &url,
        &registry,
        &["tenants", "purge", "--older-than", "0"],
        Some(snapshots_arg),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.matches(", snapshot in ").count(), 2, "{run:?}");
    let files: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".tenant")), "{files:?}");

    // Restore a purged tenant: import its snapshot under its key and schema.
    let snapshot = files
        .iter()
        .find(|f| f.starts_with(&acme))
        .expect("acme's snapshot");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "import",
            "--key",
            "acme",
            "--schema",
            &acme,
            snapshots.join(snapshot).to_str().unwrap(),
            "--migrations",
            MIGRATIONS,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        query_i64(&url, &format!("SELECT count(*) FROM \"{acme}\".accounts")).await,
        12
    );

    // --no-snapshot wins over the environment.
    let run = tenant(&url, &registry, &["tenants", "drop", "acme"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = tenant_with(
        &url,
        &registry,
        &["tenants", "purge", "--older-than", "0", "--no-snapshot"],
        Some(unwritable.to_str().unwrap()),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains(", snapshot in"), "{run:?}");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "purge",
            "--older-than",
            "0",
            "--no-snapshot",
            "--snapshot-dir",
            "x",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");

    std::fs::remove_dir_all(&dir).unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn move_copies_a_tenant_to_another_database_and_flips_its_route() {
    let schemas = TestSchemas::new("cli_move").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    let acme = schemas.name("acme");
    let routes = schemas.name("routes");
    let run = tenant(
        &url,
        &registry,
        &[
            "tenants",
            "create",
            "acme",
            &acme,
            "--migrate",
            "--migrations",
            MIGRATIONS,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    tenant_tests::connect_to(&url)
        .await
        .batch_execute(&format!(
            r#"INSERT INTO "{acme}".accounts (name) SELECT 'a' || g FROM generate_series(1, 40) g;
               INSERT INTO "{acme}".entries (account_id, amount) SELECT g % 40 + 1, g FROM generate_series(1, 4000) g;
               CREATE SCHEMA "{routes}";
               CREATE TABLE "{routes}".tenant_databases (tenant_key text PRIMARY KEY, database_url text NOT NULL);
               INSERT INTO "{routes}".tenant_databases VALUES ('acme', '{url}');"#
        ))
        .await
        .unwrap();
    let database = tenant_tests::TestDatabase::create_on(
        &tenant_tests::scratch_cluster().await.url(),
        "cli_move",
    )
    .await;
    let routes_table = format!("{routes}.tenant_databases");
    let target = database.url();
    let args = [
        "tenants",
        "move",
        "acme",
        "--to",
        &target,
        "--routes-table",
        &routes_table,
        "--migrations",
        MIGRATIONS,
    ];

    // Usage errors and an unreachable target change nothing.
    let bad = [
        "tenants",
        "move",
        "acme",
        "--to",
        &target,
        "--routes-table",
        "no_dot",
        "--migrations",
        MIGRATIONS,
    ];
    assert_eq!(tenant(&url, &registry, &bad).code, 2);
    let unreachable = [
        "tenants",
        "move",
        "acme",
        "--to",
        "postgres://postgres@127.0.0.1:1/postgres",
        "--routes-table",
        &routes_table,
        "--migrations",
        MIGRATIONS,
    ];
    let run = tenant(&url, &registry, &unreachable);
    assert_eq!(run.code, 3, "{run:?}");

    let run = tenant(&url, &registry, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("  entries: 4000 rows, sha256 "),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!(
            "moved tenant acme (schema {acme}) to database {}",
            database.name()
        )),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains("postgres://"),
        "no URL (it may carry a password): {run:?}"
    );
    let routed: String = tenant_tests::connect_to(&url)
        .await
        .query_one(
            &format!("SELECT database_url FROM {routes_table} WHERE tenant_key = 'acme'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(routed, target);
    assert_eq!(
        query_i64(&target, &format!("SELECT count(*) FROM \"{acme}\".entries")).await,
        4000
    );
    // Here the tenant is retired (its schema renamed, kept); there it is active.
    let run = tenant(&url, &registry, &["tenants", "list"]);
    assert!(run.stdout.contains("0 active, 1 retired"), "{run:?}");
    let run = tenant(&target, &registry, &["tenants", "list"]);
    assert!(run.stdout.contains("1 active, 0 retired"), "{run:?}");
    database.drop_now().await;
    schemas.cleanup().await;
}
