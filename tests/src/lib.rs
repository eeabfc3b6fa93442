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

mod databases;
mod schemas;

pub use databases::TestDatabase;
pub use schemas::TestSchemas;
pub use tenant_testing::{
    connect, connect_to, database_url, find_database, scratch_cluster, try_connect_to, NoDatabase,
    ThrowawayCluster, DEFAULT_DATABASE_URL,
};
