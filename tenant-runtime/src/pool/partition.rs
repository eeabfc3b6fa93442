//! Vertical partitioning: some models live in another database (an analytics or audit
//! server, say), declared once; handles for a model follow the declaration.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;

use crate::door::Tenant;
use crate::error::Result;
use crate::model::Model;
use crate::pool::{PooledDb, TenantPool};

/// Which pool each model lives on: a default pool, and the models placed elsewhere.
///
/// Declared once at start-up; then [`get::<M>`](Self::get) gives a handle on the pool of
/// model `M`, so its generated CRUD and queries run where its table is. A model that was not
/// placed lives on the default pool. In every database the tenant's tables are in the
/// tenant's schema, as usual.
///
/// A transaction covers one pool: models that must change together in one transaction (or
/// reference each other with foreign keys, or be joined in one query) belong on the same
/// pool. Cloning is cheap and shares the pools.
///
/// ```no_run
/// use tenant_runtime::pool::Partitions;
/// use tenant_runtime::{Allowlist, Model, TenantPool};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "audit_events")]
/// struct AuditEvent { #[tenant(primary_key, identity)] id: i64, what: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let partitions = Partitions::new(TenantPool::builder("postgres://app@oltp/app")?.build()?)
///     .place::<AuditEvent>(TenantPool::builder("postgres://app@analytics/app")?.build()?);
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
///
/// Invoice { id: 0, amount_cents: 1200 }.insert(&partitions.get::<Invoice>(&acme).await?).await?;   // oltp
/// AuditEvent { id: 0, what: "invoice created".into() }
///     .insert(&partitions.get::<AuditEvent>(&acme).await?)                                          // analytics
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Partitions {
    default: TenantPool,
    placed: HashMap<TypeId, Placement>,
}

#[derive(Clone)]
struct Placement {
    model: &'static str,
    pool: TenantPool,
}

impl Partitions {
    /// Every model on `default`, until placed elsewhere.
    ///
    /// ```
    /// # use tenant_runtime::pool::Partitions;
    /// # use tenant_runtime::{Model, TenantPool};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// let partitions = Partitions::new(TenantPool::builder("postgres://app@oltp/app")?.build()?);
    /// assert!(!partitions.is_placed::<Note>());
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn new(default: TenantPool) -> Partitions {
        Partitions {
            default,
            placed: HashMap::new(),
        }
    }

    /// Places model `M` on `pool`. Placing a model again moves it (the last placement wins).
    ///
    /// ```
    /// # use tenant_runtime::pool::Partitions;
    /// # use tenant_runtime::{Model, TenantPool};
    /// # #[derive(Model)] #[tenant(table = "audit_events")] struct AuditEvent { #[tenant(primary_key)] id: i64 }
    /// let partitions = Partitions::new(TenantPool::builder("postgres://app@oltp/app")?.build()?)
    ///     .place::<AuditEvent>(TenantPool::builder("postgres://app@analytics/app")?.build()?);
    /// assert!(partitions.is_placed::<AuditEvent>());
    /// assert_eq!(partitions.placed_models(), ["AuditEvent"]);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn place<M: Model>(mut self, pool: TenantPool) -> Partitions {
        self.placed.insert(
            TypeId::of::<M>(),
            Placement {
                model: M::NAME,
                pool,
            },
        );
        self
    }

    /// A handle for `tenant` on the pool model `M` lives on; the connection goes back when the
    /// handle is dropped. Use it for `M`'s CRUD and queries (and for any model on the same pool).
    pub async fn get<M: Model>(&self, tenant: &Tenant) -> Result<PooledDb> {
        self.pool_for::<M>().get(tenant).await
    }

    /// The pool model `M` lives on.
    pub fn pool_for<M: Model>(&self) -> &TenantPool {
        self.placed
            .get(&TypeId::of::<M>())
            .map_or(&self.default, |p| &p.pool)
    }

    /// Whether `M` was placed on a pool other than the default.
    pub fn is_placed<M: Model>(&self) -> bool {
        self.placed.contains_key(&TypeId::of::<M>())
    }

    /// The default pool.
    pub fn default_pool(&self) -> &TenantPool {
        &self.default
    }

    /// The names of the placed models, sorted.
    pub fn placed_models(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.placed.values().map(|p| p.model).collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitions")
            .field("default", &self.default)
            .field("placed", &self.placed_models())
            .finish()
    }
}
