//! A PostgreSQL to test against, the same way for tenant's own tests, its examples and the
//! test suites of applications built on it:
//!
//! 1. `$DATABASE_URL`, if set;
//! 2. else `postgres://postgres@127.0.0.1:5432/postgres`, if a server answers there with
//!    trust auth;
//! 3. else a [`ThrowawayCluster`] started from the PostgreSQL binaries on `PATH` (or in
//!    `/usr/lib/postgresql/*/bin`), stopped and deleted when the process exits.
//!
//! [`database_url`] panics when none of the three works (right for a test);
//! [`find_database`] returns [`NoDatabase`], whose message names the three ways (right
//! for an example's `main`).
//!
//! ```no_run
//! # async fn run() {
//! let url = tenant_testing::database_url().await;
//! let client = tenant_testing::connect_to(&url).await;
//! let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
//! assert_eq!(one, 1);
//! # }
//! ```
//!
//! With the feature `migrations`, `assert_migrations_build` fails a test when an application's
//! migrations directory does not build exactly its models (a forgotten migration).

mod cluster;

pub use cluster::ThrowawayCluster;

// A test helper over the runtime's migrations and models (feature `migrations`).
#[cfg(feature = "migrations")]
mod migrations;
#[cfg(feature = "migrations")]
pub use migrations::assert_migrations_build;

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// The URL used when `$DATABASE_URL` is not set, if a server answers there.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static DATABASE_URL: OnceCell<Result<String, NoDatabase>> = OnceCell::const_new();
/// The process-wide fallback cluster; stopped and deleted by an `atexit` hook.
static FALLBACK_CLUSTER: OnceLock<ThrowawayCluster> = OnceLock::new();
/// The process-wide scratch cluster; stopped and deleted by an `atexit` hook.
static SCRATCH_CLUSTER: OnceLock<ThrowawayCluster> = OnceLock::new();

/// Why no database could be found: `DATABASE_URL` is not set, nothing answers at
/// [`DEFAULT_DATABASE_URL`], and no throwaway cluster could be started.
///
/// ```
/// # fn show(e: &tenant_testing::NoDatabase) -> String {
/// e.to_string() // "no PostgreSQL to use: set DATABASE_URL, or run a server ... , or put ..."
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NoDatabase {
    cluster_error: String,
}

impl fmt::Display for NoDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no PostgreSQL to use: set DATABASE_URL, or run a server that trusts user postgres \
             at 127.0.0.1:5432, or put the PostgreSQL server binaries (initdb, pg_ctl) on PATH \
             for a throwaway cluster (starting one failed: {})",
            self.cluster_error
        )
    }
}

impl std::error::Error for NoDatabase {}

/// The database URL to use: `$DATABASE_URL`, else
/// `postgres://postgres@127.0.0.1:5432/postgres` if reachable, else a throwaway cluster
/// started once per process (see [`ThrowawayCluster`]) whose URL is returned. The cluster
/// is stopped and deleted when the process exits.
///
/// The answer is computed once per process and cached. Panics if no database can be had
/// (see [`find_database`] for the same without a panic).
///
/// ```no_run
/// # async fn run() {
/// let url = tenant_testing::database_url().await;
/// assert!(url.starts_with("postgres://"));
/// # }
/// ```
pub async fn database_url() -> String {
    match find_database().await {
        Ok(url) => url,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`database_url`], returning [`NoDatabase`] (whose message names the three ways to
/// provide a database) instead of panicking.
///
/// ```no_run
/// # async fn run() -> Result<(), tenant_testing::NoDatabase> {
/// let url = tenant_testing::find_database().await?;
/// # Ok(()) }
/// ```
pub async fn find_database() -> Result<String, NoDatabase> {
    DATABASE_URL
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                if !url.trim().is_empty() {
                    return Ok(url);
                }
            }
            if reachable(DEFAULT_DATABASE_URL).await {
                return Ok(DEFAULT_DATABASE_URL.to_owned());
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
///
/// ```no_run
/// # async fn run() {
/// let up = tenant_testing::reachable("postgres://postgres@127.0.0.1:5432/postgres").await;
/// # }
/// ```
pub async fn reachable(url: &str) -> bool {
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

async fn start_fallback_cluster() -> Result<String, NoDatabase> {
    let started = tokio::task::spawn_blocking(ThrowawayCluster::start)
        .await
        .expect("the thread starting the throwaway cluster panicked");
    let cluster = started.map_err(|e| NoDatabase {
        cluster_error: e.to_string(),
    })?;
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
    Ok(url)
}

/// A throwaway cluster shared by the tests of this process (one test binary), for tests that
/// create whole databases (`TestDatabase::create_on` in tenant's own harness): creating and dropping databases
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
