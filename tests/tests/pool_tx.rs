//! Transactions and savepoints on pooled handles, connections coming back clean, the scoped
//! `search_path` escape hatch, and what the unnamed (pooler-safe) mode binds.

use std::error::Error as _;

use tenant_runtime::postgres_types::{IsNull, ToSql, Type};
use tenant_runtime::{Allowlist, Error, Model, SchemaMap, Slot, StatementMode, TenantPool};
use tenant_tests::{database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "notes")]
struct Note {
    #[tenant(primary_key, identity)]
    id: i64,
    body: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "everything")]
struct Everything {
    #[tenant(primary_key)]
    id: i32,
    small: Option<i16>,
    big: i64,
    real: Option<f32>,
    double: f64,
    flag: Option<bool>,
    text: Option<String>,
    bytes: Vec<u8>,
}

struct Fixture {
    schemas: TestSchemas,
    allowlist: Allowlist,
    pool: TenantPool,
}

async fn fixture(name: &str, mode: StatementMode) -> Fixture {
    let schemas = TestSchemas::new(name).await;
    let allowlist = Allowlist::from_pairs([
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
    ])
    .unwrap();
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(1)
        .statement_mode(mode)
        .schema_map(
            SchemaMap::new()
                .with("shared", &schemas.name("shared"))
                .unwrap(),
        )
        .build()
        .unwrap();
    for tenant in allowlist.tenants() {
        let db = pool.get(&tenant).await.unwrap();
        db.create_schema().await.unwrap();
        Note::create_table(&db).await.unwrap();
        Everything::create_table(&db).await.unwrap();
    }
    Fixture {
        schemas,
        allowlist,
        pool,
    }
}

