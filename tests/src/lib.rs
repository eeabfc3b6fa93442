//! Test harness for the `tenant` integration tests (`tests/tests/*.rs`).
//!
//! * [`database_url`] / [`connect`]: the shared PostgreSQL the tests use.
//! * [`TestSchemas`]: a unique schema-name prefix per test, dropped at the end, so tests
//!   run in parallel (threads and several test binaries at once) on one database.
//! * [`ThrowawayCluster`]: a PostgreSQL cluster of its own, for fault tests that kill
//!   backends or restart the server. Never do that to the shared server.
//!   [`ThrowawayCluster::start_primary`] / [`ThrowawayCluster::start_standby_of`] make a
//!   streaming-replication pair.
//! * [`TestDatabase`]: a database of its own, dropped at the end; on the shared server, or
//!   (better: `DROP DATABASE` forces a checkpoint, which a busy shared server may take a
//!   minute to finish) on the process-wide [`scratch_cluster`].

mod cluster;
mod databases;
mod schemas;

pub use cluster::ThrowawayCluster;
pub use databases::TestDatabase;
pub use schemas::TestSchemas;

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// The URL used when `$DATABASE_URL` is not set, if a server answers there.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static DATABASE_URL: OnceCell<String> = OnceCell::const_new();
/// The process-wide fallback cluster; stopped and deleted by an `atexit` hook.
static FALLBACK_CLUSTER: OnceLock<ThrowawayCluster> = OnceLock::new();
/// The process-wide scratch cluster; stopped and deleted by an `atexit` hook.
static SCRATCH_CLUSTER: OnceLock<ThrowawayCluster> = OnceLock::new();

/// The database URL tests use: `$DATABASE_URL`, else
/// `postgres://postgres@127.0.0.1:5432/postgres` if reachable, else a throwaway cluster
/// started once per process (see [`ThrowawayCluster`]) whose URL is returned.
///
/// The answer is computed once per process and cached. Panics if no database can be had.
pub async fn database_url() -> String {
    DATABASE_URL
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                if !url.trim().is_empty() {
                    return url;
                }
            }
            if reachable(DEFAULT_DATABASE_URL).await {
                return DEFAULT_DATABASE_URL.to_owned();
            }
            start_fallback_cluster().await
        })
        .await
        .clone()
}

/// Connects to [`database_url`] with `tokio_postgres::NoTls`, spawns the connection task on
/// the current runtime and returns the client. Panics if the connection fails.
pub async fn connect() -> Client {
    connect_to(&database_url().await).await
}

/// Like [`connect`], for any URL (e.g. [`ThrowawayCluster::url`]). Panics on failure.
pub async fn connect_to(url: &str) -> Client {
    match try_connect_to(url).await {
        Ok(client) => client,
        Err(e) => panic!("cannot connect to {url}: {e}"),
    }
}

/// Like [`connect_to`], returning the error instead of panicking (10 s connect timeout).
pub async fn try_connect_to(url: &str) -> Result<Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Errors here are the server going away (e.g. fault tests); the client reports them.
        let _ = connection.await;
    });
    Ok(client)
}

/// Whether a server accepts a trusted connection at `url` within a few seconds.
async fn reachable(url: &str) -> bool {
    let Ok(mut config) = url.parse::<tokio_postgres::Config>() else {
        return false;
    };
    config.connect_timeout(Duration::from_secs(3));
    let attempt = async {
        let (client, connection) = config.connect(NoTls).await?;
        let task = tokio::spawn(connection);
        let ok = client.simple_query("SELECT 1").await.map(|_| ());
        drop(client);
        let _ = task.await;
        ok
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), attempt).await,
        Ok(Ok(()))
    )
}

async fn start_fallback_cluster() -> String {
    let started = tokio::task::spawn_blocking(ThrowawayCluster::start)
        .await
        .expect("the thread starting the throwaway cluster panicked");
    let cluster = match started {
        Ok(cluster) => cluster,
        Err(e) => panic!(
            "no database for the tests: DATABASE_URL is not set, nothing answers at \
             {DEFAULT_DATABASE_URL}, and a throwaway cluster could not be started: {e}"
        ),
    };
    let url = cluster.url();
    if FALLBACK_CLUSTER.set(cluster).is_ok() {
        extern "C" fn stop_fallback_cluster() {
            if let Some(cluster) = FALLBACK_CLUSTER.get() {
                cluster.teardown();
            }
        }
        // SAFETY: registering a plain `extern "C"` function without arguments.
        unsafe {
            libc::atexit(stop_fallback_cluster);
        }
    }
    url
}

/// A throwaway cluster shared by the tests of this process (one test binary), for tests that
/// create whole databases ([`TestDatabase::create_on`]): creating and dropping databases
/// there never waits on the shared server's checkpoints. Started on first use, off the
/// async runtime threads; stopped and deleted when the process exits. Panics if it cannot
/// be started.
pub async fn scratch_cluster() -> &'static ThrowawayCluster {
    tokio::task::spawn_blocking(|| {
        SCRATCH_CLUSTER.get_or_init(|| {
            let cluster = ThrowawayCluster::start()
                .unwrap_or_else(|e| panic!("cannot start the scratch cluster: {e}"));
            extern "C" fn stop_scratch_cluster() {
                if let Some(cluster) = SCRATCH_CLUSTER.get() {
                    cluster.teardown();
                }
            }
            // SAFETY: registering a plain `extern "C"` function without arguments.
            unsafe {
                libc::atexit(stop_scratch_cluster);
            }
            cluster
        })
    })
    .await
    .expect("the thread starting the scratch cluster panicked")
}
