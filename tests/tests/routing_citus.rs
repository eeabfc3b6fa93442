//! The scale-out path: `citus::distribute_schema` sends `citus_schema_distribute` with the
//! tenant's schema bound as a parameter. Citus is not installed here, so the tests pin the
//! statement, show plain PostgreSQL receiving a call with a `regnamespace` argument, and use
//! a stand-in function with Citus's signature to show which schema the argument names.

use std::error::Error as _;

use tenant_runtime::lifecycle::citus;
use tenant_runtime::{Allowlist, Error, StatementMode, TenantPool};
use tenant_tests::{connect_to, database_url, scratch_cluster, TestDatabase, TestSchemas};

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