async fn backend_pid(conn: &tenant_runtime::Client) -> i32 {
    conn.as_tokio_postgres()
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn bodies(db: &tenant_runtime::Db<impl tenant_runtime::Executor>) -> Vec<String> {
    let mut notes = Note::query()
        .order_by(Note::ID.asc())
        .fetch_all(db)
        .await
        .unwrap();
    notes.sort_by_key(|n| n.id);
    notes.into_iter().map(|n| n.body).collect()
}

fn note(body: &str) -> Note {
    Note {
        id: 0,
        body: body.into(),
    }
}

async fn transactions_commit_roll_back_and_nest(mode: StatementMode, name: &str) {
    let fx = fixture(name, mode).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let globex = fx.allowlist.resolve("globex").unwrap();
    let mut db = fx.pool.get(&acme).await.unwrap();
    let pid = backend_pid(db.executor()).await;

    // Commit: visible after.
    let tx = db.transaction().await.unwrap();
    note("committed").insert(&tx).await.unwrap();
    assert_eq!(Note::query().count(&tx).await.unwrap(), 1);
    tx.commit().await.unwrap();

    // Rollback: gone.
    let tx = db.transaction().await.unwrap();
    let n = note("rolled back").insert(&tx).await.unwrap();
    assert!(
        Note::get(&tx, n.id).await.unwrap().is_some(),
        "visible inside"
    );
    tx.rollback().await.unwrap();

    // Savepoints: roll one back, release another, commit the whole.
    let mut tx = db.transaction().await.unwrap();
    note("outer").insert(&tx).await.unwrap();
    {
        let sp = tx.transaction().await.unwrap();
        note("savepoint rolled back").insert(&sp).await.unwrap();
        sp.rollback().await.unwrap();
    }
    {
        let mut sp = tx.transaction().await.unwrap();
        let kept = note("savepoint released").insert(&sp).await.unwrap();
        {
            let inner = sp.transaction().await.unwrap();
            let mut changed = kept.clone();
            changed.body = "changed in a rolled-back inner savepoint".into();
            assert!(changed.update(&inner).await.unwrap());
            // Dropped without commit: rolls back to the inner savepoint.
        }
        assert_eq!(Note::get(&sp, kept.id).await.unwrap().unwrap(), kept);
        sp.commit().await.unwrap();
    }
    tx.commit().await.unwrap();

    // Dropped without commit: rolled back, and the handle keeps working.
    {
        let tx = db.transaction().await.unwrap();
        note("dropped").insert(&tx).await.unwrap();
    }
    assert_eq!(
        bodies(&db).await,
        ["committed", "outer", "savepoint released"]
    );

    // Back in the pool and out again (max_size 1): the same connection, clean, and the other
    // tenant's handle on it sees none of acme's rows.
    drop(db);
    let db = fx.pool.get(&globex).await.unwrap();
    assert_eq!(
        backend_pid(db.executor()).await,
        pid,
        "the connection was reused"
    );
    assert!(bodies(&db).await.is_empty());
    drop(db);
    let db = fx.pool.get(&acme).await.unwrap();
    assert_eq!(bodies(&db).await.len(), 3);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn pooled_transactions_commit_roll_back_and_nest() {
    transactions_commit_roll_back_and_nest(StatementMode::Prepared, "pool_tx").await;
}

#[tokio::test]
async fn pooled_transactions_commit_roll_back_and_nest_in_unnamed_mode() {
    transactions_commit_roll_back_and_nest(StatementMode::Unnamed, "pool_tx_unnamed").await;
}

#[tokio::test]
async fn a_connection_returned_inside_a_transaction_is_not_handed_out_again() {
    let fx = fixture("pool_tx_leftover", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let conn = fx.pool.client().await.unwrap();
    let pid = backend_pid(&conn).await;
    // Third-party code opened a transaction with raw SQL and never ended it.
    conn.as_tokio_postgres()
        .batch_execute("BEGIN")
        .await
        .unwrap();
    let tenant_db = tenant_runtime::Db::new(&conn, &acme);
    note("left in an open transaction")
        .insert(&tenant_db)
        .await
        .unwrap();
    drop(conn);

    let db = fx.pool.get(&acme).await.unwrap();
    assert_ne!(backend_pid(db.executor()).await, pid, "a fresh connection");
    assert_eq!(
        Note::query().count(&db).await.unwrap(),
        0,
        "the open transaction never committed"
    );
    drop(db);

    // A failed (aborted) transaction is refused the same way.
    let conn = fx.pool.client().await.unwrap();
    let pid = backend_pid(&conn).await;
    let pg = conn.as_tokio_postgres();
    pg.batch_execute("BEGIN").await.unwrap();
    assert!(pg.batch_execute("SELECT 1/0").await.is_err());
    drop(conn);
    let conn = fx.pool.client().await.unwrap();
    assert_ne!(backend_pid(&conn).await, pid);
    drop(conn);
    fx.schemas.cleanup().await;
}

async fn search_path(conn: &tokio_postgres::Client) -> String {
    conn.query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn set_local_search_path_lasts_until_the_transaction_ends() {
    let fx = fixture("pool_tx_search_path", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let mut db = fx.pool.get(&acme).await.unwrap();
    note("acme's").insert(&db).await.unwrap();
    let default_path = search_path(db.executor().as_tokio_postgres()).await;
    let unqualified = "SELECT body FROM notes";

    for commit in [true, false] {
        let tx = db.transaction().await.unwrap();
        tx.set_local_search_path(&[Slot::Named("shared")])
            .await
            .unwrap();
        let raw = tx.executor().as_tokio_postgres();
        assert_eq!(
            search_path(raw.client()).await,
            format!("{}, {}", acme.schema().as_str(), fx.schemas.name("shared"))
        );
        // Third-party SQL without schema names reads the tenant's table.
        let body: String = raw.query_one(unqualified, &[]).await.unwrap().get(0);
        assert_eq!(body, "acme's");
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let raw = db.executor().as_tokio_postgres();
        assert_eq!(
            search_path(raw).await,
            default_path,
            "gone after the transaction"
        );
        assert!(
            raw.query(unqualified, &[]).await.is_err(),
            "no table `notes` on the path"
        );
    }

    // Set inside a savepoint that rolls back: reverted with it.
    let mut tx = db.transaction().await.unwrap();
    {
        let sp = tx.transaction().await.unwrap();
        sp.set_local_search_path(&[]).await.unwrap();
        sp.rollback().await.unwrap();
    }
    assert_eq!(
        search_path(tx.executor().as_tokio_postgres().client()).await,
        default_path
    );
    tx.commit().await.unwrap();

    // The next user of the connection (another tenant) never sees it.
    drop(db);
    let globex = fx.allowlist.resolve("globex").unwrap();
    let db = fx.pool.get(&globex).await.unwrap();
    assert_eq!(
        search_path(db.executor().as_tokio_postgres()).await,
        default_path
    );
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn unnamed_mode_binds_every_builtin_column_type_and_null() {
    let fx = fixture("pool_tx_unnamed_types", StatementMode::Unnamed).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let db = fx.pool.get(&acme).await.unwrap();
    let rows = [
        Everything {
            id: 1,
            small: Some(-7),
            big: i64::MAX,
            real: Some(1.5),
            double: -2.25,
            flag: Some(true),
            text: Some("ünïcödé 'quoted'".into()),
            bytes: vec![0, 1, 255],
        },
        Everything {
            id: 2,
            small: None,
            big: 0,
            real: None,
            double: 0.0,
            flag: None,
            text: None,
            bytes: vec![],
        },
    ];
    for row in &rows {
        assert_eq!(&row.insert(&db).await.unwrap(), row);
        assert_eq!(
            Everything::get(&db, row.id).await.unwrap().as_ref(),
            Some(row)
        );
    }
    let mut changed = rows[1].clone();
    changed.text = Some("now set".into());
    changed.small = Some(3);
    assert!(changed.update(&db).await.unwrap());
    assert_eq!(Everything::get(&db, 2).await.unwrap(), Some(changed));
    assert!(Everything::delete(&db, 1).await.unwrap());
    assert_eq!(Everything::query().count(&db).await.unwrap(), 1);
    drop(db);
    fx.schemas.cleanup().await;
}

/// A type only a user-defined PostgreSQL type accepts.
#[derive(Debug)]
struct Mood;

impl ToSql for Mood {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(b"happy");
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        ty.name() == "mood"
    }
    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn unnamed_mode_refuses_a_parameter_without_a_builtin_type_before_sending_it() {
    let fx = fixture("pool_tx_untyped", StatementMode::Unnamed).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let db = fx.pool.get(&acme).await.unwrap();
    let template = tenant_runtime::sql::Template::builder()
        .sql("SELECT count(*) FROM ")
        .slot(Slot::Tenant)
        .sql(".notes WHERE id = $1 AND body = $2")
        .build();
    let err = db.fetch_all(&template, &[&1i64, &Mood]).await.unwrap_err();
    match &err {
        Error::UntypedParameter { position, detail } => {
            assert_eq!(*position, 2);
            assert!(detail.contains("Mood"), "{detail}");
        }
        other => panic!("expected UntypedParameter, got {other:?}"),
    }
    assert!(err.to_string().contains("StatementMode::Prepared"), "{err}");
    assert!(err.source().is_none());
    // Nothing reached the server: the connection is fine.
    assert_eq!(Note::query().count(&db).await.unwrap(), 0);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn unnamed_mode_leaves_no_prepared_statement_on_the_server() {
    let fx = fixture("pool_tx_no_named", StatementMode::Unnamed).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let mut db = fx.pool.get(&acme).await.unwrap();
    for i in 0..20 {
        let n = note(&format!("n{i}")).insert(&db).await.unwrap();
        Note::get(&db, n.id).await.unwrap().unwrap();
    }
    let tx = db.transaction().await.unwrap();
    Note::query()
        .order_by(Note::ID.asc())
        .fetch_all(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let named: i64 = server_prepared_statements(db.executor().as_tokio_postgres()).await;
    assert_eq!(named, 0);
    let stats = db.executor().statement_cache().stats();
    assert!(
        stats.hits > 0 && stats.renders <= 4,
        "SQL rendered once per template: {stats:?}"
    );
    drop(db);
    fx.schemas.cleanup().await;
}

async fn server_prepared_statements(pg: &tokio_postgres::Client) -> i64 {
    let messages = pg
        .simple_query("SELECT count(*) FROM pg_prepared_statements")
        .await
        .unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn unnamed_mode_runs_the_query_builder_and_the_query_macros() {
    let fx = fixture("pool_tx_unnamed_queries", StatementMode::Unnamed).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let globex = fx.allowlist.resolve("globex").unwrap();
    // One connection (max_size 1): globex's handle goes back before acme's is taken.
    note("globex only")
        .insert(&fx.pool.get(&globex).await.unwrap())
        .await
        .unwrap();
    let db = fx.pool.get(&acme).await.unwrap();
    for i in 1..=10 {
        note(&format!("acme {i}")).insert(&db).await.unwrap();
    }

    let picked = Note::query()
        .filter(Note::ID.in_list([2i64, 4, 6, 99]))
        .filter(Note::BODY.like("acme%"))
        .order_by(Note::ID.desc())
        .limit(2)
        .offset(1)
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(picked.iter().map(|n| n.id).collect::<Vec<_>>(), [4, 2]);
    assert!(Note::query()
        .filter(Note::ID.eq(10i64))
        .exists(&db)
        .await
        .unwrap());
    let updated = Note::query()
        .filter(Note::ID.le(3i64))
        .update()
        .set(Note::BODY, "early")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(updated, 3);
    let early: Vec<Note> = tenant_runtime::query_as!(
        Note,
        "SELECT {Note.*} FROM {Note} WHERE {Note.body} = $1 ORDER BY {Note.id}",
        "early"
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(early.len(), 3);
    let n: i64 = tenant_runtime::query_scalar!("SELECT count(*) FROM {Note}")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 10, "acme's rows only");
    assert_eq!(
        server_prepared_statements(db.executor().as_tokio_postgres()).await,
        0
    );
    drop(db);
    fx.schemas.cleanup().await;
}
