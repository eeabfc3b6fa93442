//! A real PgBouncer in transaction pooling mode on loopback, in front of the test server.
//!
//! - The concurrent multi-tenant load through it in the unnamed (pooler-safe) statement mode:
//!   no errors, no row in another tenant's schema.
//! - Why the runtime never relies on `search_path`: a per-session `SET search_path` made by
//!   one client is seen by another client's transaction on the same server connection.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    assert_rows_in_their_schemas, create_tables, run_load, tenants, total, Item, LoadConfig,
};
use tenant_runtime::{Model, StatementMode, TenantPool};
use tenant_tests::{connect, connect_to, database_url, try_connect_to, TestSchemas};

/// A pgbouncer process of our own, killed (and its directory removed) on drop.
struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PgBouncer {
    /// The pgbouncer binary, if installed (`.ci/run` installs the Debian package).
    fn binary() -> Option<PathBuf> {
        let fixed = Path::new("/usr/sbin/pgbouncer");
        if fixed.exists() {
            return Some(fixed.to_owned());
        }
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("pgbouncer"))
                .find(|p| p.exists())
        })
    }

    /// Starts pgbouncer in transaction pooling mode on a free loopback port, in front of the
    /// database of `url`, with at most `server_connections` server connections. `None` (with
    /// the reason printed) only if pgbouncer is not installed.
    async fn start(url: &str, server_connections: usize) -> Option<PgBouncer> {
        let Some(binary) = PgBouncer::binary() else {
            println!("SKIPPED: pgbouncer is not installed (apt-get install pgbouncer)");
            return None;
        };
        let config: tokio_postgres::Config = url.parse().unwrap();
        let server_port = config.get_ports().first().copied().unwrap_or(5432);
        let dbname = config.get_dbname().unwrap_or("postgres").to_owned();

        let dir = std::env::temp_dir().join(format!(
            "tenant-pgbouncer-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\n\
                 {dbname} = host=127.0.0.1 port={server_port} dbname={dbname} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\n\
                 default_pool_size = {server_connections}\n\
                 max_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .unwrap();

        let mut command = Command::new(&binary);
        // pgbouncer refuses to run as root: run it as `postgres`, which must read its files.
        if unsafe_is_root() {
            chown_to_postgres(&dir);
            command.arg("-u").arg("postgres");
        }
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let bouncer = PgBouncer { child, dir, port };

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if try_connect_to(&bouncer.url()).await.is_ok() {
                return Some(bouncer);
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not accept connections on port {port}; its log:\n{}",
                bouncer.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown_to_postgres(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "no `postgres` OS user to run pgbouncer as"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    for entry in std::fs::read_dir(dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
    }
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
}

const TENANTS: usize = 50;
const TASKS: usize = 64;
const OPS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_load_through_transaction_pooling_has_no_errors_and_no_cross_tenant_rows() {
    let Some(bouncer) = PgBouncer::start(&database_url().await, 6).await else {
        return;
    };
    let schemas = TestSchemas::new("pgbouncer_load").await;
    let allowlist = tenants(|k| schemas.name(k), TENANTS);
    // More client connections than pgbouncer has server connections: consecutive
    // transactions of one client land on different server connections.
    let pool = TenantPool::builder(&bouncer.url())
        .unwrap()
        .max_size(16)
        .statement_mode(StatementMode::Unnamed)
        .wait_timeout(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    create_tables(&pool, &allowlist).await;

    let report = run_load(
        &pool,
        &allowlist,
        LoadConfig {
            tasks: TASKS,
            ops: OPS,
            seed: 0x00b0_0c3e,
            pause_after_error: None,
        },
    )
    .await;
    println!(
        "through pgbouncer (transaction pooling, 6 server connections, 16 clients): {} ops ok, \
         {} failed, {} statements, {} rows checked, {} wrong-tenant rows, {} inserts; \
         {TASKS} tasks, {TENANTS} tenants",
        report.ops_ok,
        report.ops_failed,
        report.statements,
        report.rows_checked,
        report.wrong_tenant_rows,
        total(&report.confirmed_inserts),
    );
    assert_eq!(
        report.ops_failed,
        0,
        "errors: {:?}\npgbouncer log:\n{}",
        report.sample_errors,
        bouncer.log()
    );
    assert_eq!(report.ops_ok, OPS as u64);
    assert_eq!(report.wrong_tenant_rows, 0);
    assert_eq!(report.confirmed_inserts, report.attempted_inserts);
    // Checked on the server itself, not through the pooler.
    assert_rows_in_their_schemas(&connect().await, &allowlist, &report).await;

    drop(pool);
    drop(bouncer);
    schemas.cleanup().await;
}

async fn show_search_path(client: &tokio_postgres::Client) -> String {
    client
        .query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_session_search_path_leaks_to_other_clients_through_transaction_pooling() {
    // One server connection: every client's transactions run on it, one after another.
    let Some(bouncer) = PgBouncer::start(&database_url().await, 1).await else {
        return;
    };
    let schemas = TestSchemas::new("pgbouncer_leak").await;
    let allowlist = tenants(|k| schemas.name(k), 2);
    let (a, b) = (
        allowlist.resolve("t000").unwrap(),
        allowlist.resolve("t001").unwrap(),
    );
    let pool = TenantPool::builder(&bouncer.url())
        .unwrap()
        .max_size(2)
        .statement_mode(StatementMode::Unnamed)
        .build()
        .unwrap();
    create_tables(&pool, &allowlist).await;
    for tenant in [&a, &b] {
        let db = pool.get(tenant).await.unwrap();
        Item {
            id: 0,
            tenant_key: tenant.key().to_owned(),
            seq: 1,
            payload: "only row".into(),
        }
        .insert(&db)
        .await
        .unwrap();
    }

    let client_a = connect_to(&bouncer.url()).await;
    let client_b = connect_to(&bouncer.url()).await;
    let default_path = show_search_path(&client_b).await;

    // Client A "selects its tenant" the way people do without this library.
    client_a
        .batch_execute(&format!("SET search_path TO {}", a.schema()))
        .await
        .unwrap();
    // Client B never set anything, yet its session now has A's search_path, and its
    // unqualified query reads A's rows.
    assert_eq!(show_search_path(&client_b).await, a.schema().as_str());
    let leaked: String = client_b
        .query_one("SELECT tenant_key FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        leaked,
        a.key(),
        "B read A's row through the leaked search_path"
    );
    // So does the runtime's own connection, but its statements name their schema: tenant B's
    // handle still reads B's rows, on the same leaky server connection.
    let db = pool.get(&b).await.unwrap();
    let rows = Item::query().fetch_all(&db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].tenant_key, b.key());
    drop(db);

    // The escape hatch does not leak: SET LOCAL ends with its transaction.
    client_a.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(show_search_path(&client_b).await, default_path);
    let mut db = pool.get(&a).await.unwrap();
    let tx = db.transaction().await.unwrap();
    tx.set_local_search_path(&[]).await.unwrap();
    let own: String = tx
        .executor()
        .as_tokio_postgres()
        .query_one("SELECT tenant_key FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, a.key());
    tx.commit().await.unwrap();
    drop(db);
    assert_eq!(show_search_path(&client_b).await, default_path);
    assert!(client_b
        .query("SELECT tenant_key FROM items", &[])
        .await
        .is_err());

    drop((client_a, client_b, pool, bouncer));
    schemas.cleanup().await;
}
