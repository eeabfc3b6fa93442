//! Read replicas: a real streaming replica on loopback (reads served by it, writes and
//! transactions by the primary), and the choice among replicas (round robin, least busy,
//! skipping a down replica, falling back to the primary or refusing to).

use std::time::Duration;

use tenant_runtime::pool::{ReadBalance, ReplicatedPool, ServedBy};
use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Db, Error, Executor, Model, Slot, TenantPool};
use tenant_tests::{database_url, ThrowawayCluster};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    amount_cents: i64,
    note: Option<String>,
}

fn sql(text: &'static str) -> Template {
    Template::builder().sql(text).build()
}

async fn in_recovery<E: Executor>(db: &Db<E>) -> bool {
    let row = db
        .fetch_one(&sql("SELECT pg_is_in_recovery()"), &[])
        .await
        .unwrap();
    row.get(0)
}

async fn server_port<E: Executor>(db: &Db<E>) -> u16 {
    let row = db
        .fetch_one(&sql("SELECT inet_server_port()"), &[])
        .await
        .unwrap();
    row.get::<_, i32>(0) as u16
}

async fn backend_pid<E: Executor>(db: &Db<E>) -> i32 {
    let row = db
        .fetch_one(&sql("SELECT pg_backend_pid()"), &[])
        .await
        .unwrap();
    row.get(0)
}

async fn application_name<E: Executor>(db: &Db<E>) -> String {
    let row = db
        .fetch_one(&sql("SELECT current_setting('application_name')"), &[])
        .await
        .unwrap();
    row.get(0)
}

async fn sorted_invoices<E: Executor>(db: &Db<E>) -> Vec<Invoice> {
    let mut rows = Invoice::query()
        .order_by(Invoice::ID.asc())
        .fetch_all(db)
        .await
        .unwrap();
    rows.sort_by_key(|i| i.id);
    rows
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The clusters are started and stopped on this (plain test) thread, never on a runtime
/// thread, and dropped (stopped, directories removed) even when an assertion fails.
#[test]
fn a_real_streaming_replica_serves_reads_while_writes_and_transactions_stay_on_the_primary() {
    let primary = ThrowawayCluster::start_primary().expect("start the primary");
    let standby = ThrowawayCluster::start_standby_of(&primary).expect("start the standby");
    runtime().block_on(async {
        standby.wait_for_replay(&primary).await.unwrap();

        let pool = ReplicatedPool::builder(
            TenantPool::builder(&primary.url())
                .unwrap()
                .max_size(4)
                .build()
                .unwrap(),
        )
        .replica(
            TenantPool::builder(&standby.url())
                .unwrap()
                .max_size(4)
                .wait_timeout(Some(Duration::from_secs(5)))
                .build()
                .unwrap(),
        )
        // Reads must be served by the replica or fail: no silent fallback in this test.
        .fallback_to_primary(false)
        .build()
        .unwrap();
        let allowlist =
            Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")]).unwrap();
        let (acme, globex) = (
            allowlist.resolve("acme").unwrap(),
            allowlist.resolve("globex").unwrap(),
        );

        // Writes go to the primary.
        let mut written = Vec::new();
        for (tenant, count) in [(&acme, 5), (&globex, 3)] {
            let db = pool.get(tenant).await.unwrap();
            assert!(!in_recovery(&db).await, "the write handle is on a standby");
            assert_eq!(server_port(&db).await, primary.port());
            db.create_schema().await.unwrap();
            Invoice::create_table(&db).await.unwrap();
            let mut rows = Vec::new();
            for i in 0..count {
                let saved = Invoice {
                    id: 0,
                    amount_cents: 100 * (i + 1),
                    note: Some(format!("{} #{i}", tenant.key())),
                }
                .insert(&db)
                .await
                .unwrap();
                rows.push(saved);
            }
            written.push(rows);
        }

        // Reads asked for the replica are served by it, in the tenant's schema, in one call,
        // and see the primary's rows once the standby has replayed them.
        standby.wait_for_replay(&primary).await.unwrap();
        let acme_read = pool.read(&acme).await.unwrap();
        assert_eq!(acme_read.executor().served_by(), ServedBy::Replica(0));
        assert!(
            in_recovery(&acme_read).await,
            "the read handle is not on the standby"
        );
        assert_eq!(server_port(&acme_read).await, standby.port());
        assert_eq!(sorted_invoices(&acme_read).await, written[0]);
        let globex_read = pool.read(&globex).await.unwrap();
        assert_eq!(sorted_invoices(&globex_read).await, written[1]);

        // A hand-written write read as rows through a replica handle reaches only the
        // standby, which refuses it (`execute` and model writes on a replica handle do not
        // even compile; see tests/ui/cases/routing/).
        let raw_insert = Template::builder()
            .sql("INSERT INTO ")
            .slot(Slot::Tenant)
            .sql(".\"invoices\" (amount_cents) VALUES (1)")
            .build();
        let refused = acme_read.fetch_all(&raw_insert, &[]).await.unwrap_err();
        assert_eq!(refused.sqlstate(), Some("25006"), "{refused}");
        drop((acme_read, globex_read));

        // One request, per-statement choice; the transaction stays on the primary.
        let mut routed = pool.route(&acme);
        let replica_pid = backend_pid(routed.read().await.unwrap()).await;
        assert!(in_recovery(routed.read().await.unwrap()).await);
        assert_eq!(
            backend_pid(routed.read().await.unwrap()).await,
            replica_pid,
            "a RoutedDb checks its replica connection out once"
        );
        let primary_pid = backend_pid(routed.primary().await.unwrap()).await;
        assert!(!in_recovery(routed.primary().await.unwrap()).await);

        let tx = routed.transaction().await.unwrap();
        assert!(!in_recovery(&tx).await, "the transaction runs on a standby");
        assert_eq!(server_port(&tx).await, primary.port());
        assert_eq!(backend_pid(&tx).await, primary_pid);
        let in_tx = Invoice {
            id: 0,
            amount_cents: 4200,
            note: Some("in a transaction".into()),
        }
        .insert(&tx)
        .await
        .unwrap();
        // Reads inside the transaction see its own uncommitted write: same primary session.
        assert_eq!(Invoice::query().count(&tx).await.unwrap(), 6);
        assert_eq!(
            Invoice::get(&tx, in_tx.id).await.unwrap().as_ref(),
            Some(&in_tx)
        );
        tx.commit().await.unwrap();

        let mut expected = written[0].clone();
        expected.push(in_tx);
        standby.wait_for_replay(&primary).await.unwrap();
        assert_eq!(
            sorted_invoices(routed.read().await.unwrap()).await,
            expected
        );
        drop(routed);

        // Everything went back to its pool.
        let (p, r) = (pool.primary().status(), pool.replica(0).unwrap().status());
        assert_eq!((p.size - p.available, r.size - r.available), (0, 0));
    });
}

/// Replica pools on the shared server, told apart by `application_name`.
fn pool_with_replicas(names: &[&str], url: &str) -> tenant_runtime::pool::ReplicatedPoolBuilder {
    let with_name = |name: &str| {
        TenantPool::builder(&format!("{url}?application_name={name}"))
            .unwrap()
            .max_size(2)
            .wait_timeout(Some(Duration::from_secs(5)))
            .build()
            .unwrap()
    };
    let mut builder = ReplicatedPool::builder(with_name("primary"));
    for name in names {
        builder = builder.replica(with_name(name));
    }
    builder
}

/// A URL where nothing listens: a port that was free a moment ago.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2")
}

