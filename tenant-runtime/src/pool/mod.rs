//! Pools and routing: [`TenantPool`] (pooled connections that any tenant may use, with
//! nothing of one tenant's session left for the next), read replicas ([`ReplicatedPool`]),
//! a database per tenant ([`TenantDatabases`]) and vertical partitioning ([`Partitions`]).

mod databases;
mod hand_off;
mod partition;
mod replica;
mod tenant_pool;

pub use databases::{
    DatabaseClient, DatabaseDb, DatabaseRegistry, DatabasesStats, TenantDatabases,
    TenantDatabasesBuilder,
};
pub use partition::Partitions;
pub use replica::{
    ReadBalance, ReplicaClient, ReplicaDb, ReplicatedPool, ReplicatedPoolBuilder, RoutedDb,
    ServedBy,
};
pub use tenant_pool::{PoolStatus, PooledClient, PooledDb, TenantPool, TenantPoolBuilder};
