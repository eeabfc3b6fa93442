//! Tests of the test harness itself (`tenant_tests`).

use tenant_tests::{connect, connect_to, TestSchemas, ThrowawayCluster};
use tokio_postgres::Client;

async fn schemas_with_prefix(client: &Client, prefix: &str) -> Vec<String> {
    client
        .query(
            "SELECT nspname::text FROM pg_namespace \
             WHERE left(nspname, length($1)) = $1 ORDER BY 1",
            &[&prefix],
        )
        .await
        .expect("querying pg_namespace")
        .into_iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn prefixes_are_distinct_and_valid() {
    let a = TestSchemas::new("harness::prefixes_are_distinct").await;
    let b = TestSchemas::new("harness::prefixes_are_distinct").await;
    assert_ne!(a.prefix(), b.prefix());
    for p in [a.prefix(), b.prefix()] {
        assert!(p.len() <= 40, "{p}");
        assert!(p.starts_with("t_harness_prefixes_"), "{p}");
        assert!(p
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
    }
    assert!(!b.prefix().starts_with(&format!("{}_", a.prefix())));
    assert_eq!(a.name("acme"), format!("{}_acme", a.prefix()));
    a.cleanup().await;
    b.cleanup().await;
}

#[tokio::test]
async fn cleanup_drops_the_schemas_and_only_those() {
    let client = connect().await;
    let mine = TestSchemas::new("harness cleanup").await;
    let other = TestSchemas::new("harness cleanup").await;
    for schema in [mine.name("acme"), mine.name("globex"), other.name("acme")] {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; CREATE TABLE {schema}.items (id int PRIMARY KEY)"
            ))
            .await
            .unwrap();
    }
    let prefix = mine.prefix().to_owned();
    assert_eq!(schemas_with_prefix(&client, &prefix).await.len(), 2);

    mine.cleanup().await;
    assert!(schemas_with_prefix(&client, &prefix).await.is_empty());
    assert_eq!(
        schemas_with_prefix(&client, other.prefix()).await,
        vec![other.name("acme")]
    );
    other.cleanup().await;
}

#[tokio::test]
async fn drop_without_cleanup_drops_the_schemas() {
    let client = connect().await;
    let schemas = TestSchemas::new("harness_drop").await;
    let prefix = schemas.prefix().to_owned();
    client
        .batch_execute(&format!("CREATE SCHEMA {}", schemas.name("a")))
        .await
        .unwrap();
    assert_eq!(schemas_with_prefix(&client, &prefix).await.len(), 1);
    drop(schemas);
    assert!(schemas_with_prefix(&client, &prefix).await.is_empty());
}

#[tokio::test]
async fn drop_after_a_panic_drops_schemas_locked_by_an_open_transaction() {
    let url = tenant_tests::database_url().await;
    let check = connect().await;
    let prefix = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = prefix.clone();
    // A test that panics with a transaction open on its schema: its runtime cannot run the
    // connection task while `Drop` waits, so the backend keeps its locks.
    let outcome = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let schemas = TestSchemas::new("harness_panic").await;
                *seen.lock().unwrap() = schemas.prefix().to_owned();
                let client = connect_to(&url).await;
                let s = schemas.name("x");
                client
                    .batch_execute(&format!("CREATE SCHEMA {s}; CREATE TABLE {s}.t (id int)"))
                    .await
                    .unwrap();
                client
                    .batch_execute(&format!("BEGIN; LOCK TABLE {s}.t IN ACCESS EXCLUSIVE MODE"))
                    .await
                    .unwrap();
                panic!("test failure while holding a lock");
            })
    })
    .join();
    assert!(outcome.is_err());
    let prefix = prefix.lock().unwrap().clone();
    assert!(!prefix.is_empty());
    assert!(schemas_with_prefix(&check, &prefix).await.is_empty());
}

#[tokio::test]
async fn throwaway_cluster_starts_restarts_and_cleans_up() {
    let cluster = tokio::task::spawn_blocking(ThrowawayCluster::start)
        .await
        .unwrap()
        .expect("starting a throwaway cluster");
    assert_eq!(
        cluster.url(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port())
    );
    let data_dir = cluster.data_dir().to_path_buf();
    assert!(data_dir.join("PG_VERSION").exists());

    let client = connect_to(&cluster.url()).await;
    let row = client.query_one("SELECT 1 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
        .await
        .unwrap();

    cluster.append_config("max_connections = 42").unwrap();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart().expect("restarting");
        cluster
    })
    .await
    .unwrap();
    // The old connection is gone; a new one works and sees the data and the new setting.
    assert!(client.query_one("SELECT 1", &[]).await.is_err());
    let client = connect_to(&cluster.url()).await;
    let v: String = client
        .query_one("SELECT v FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "survives");
    let max: String = client
        .query_one("SHOW max_connections", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max, "42");

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().expect("stopping");
        cluster.start_again().expect("starting again");
        cluster
    })
    .await
    .unwrap();
    connect_to(&cluster.url()).await;

    drop(client);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
}