fn tenant() -> tenant_runtime::Tenant {
    Allowlist::from_pairs([("acme", "tenant_acme")])
        .unwrap()
        .resolve("acme")
        .unwrap()
}

#[tokio::test]
async fn round_robin_sends_each_read_to_the_next_replica() {
    let url = database_url().await;
    let pool = pool_with_replicas(&["replica0", "replica1"], &url)
        .build()
        .unwrap();
    let acme = tenant();
    let mut served = Vec::new();
    for _ in 0..6 {
        let db = pool.read(&acme).await.unwrap();
        let ServedBy::Replica(index) = db.executor().served_by() else {
            panic!("served by the primary")
        };
        assert_eq!(application_name(&db).await, format!("replica{index}"));
        served.push(index);
    }
    assert_eq!(served, [0, 1, 0, 1, 0, 1]);
    assert_eq!(
        application_name(&pool.get(&acme).await.unwrap()).await,
        "primary"
    );
}

#[tokio::test]
async fn least_busy_sends_reads_to_the_replica_with_fewest_connections_out() {
    let url = database_url().await;
    let pool = pool_with_replicas(&["replica0", "replica1"], &url)
        .balance(ReadBalance::LeastBusy)
        .build()
        .unwrap();
    let acme = tenant();
    let served = |db: &tenant_runtime::pool::ReplicaDb| db.executor().served_by();

    let first = pool.read(&acme).await.unwrap();
    let ServedBy::Replica(busy) = served(&first) else {
        panic!("served by the primary")
    };
    let other = 1 - busy;
    // While `first` is out, every read goes to the other replica, whatever the turn.
    for _ in 0..4 {
        let db = pool.read(&acme).await.unwrap();
        assert_eq!(served(&db), ServedBy::Replica(other));
    }
    let second = pool.read(&acme).await.unwrap();
    assert_eq!(served(&second), ServedBy::Replica(other));
    drop(first);
    // Now `busy` has none out and `other` has one.
    for _ in 0..4 {
        let db = pool.read(&acme).await.unwrap();
        assert_eq!(served(&db), ServedBy::Replica(busy));
    }
    drop(second);
}

