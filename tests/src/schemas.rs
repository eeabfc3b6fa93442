//! Unique per-test schema prefixes and their cleanup.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{database_url, try_connect_to};

/// Longest prefix [`TestSchemas::new`] makes, so that `<prefix>_<suffix>` stays within
/// PostgreSQL's 63-byte identifier limit for suffixes of up to 22 characters.
pub const MAX_PREFIX_LEN: usize = 40;
/// PostgreSQL's identifier length limit (NAMEDATALEN - 1).
const MAX_IDENT_LEN: usize = 63;
/// How long dropping a test's schemas may take in all, retries included.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(90);

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Prefixes of the live `TestSchemas` of this process, to never hand one out twice.
static LIVE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// A unique, valid schema-name prefix for one test:
/// `t_<testname-sanitized>_<pid>_<counter><random>`, only `[a-z0-9_]`, at most 40
/// characters, starting with a letter, so tests can append `_acme` etc.
/// and stay under 63 characters.
///
/// Every schema named `<prefix>` or `<prefix>_…` belongs to the test. Call
/// [`cleanup`](TestSchemas::cleanup) at the end of the test; if the test panics first, `Drop`
/// drops the schemas synchronously.
#[derive(Debug)]
pub struct TestSchemas {
    prefix: String,
    url: String,
    cleaned: bool,
}

impl TestSchemas {
    /// Creates the prefix for test `name` (any text; it is sanitized and shortened), on the
    /// database of [`database_url`], and registers it for cleanup.
    pub async fn new(name: &str) -> TestSchemas {
        let url = database_url().await;
        TestSchemas::for_url(&url, name)
    }

    /// Like [`new`](TestSchemas::new), for the database at `url` (e.g. a throwaway cluster).
    pub fn for_url(url: &str, name: &str) -> TestSchemas {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let live = live.get_or_insert_with(HashSet::new);
        loop {
            let prefix = make_prefix(name);
            if live.insert(prefix.clone()) {
                return TestSchemas {
                    prefix,
                    url: url.to_owned(),
                    cleaned: false,
                };
            }
        }
    }

    /// The prefix, e.g. `t_tenant_crud_4711_3k9x2q`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The database URL the schemas live in.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `<prefix>_<suffix>`. Panics unless `suffix` is non-empty, only `[a-z0-9_]`, and the
    /// result fits in 63 characters (such a bug would otherwise leak or clash schemas).
    pub fn name(&self, suffix: &str) -> String {
        assert!(
            !suffix.is_empty()
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "TestSchemas::name: suffix {suffix:?} must be non-empty [a-z0-9_]"
        );
        let name = format!("{}_{}", self.prefix, suffix);
        assert!(
            name.len() <= MAX_IDENT_LEN,
            "TestSchemas::name: {name:?} is longer than {MAX_IDENT_LEN} characters"
        );
        name
    }

    /// An allowlist of `keys`, each tenant in schema `<prefix>_<key>` (not created).
    pub fn allowlist(&self, keys: &[&str]) -> tenant_runtime::Allowlist {
        tenant_runtime::Allowlist::from_pairs(keys.iter().map(|k| (*k, self.name(k))))
            .expect("test tenant keys and schemas are valid")
    }

    /// A client on this database whose connection-level map sends the `shared` slot to
    /// `<prefix>_shared`, which it creates.
    pub async fn client_with_shared_slot(&self) -> tenant_runtime::Client {
        let shared = self.name("shared");
        let client = tenant_runtime::Client::connect(&self.url)
            .await
            .expect("connect")
            .with_schema_map(
                tenant_runtime::SchemaMap::new()
                    .with("shared", &shared)
                    .expect("valid slot and schema"),
            );
        client
            .as_tokio_postgres()
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{shared}\""))
            .await
            .expect("create the shared schema");
        client
    }

    /// Drops every schema named `<prefix>` or `<prefix>_…`, CASCADE. Call at the end of a
    /// test. Panics if that fails (the schemas would leak).
    pub async fn cleanup(mut self) {
        let result = drop_schemas(&self.url, &self.prefix).await;
        match result {
            Ok(()) => self.cleaned = true,
            // `Drop` tries once more, then the panic fails the test.
            Err(e) => panic!("dropping the schemas {}_* failed: {e}", self.prefix),
        }
    }
}

