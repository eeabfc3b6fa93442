//! Whole databases of their own on the shared server, for tests that route between databases.

use std::time::Duration;

use crate::schemas::make_prefix;
use crate::{database_url, try_connect_to};

/// How long dropping a test database may take.
const DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// A database created for one test (`CREATE DATABASE`, from `template0`, with a unique name
/// like the [`TestSchemas`](crate::TestSchemas) prefixes) and dropped at the end: call
/// [`drop_now`](Self::drop_now); if the test panics first, `Drop` drops it
/// (`DROP DATABASE … WITH (FORCE)`, which also ends sessions still connected).
///
/// Prefer [`create_on`](Self::create_on) the [`scratch_cluster`](crate::scratch_cluster):
/// `DROP DATABASE` forces a checkpoint, and on a busy shared server it waits for that.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    /// The URL of the database the test database was created from (on the same server).
    admin_url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates the database for test `name` (any text; sanitized and made unique) on the
    /// shared server. Panics if that fails.
    pub async fn create(name: &str) -> TestDatabase {
        TestDatabase::create_on(&database_url().await, name).await
    }

    /// Like [`create`](Self::create), on the server of `admin_url` (a URL of a database
    /// there to connect to, e.g. [`ThrowawayCluster::url`](crate::ThrowawayCluster::url)).
    pub async fn create_on(admin_url: &str, name: &str) -> TestDatabase {
        let admin_url = admin_url.to_owned();
        let name = make_prefix(name);
        let client = try_connect_to(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
        // template0 accepts no connections, so concurrent tests never block each other here.
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e:?}"));
        TestDatabase {
            name,
            admin_url,
            dropped: false,
        }
    }

    /// The database name (`t_<test>_<pid>_<unique>`, only `[a-z0-9_]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database: the server's URL with the database name replaced.
    pub fn url(&self) -> String {
        with_dbname(&self.admin_url, &self.name)
    }

    /// Like [`url`](Self::url), with `application_name` set (e.g. to tell pools apart in
    /// `pg_stat_activity`).
    pub fn url_with_application_name(&self, application_name: &str) -> String {
        let url = self.url();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}application_name={application_name}")
        } else {
            format!("{url} application_name={application_name}")
        }
    }

    /// Drops the database (ending any session still connected). Panics if that fails.
    pub async fn drop_now(mut self) {
        let result = drop_database(&self.admin_url, &self.name).await;
        match result {
            Ok(()) => self.dropped = true,
            Err(e) => panic!("dropping the database {} failed: {e}", self.name),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Typically the test panicked, maybe inside a runtime: work on a thread of our own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build a runtime: {e}"))?
                .block_on(drop_database(&url, &name))
        })
        .join()
        .unwrap_or_else(|_| Err("the cleanup thread panicked".to_owned()));
        if let Err(e) = outcome {
            eprintln!("warning: TestDatabase: could not drop {}: {e}", self.name);
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let work = async {
        let client = try_connect_to(admin_url)
            .await
            .map_err(|e| format!("cannot connect to {admin_url}: {e}"))?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .map_err(|e| format!("{e:?}"))
    };
    match tokio::time::timeout(DROP_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {DROP_TIMEOUT:?}")),
    }
}

/// `url` with its database name replaced by `dbname` (URL or `key=value` form).
fn with_dbname(url: &str, dbname: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let (main, query) = match rest.split_once('?') {
                Some((main, query)) => (main, Some(query)),
                None => (rest, None),
            };
            let authority = main.split_once('/').map_or(main, |(a, _)| a);
            return match query {
                Some(query) => format!("{scheme}{authority}/{dbname}?{query}"),
                None => format!("{scheme}{authority}/{dbname}"),
            };
        }
    }
    // key=value form: a later key overrides an earlier one.
    format!("{url} dbname={dbname}")
}

#[cfg(test)]
mod unit {
    use super::with_dbname;

    #[test]
    fn the_database_name_is_replaced_in_every_url_form() {
        assert_eq!(
            with_dbname("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_dbname("postgresql://u@h/db?sslmode=disable", "x"),
            "postgresql://u@h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_dbname("host=h user=u dbname=db", "x"),
            "host=h user=u dbname=db dbname=x"
        );
        let config: tokio_postgres::Config =
            with_dbname("host=h user=u dbname=db", "x").parse().unwrap();
        assert_eq!(config.get_dbname(), Some("x"));
    }
}
