//! The scale-out path: `citus::distribute_schema` sends `citus_schema_distribute` with the
//! tenant's schema bound as a parameter. Citus is not installed here, so the tests pin the
//! statement, show plain PostgreSQL receiving a call with a `regnamespace` argument, and use
//! a stand-in function with Citus's signature to show which schema the argument names.
//!
//! On a server that logs every query string it receives, they show that the library never
//! sends a string with more than one statement (Citus refuses one that holds a `CREATE
//! INDEX` next to another statement), by PostgreSQL's own parser, and that `install` makes
//! the shared tables reference tables through Citus's signatures, once.

use std::error::Error as _;

use tenant_runtime::lifecycle::citus;
use tenant_runtime::{Allowlist, Error, Model, StatementMode, TenantPool};
use tenant_tests::{
    connect_to, database_url, scratch_cluster, TestDatabase, TestSchemas, ThrowawayCluster,
};

/// A database of its own on this binary's scratch cluster (dropping databases on the shared
/// server waits for its checkpoints).
async fn test_database(name: &str) -> TestDatabase {
    TestDatabase::create_on(&scratch_cluster().await.url(), name).await
}

#[test]
fn the_statement_binds_the_tenant_schema_as_a_parameter() {
    let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")]).unwrap();
    let acme = allowlist.resolve("acme").unwrap();
    assert_eq!(
        citus::distribute_statement(&acme),
        (
            "SELECT citus_schema_distribute($1::text::regnamespace)",
            "\"tenant_acme\"".to_owned()
        )
    );
    assert_eq!(
        citus::DISTRIBUTE_SCHEMA_SQL,
        citus::distribute_statement(&acme).0
    );
    assert_eq!(
        citus::UNDISTRIBUTE_SCHEMA_SQL,
        "SELECT citus_schema_undistribute($1::text::regnamespace)"
    );
}