impl Drop for TestSchemas {
    fn drop(&mut self) {
        if !self.cleaned {
            // Typically the test panicked. We may be inside a (current-thread) runtime, so
            // do the work on a thread of our own with a runtime of its own, and wait for it.
            let url = self.url.clone();
            let prefix = self.prefix.clone();
            let worker = std::thread::Builder::new()
                .name(format!("drop-{prefix}"))
                .spawn(move || -> Result<(), String> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot build a runtime: {e}"))?;
                    runtime.block_on(drop_schemas(&url, &prefix))
                });
            let outcome = match worker {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err("the cleanup thread panicked".to_owned())),
                Err(e) => Err(format!("cannot spawn the cleanup thread: {e}")),
            };
            if let Err(e) = outcome {
                eprintln!(
                    "warning: TestSchemas: could not drop the schemas {}_*: {e}",
                    self.prefix
                );
            }
        }
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = live.as_mut() {
            live.remove(&self.prefix);
        }
    }
}

/// `t_<name>_<pid>_<counter><random>`, see [`TestSchemas`].
pub(crate) fn make_prefix(name: &str) -> String {
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(counter);
    hasher.write_u32(pid);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    let random = hasher.finish();
    // Five base-36 digits of randomness: the pid may be reused by a later run.
    let tail = format!(
        "_{pid}_{}{}",
        base36(counter),
        &format!("{:0>5}", base36(random % 36u64.pow(5)))
    );

    let mut sanitized = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if c == '_' && (sanitized.is_empty() || sanitized.ends_with('_')) {
            continue;
        }
        sanitized.push(c);
    }
    let budget = MAX_PREFIX_LEN.saturating_sub(2 + tail.len()).max(1);
    sanitized.truncate(budget);
    let sanitized = sanitized.trim_end_matches('_');
    let sanitized = if sanitized.is_empty() { "x" } else { sanitized };

    let prefix = format!("t_{sanitized}{tail}");
    debug_assert!(prefix.len() <= MAX_PREFIX_LEN, "{prefix}");
    prefix
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// The server's message for database errors (`Display` only says "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// Double-quotes an identifier for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Schemas named `prefix` or `prefix_…` (`$1` = prefix, `$2` = `prefix_`).
const OWN_SCHEMAS: &str = "SELECT nspname::text FROM pg_namespace \
     WHERE nspname = $1 OR left(nspname, length($2)) = $2 ORDER BY nspname";

/// Backends (other than ours) holding locks on the schemas or on relations in them.
const LOCK_HOLDERS: &str = "SELECT DISTINCT l.pid FROM pg_locks l \
     JOIN pg_namespace n ON n.nspname = $1 OR left(n.nspname, length($2)) = $2 \
     LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation \
     WHERE l.pid <> pg_backend_pid() AND l.granted \
       AND l.database IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) \
       AND (c.relnamespace = n.oid \
            OR (l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass \
                AND l.objid = n.oid))";

/// Drops the schemas of `prefix` one at a time (to keep the number of locks one
/// transaction takes small). If they are locked, e.g. by an open transaction of the test
/// that panicked (whose connection tasks cannot run while we wait), the backends holding
/// those locks are this test's own: they are terminated and the drop retried.
async fn drop_schemas(url: &str, prefix: &str) -> Result<(), String> {
    let work = async {
        let client = try_connect_to(url)
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        client
            .batch_execute("SET lock_timeout = '3s'; SET statement_timeout = '60s'")
            .await
            .map_err(|e| describe(&e))?;
        let prefix_ = format!("{prefix}_");
        let mut attempts = 0;
        loop {
            let rows = client
                .query(OWN_SCHEMAS, &[&prefix, &prefix_])
                .await
                .map_err(|e| format!("listing the schemas: {}", describe(&e)))?;
            let mut failed = None;
            for row in rows {
                let schema: String = row.get(0);
                let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&schema));
                if let Err(e) = client.batch_execute(&sql).await {
                    failed = Some(format!("{sql}: {}", describe(&e)));
                    break;
                }
            }
            let Some(error) = failed else {
                return Ok(());
            };
            attempts += 1;
            if attempts >= 4 {
                return Err(error);
            }
            let holders = client
                .query(LOCK_HOLDERS, &[&prefix, &prefix_])
                .await
                .map_err(|e| format!("{error}; then listing lock holders: {}", describe(&e)))?;
            for row in holders {
                let pid: i32 = row.get(0);
                let _ = client
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    match tokio::time::timeout(CLEANUP_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {CLEANUP_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn prefixes_are_valid_and_short() {
        for name in [
            "",
            "a",
            "Some::Module::test_Name-with spaces",
            "1starts_with_digit",
            "____",
            "a_very_long_test_name_that_goes_on_and_on_and_on_forever_and_ever",
            "ünïcödé",
        ] {
            let p = make_prefix(name);
            assert!(p.len() <= MAX_PREFIX_LEN, "{p}");
            assert!(p.starts_with("t_"), "{p}");
            assert!(
                p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{p}"
            );
            assert!(!p.contains("__"), "{p}");
        }
        assert_ne!(make_prefix("same"), make_prefix("same"));
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