#[tokio::test]
async fn a_down_replica_is_skipped_and_reads_go_to_the_next_or_the_primary() {
    let url = database_url().await;
    let acme = tenant();
    let down = TenantPool::builder(&dead_url()).unwrap().build().unwrap();
    let up = TenantPool::builder(&format!("{url}?application_name=replica_up"))
        .unwrap()
        .build()
        .unwrap();
    let primary = TenantPool::builder(&url).unwrap().build().unwrap();

    // A down replica and an up one: every read is served by the up one.
    let pool = ReplicatedPool::builder(primary.clone())
        .replica(down.clone())
        .replica(up)
        .retry_replica_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..4 {
        let db = pool.read(&acme).await.unwrap();
        assert_eq!(db.executor().served_by(), ServedBy::Replica(1));
        assert_eq!(application_name(&db).await, "replica_up");
    }
    assert_eq!(pool.skipped_replicas(), [0]);

    // Only a down replica: reads fall back to the primary.
    let pool = ReplicatedPool::builder(primary)
        .replica(down)
        .retry_replica_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    let db = pool.read(&acme).await.unwrap();
    assert_eq!(db.executor().served_by(), ServedBy::Primary);
    assert!(!in_recovery(&db).await);
    assert_eq!(pool.skipped_replicas(), [0]);
}

#[tokio::test]
async fn without_fallback_a_read_no_replica_can_serve_is_a_typed_error_and_spares_the_primary() {
    let url = database_url().await;
    let primary = TenantPool::builder(&url).unwrap().build().unwrap();
    let pool = ReplicatedPool::builder(primary.clone())
        .replica(TenantPool::builder(&dead_url()).unwrap().build().unwrap())
        .fallback_to_primary(false)
        // Skipped replicas are still tried when there is nothing else.
        .retry_replica_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..2 {
        match pool.read(&tenant()).await {
            Err(Error::NoReplicaAvailable { replicas, last }) => {
                assert_eq!(replicas, 1);
                assert!(matches!(*last, Error::Db(_)), "{last:?}");
            }
            other => panic!("expected NoReplicaAvailable, got {other:?}"),
        }
    }
    assert_eq!(primary.status().size, 0, "the primary was used for a read");
}

#[tokio::test]
async fn without_replicas_reads_are_served_by_the_primary() {
    let url = database_url().await;
    let pool = ReplicatedPool::builder(TenantPool::builder(&url).unwrap().build().unwrap())
        .build()
        .unwrap();
    let db = pool.read(&tenant()).await.unwrap();
    assert_eq!(db.executor().served_by(), ServedBy::Primary);
    assert_eq!(pool.replica_count(), 0);
}

#[tokio::test]
async fn a_routed_handle_checks_each_side_out_once_and_returns_both() {
    let url = database_url().await;
    let pool = pool_with_replicas(&["replica0"], &url).build().unwrap();
    let routed = pool.route(&tenant());
    // Nothing is checked out before the first statement.
    assert_eq!(pool.primary().status().size, 0);
    assert_eq!(pool.replica(0).unwrap().status().size, 0);

    let read_pid = backend_pid(routed.read().await.unwrap()).await;
    let write_pid = backend_pid(routed.primary().await.unwrap()).await;
    assert_ne!(read_pid, write_pid);
    for _ in 0..3 {
        assert_eq!(backend_pid(routed.read().await.unwrap()).await, read_pid);
        assert_eq!(
            backend_pid(routed.primary().await.unwrap()).await,
            write_pid
        );
    }
    assert_eq!(
        application_name(routed.read().await.unwrap()).await,
        "replica0"
    );
    assert_eq!(
        application_name(routed.primary().await.unwrap()).await,
        "primary"
    );
    let (p, r) = (pool.primary().status(), pool.replica(0).unwrap().status());
    assert_eq!((p.size - p.available, r.size - r.available), (1, 1));

    drop(routed);
    let (p, r) = (pool.primary().status(), pool.replica(0).unwrap().status());
    assert_eq!((p.size - p.available, r.size - r.available), (0, 0));
}
