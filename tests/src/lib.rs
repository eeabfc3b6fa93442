//! Test harness for the `tenant` integration tests (`tests/tests/*.rs`).
//!
//! * [`database_url`] / [`connect`]: the shared PostgreSQL the tests use.
//! * [`TestSchemas`]: a unique schema-name prefix per test, dropped at the end, so tests
//!   run in parallel (threads and several test binaries at once) on one database.
//! * [`ThrowawayCluster`]: a PostgreSQL cluster of its own, for fault tests that kill
//!   backends or restart the server. Never do that to the shared server.
//!   [`ThrowawayCluster::start_primary`] / [`ThrowawayCluster::start_standby_of`] make a
//!   streaming-replication pair.
//! * [`Cli`]: runs a `tenant` binary as a child process; [`Run`]: how it ended.
//! * [`TestDatabase`]: a database of its own, dropped at the end; on the shared server, or
//!   (better: `DROP DATABASE` forces a checkpoint, which a busy shared server may take a
//!   minute to finish) on the process-wide [`scratch_cluster`].

mod cli;
mod databases;
mod schemas;

pub use cli::{fresh_copy, Cli, Run};
pub use databases::TestDatabase;
pub use schemas::TestSchemas;
pub use tenant_testing::{
    connect, connect_to, database_url, find_database, scratch_cluster, try_connect_to, NoDatabase,
    ThrowawayCluster, DEFAULT_DATABASE_URL,
};