fn message(e: &Error) -> String {
    match e {
        Error::Db(db) => db
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_else(|| db.to_string()),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn without_citus_the_call_reaches_the_server_as_an_undefined_function() {
    let schemas = TestSchemas::new("routing citus plain").await;
    let allowlist = Allowlist::from_pairs([("acme", schemas.name("acme"))]).unwrap();
    let acme = allowlist.resolve("acme").unwrap();
    for mode in [StatementMode::Prepared, StatementMode::Unnamed] {
        let pool = TenantPool::builder(&database_url().await)
            .unwrap()
            .statement_mode(mode)
            .build()
            .unwrap();
        let db = pool.get(&acme).await.unwrap();
        db.create_schema().await.unwrap();
        let e = citus::distribute_schema(&db).await.unwrap_err();
        assert_eq!(e.sqlstate(), Some("42883"), "{mode:?}: {e:?}");
        assert_eq!(
            message(&e),
            "function citus_schema_distribute(regnamespace) does not exist",
            "{mode:?}: {:?}",
            e.source()
        );
        let e = citus::undistribute_schema(&db).await.unwrap_err();
        assert_eq!(e.sqlstate(), Some("42883"), "{mode:?}: {e:?}");
        assert_eq!(
            message(&e),
            "function citus_schema_undistribute(regnamespace) does not exist"
        );
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_stand_in_with_citus_signature_receives_exactly_the_tenant_schema() {
    let database = test_database("routing citus stand in").await;
    let admin = connect_to(&database.url()).await;
    // Citus's signature: citus_schema_distribute(schemaname regnamespace) RETURNS void.
    admin
        .batch_execute(
            "CREATE TABLE public.citus_calls (n serial, fn text, schema_oid oid, schema text);
             CREATE FUNCTION public.citus_schema_distribute(schemaname regnamespace)
                 RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO public.citus_calls (fn, schema_oid, schema)
                    VALUES ('distribute', schemaname::oid, schemaname::text) $$;
             CREATE FUNCTION public.citus_schema_undistribute(schemaname regnamespace)
                 RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO public.citus_calls (fn, schema_oid, schema)
                    VALUES ('undistribute', schemaname::oid, schemaname::text) $$;",
        )
        .await
        .unwrap();
    let allowlist = Allowlist::from_pairs([
        ("acme", "tenant_acme"),
        ("globex", "tenant_globex"),
        ("missing", "tenant_missing"),
    ])
    .unwrap();
    let pool = TenantPool::builder(&database.url())
        .unwrap()
        .build()
        .unwrap();
    for key in ["acme", "globex"] {
        let db = pool.get(&allowlist.resolve(key).unwrap()).await.unwrap();
        db.create_schema().await.unwrap();
        citus::distribute_schema(&db).await.unwrap();
    }
    let globex = pool
        .get(&allowlist.resolve("globex").unwrap())
        .await
        .unwrap();
    citus::undistribute_schema(&globex).await.unwrap();

    let calls: Vec<(String, String, bool)> = admin
        .query(
            "SELECT c.fn, c.schema, c.schema_oid = n.oid FROM public.citus_calls c \
             LEFT JOIN pg_namespace n ON n.nspname = c.schema ORDER BY c.n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        calls,
        [
            ("distribute".to_owned(), "tenant_acme".to_owned(), true),
            ("distribute".to_owned(), "tenant_globex".to_owned(), true),
            ("undistribute".to_owned(), "tenant_globex".to_owned(), true),
        ]
    );

    // The argument names a schema: one that does not exist is refused by the server.
    let missing = pool
        .get(&allowlist.resolve("missing").unwrap())
        .await
        .unwrap();
    let e = citus::distribute_schema(&missing).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("3F000"), "{e:?}");

    drop((pool, globex, missing, admin));
    database.drop_now().await;
}

/// Citus's signature, recording each call, on a database of the test's own.
async fn database_with_citus_stand_in(name: &str) -> TestDatabase {
    let database = test_database(name).await;
    connect_to(&database.url())
        .await
        .batch_execute(
            "CREATE TABLE public.citus_calls (n serial, schema text, tables bigint);
             CREATE FUNCTION public.citus_schema_distribute(schemaname regnamespace)
                 RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO public.citus_calls (schema, tables)
                    SELECT $1::text, count(*) FROM pg_tables t
                     WHERE t.schemaname = $1::text $$;",
        )
        .await
        .unwrap();
    database
}

#[derive(Debug, tenant_runtime::Model)]
#[tenant(table = "orders")]
struct Order {
    #[tenant(primary_key, identity)]
    id: i64,
    total_cents: i64,
}

#[tokio::test]
async fn provisioning_with_citus_distributes_each_new_schema_after_its_tables() {
    let database = database_with_citus_stand_in("routing citus provision").await;
    let provisioner =
        tenant_runtime::Provisioner::new(tenant_runtime::ModelSet::new().with::<Order>())
            .unwrap()
            .distribute_on_citus(true);
    let mut client = tenant_runtime::Client::connect(&database.url())
        .await
        .unwrap();
    provisioner.install(&client).await.unwrap();
    let allowlist = Allowlist::new();
    for (key, schema) in [("acme", "tenant_acme"), ("globex", "tenant_globex")] {
        provisioner
            .provision(&mut client, &allowlist, key, schema)
            .await
            .unwrap();
    }
    let calls: Vec<(String, i64)> = client
        .as_tokio_postgres()
        .query(
            "SELECT schema, tables FROM public.citus_calls ORDER BY n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Called with exactly the tenant's schema, once its table existed (Citus converts the
    // tables already in the schema).
    assert_eq!(
        calls,
        [
            ("tenant_acme".to_owned(), 1),
            ("tenant_globex".to_owned(), 1)
        ]
    );
}

#[tokio::test]
async fn provisioning_with_citus_on_plain_postgres_leaves_nothing_behind() {
    let database = test_database("routing citus provision plain").await;
    let provisioner =
        tenant_runtime::Provisioner::new(tenant_runtime::ModelSet::new().with::<Order>())
            .unwrap()
            .distribute_on_citus(true);
    let mut client = tenant_runtime::Client::connect(&database.url())
        .await
        .unwrap();
    provisioner.install(&client).await.unwrap();
    let allowlist = Allowlist::new();
    let err = provisioner
        .provision(&mut client, &allowlist, "acme", "tenant_acme")
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42883"), "{err}");
    // One transaction: no schema, no registry row, no tenant.
    let pg = client.as_tokio_postgres();
    let schemas: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0);
    assert!(provisioner
        .registry()
        .entry(&client, "acme")
        .await
        .unwrap()
        .is_none());
    assert!(allowlist.resolve("acme").is_err());
}

// ---------------------------------------------------------------------------------------
// Every query string the library sends, on a server that logs them all.
// ---------------------------------------------------------------------------------------

/// The `application_name` of the library's connections in the logged runs (the test's own
/// setup and checks run under another name and are not inspected).
const LIBRARY: &str = "tenant_library";

/// A throwaway cluster of the test's own that logs every statement it receives
/// (`log_statement = all`) as JSON lines, one entry per query string.
async fn logging_cluster() -> ThrowawayCluster {
    tokio::task::spawn_blocking(|| {
        let cluster = ThrowawayCluster::start()?;
        for line in [
            "logging_collector = on",
            "log_destination = 'jsonlog'",
            "log_directory = 'log'",
            "log_file_mode = 0644",
            "log_statement = 'all'",
            "log_parameter_max_length = -1",
        ] {
            cluster.append_config(line)?;
        }
        cluster.restart()?;
        Ok::<_, std::io::Error>(cluster)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot start a logging cluster: {e}"))
}

/// Citus's functions and catalog as far as the library uses them, with Citus 12.1's
/// signatures: `citus_schema_distribute(schemaname regnamespace)`,
/// `create_reference_table(table_name regclass)` (refusing a table already distributed, as
/// Citus does) and `pg_dist_partition (logicalrelid regclass, partmethod "char", repmodel
/// "char", ...)`. Every call is recorded in `public.citus_calls`.
const CITUS_STAND_IN: &str = r#"
    CREATE TABLE public.citus_calls (n serial, fn text, arg oid);
    CREATE TABLE public.pg_dist_partition (
        logicalrelid regclass NOT NULL, partmethod "char" NOT NULL, repmodel "char" NOT NULL);
    CREATE FUNCTION public.citus_schema_distribute(schemaname regnamespace)
        RETURNS void LANGUAGE sql AS
        $$ INSERT INTO public.citus_calls (fn, arg) VALUES ('citus_schema_distribute', $1::oid) $$;
    CREATE FUNCTION public.create_reference_table(table_name regclass)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM public.pg_dist_partition p WHERE p.logicalrelid = table_name) THEN
                RAISE EXCEPTION 'table "%" is already distributed', table_name;
            END IF;
            INSERT INTO public.citus_calls (fn, arg) VALUES ('create_reference_table', table_name::oid);
            INSERT INTO public.pg_dist_partition VALUES (table_name, 'n', 't');
        END $$;
"#;

/// One logged query string: the SQL, and whether it came as a simple query (`statement:`)
/// or through the extended protocol (`execute <name>:`).
#[derive(Debug)]
struct Logged {
    sql: String,
    simple: bool,
}

/// The query strings logged for `application_name = app`, in order, once `marker` (a
/// statement the test sends last) shows in the log.
async fn logged_statements(
    cluster: &ThrowawayCluster,
    admin: &tokio_postgres::Client,
    app: &str,
) -> Vec<Logged> {
    let file: String = admin
        .query_one("SELECT pg_current_logfile('jsonlog')", &[])
        .await
        .unwrap()
        .get(0);
    let path = cluster.data_dir().join(file);
    let marker = format!("SELECT 'end of {app}'");
    admin.batch_execute(&marker).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains(&format!("statement: {marker}")) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker never reached {}",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut logged = Vec::new();
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if entry["application_name"] != app {
            continue;
        }
        let message = entry["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("cannot insert multiple commands"),
            "the server refused a multi-statement string: {entry}"
        );
        if let Some(sql) = message.strip_prefix("statement: ") {
            logged.push(Logged {
                sql: sql.to_owned(),
                simple: true,
            });
        } else if let Some(rest) = message.strip_prefix("execute ") {
            let (_, sql) = rest.split_once(": ").unwrap();
            logged.push(Logged {
                sql: sql.to_owned(),
                simple: false,
            });
        }
    }
    logged
}

/// The query strings of `logged` that hold more than one statement, by PostgreSQL's own
/// parser: it refuses to prepare such a string (`cannot insert multiple commands into a
/// prepared statement`, the error Citus gives), without running anything.
async fn multi_statement_strings(admin: &tokio_postgres::Client, logged: &[Logged]) -> Vec<String> {
    let mut multi = Vec::new();
    for l in logged {
        if let Err(e) = admin.prepare(&l.sql).await {
            let message = e.as_db_error().map(|d| d.message().to_owned());
            if message.as_deref()
                == Some("cannot insert multiple commands into a prepared statement")
            {
                multi.push(l.sql.clone());
            }
        }
    }
    multi
}

/// Shared by every tenant: a reference table on Citus.
#[derive(Debug, tenant_runtime::Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
}

/// A tenant table with an index and a foreign key to the shared table.
#[derive(Debug, tenant_runtime::Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Plan)]
    plan: String,
    #[tenant(index)]
    amount_cents: i64,
}

#[tokio::test]
async fn no_query_string_the_library_sends_holds_more_than_one_statement() {
    let cluster = logging_cluster().await;
    let admin_url = format!("{}?application_name=test_admin", cluster.url());
    let url = format!("{}?application_name={LIBRARY}", cluster.url());
    let admin = connect_to(&admin_url).await;
    admin.batch_execute(CITUS_STAND_IN).await.unwrap();
    admin.batch_execute("CREATE SCHEMA shared").await.unwrap();

    let migrations_dir = cluster.data_dir().join("../migrations");
    std::fs::create_dir_all(&migrations_dir).unwrap();
    std::fs::write(
        migrations_dir.join("0001_notes.sql"),
        "-- several statements in one file, an index among them\n\
         CREATE TABLE {tenant}.notes (id bigint PRIMARY KEY, body text NOT NULL DEFAULT ';');\n\
         CREATE INDEX notes_body_idx ON {tenant}.notes (body);\n\
         ALTER TABLE {tenant}.invoices ADD COLUMN note_id bigint REFERENCES {tenant}.notes (id);\n\
         CREATE FUNCTION {tenant}.note_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM {tenant}.notes; $$;\n",
    )
    .unwrap();
    let migrations = tenant_runtime::Migrations::from_dir(&migrations_dir, &[]).unwrap();
    assert_eq!(migrations.iter().next().unwrap().statements().len(), 4);

    let models = tenant_runtime::ModelSet::new()
        .with::<Invoice>()
        .with::<Plan>();
    let provisioner = tenant_runtime::Provisioner::new(models.clone())
        .unwrap()
        .distribute_on_citus(true);
    let mut client = tenant_runtime::Client::connect(&url).await.unwrap();
    provisioner.install(&client).await.unwrap();
    provisioner.install(&client).await.unwrap(); // idempotent
    let allowlist = Allowlist::new();
    let mut tenants = Vec::new();
    for (key, schema) in [("acme", "tenant_acme"), ("globex", "tenant_globex")] {
        tenants.push(
            provisioner
                .provision(&mut client, &allowlist, key, schema)
                .await
                .unwrap(),
        );
    }
    let report = tenant_runtime::Migrator::new(&migrations)
        .run(&mut client, &tenants)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    // Model and model-set DDL outside provisioning, on a client and inside a transaction.
    let mut db = client.for_tenant(&tenants[0]);
    Invoice::create_table(&db).await.unwrap();
    models.create_all(&db).await.unwrap();
    let tx = db.transaction().await.unwrap();
    Invoice::create_table(&tx).await.unwrap();
    models.create_tenant_tables(&tx).await.unwrap();
    tx.commit().await.unwrap();
    drop(db);

    let logged = logged_statements(&cluster, &admin, LIBRARY).await;
    let ddl = |needle: &str| logged.iter().filter(|l| l.sql.contains(needle)).count();
    assert!(
        ddl("CREATE INDEX IF NOT EXISTS \"invoices_amount_cents_idx\"") >= 2,
        "{logged:#?}"
    );
    assert!(ddl("CREATE INDEX notes_body_idx") == 2, "{logged:#?}");
    assert!(ddl("citus_schema_distribute") == 2, "{logged:#?}");
    // The check can fail: it finds a string of two statements.
    let two = [Logged {
        sql: "CREATE INDEX i ON tenant_acme.invoices (plan); SELECT 1".into(),
        simple: true,
    }];
    assert_eq!(multi_statement_strings(&admin, &two).await.len(), 1);
    let multi = multi_statement_strings(&admin, &logged).await;
    assert!(
        multi.is_empty(),
        "query strings with more than one statement were sent:\n{}",
        multi.join("\n-----\n")
    );

    // Item 8: the shared table became a reference table, exactly once, with the statements
    // this crate pins, against Citus's own signatures.
    let calls: Vec<(String, bool)> = admin
        .query(
            "SELECT fn, arg = '\"shared\".\"plans\"'::regclass::oid FROM public.citus_calls \
             WHERE fn = 'create_reference_table' ORDER BY n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(calls, [("create_reference_table".to_owned(), true)]);
    let citus: Vec<&Logged> = logged
        .iter()
        .filter(|l| l.sql.contains("create_reference_table") || l.sql.contains("pg_dist_partition"))
        .collect();
    assert!(citus.iter().all(|l| !l.simple), "{citus:#?}");
    let citus: Vec<&str> = citus.iter().map(|l| l.sql.as_str()).collect();
    assert_eq!(
        citus,
        [
            citus::DISTRIBUTED_TABLES_SQL,
            citus::CREATE_REFERENCE_TABLE_SQL,
            citus::DISTRIBUTED_TABLES_SQL, // the second install: nothing left to convert
        ]
    );
    drop(cluster);
}

#[test]
fn the_reference_table_statements_are_pinned() {
    assert_eq!(
        citus::CREATE_REFERENCE_TABLE_SQL,
        "SELECT create_reference_table($1::text::regclass)"
    );
    assert_eq!(
        citus::DISTRIBUTED_TABLES_SQL,
        "SELECT t FROM unnest($1::text[]) AS t WHERE EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = t::regclass)"
    );
}

#[tokio::test]
async fn installing_with_citus_twice_converts_each_shared_table_once() {
    let database = test_database("routing citus reference").await;
    let admin = connect_to(&database.url()).await;
    admin.batch_execute(CITUS_STAND_IN).await.unwrap();
    admin.batch_execute("CREATE SCHEMA shared").await.unwrap();
    let provisioner = tenant_runtime::Provisioner::new(
        tenant_runtime::ModelSet::new()
            .with::<Invoice>()
            .with::<Plan>(),
    )
    .unwrap()
    .distribute_on_citus(true);
    let client = tenant_runtime::Client::connect(&database.url())
        .await
        .unwrap();
    provisioner.install(&client).await.unwrap();
    provisioner.install(&client).await.unwrap();
    // Another process converted it already: not converted again.
    let made = citus::make_reference_tables(&client, &[r#""shared"."plans""#.to_owned()])
        .await
        .unwrap();
    assert!(made.is_empty());
    // Without `distribute_on_citus`, install leaves shared tables alone.
    admin
        .batch_execute("TRUNCATE public.pg_dist_partition")
        .await
        .unwrap();
    tenant_runtime::Provisioner::new(tenant_runtime::ModelSet::new().with::<Plan>())
        .unwrap()
        .install(&client)
        .await
        .unwrap();
    let calls: Vec<String> = admin
        .query(
            "SELECT arg::regclass::text FROM public.citus_calls WHERE fn = 'create_reference_table'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(calls, ["shared.plans"]);
    drop((client, admin));
    database.drop_now().await;
}
