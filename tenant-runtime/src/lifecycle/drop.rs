//! [`Db::drop_schema_registered`]: dropping a tenant schema only when the registry gives it
//! to that tenant.

use crate::error::{Error, LifecycleError, Result};
use crate::exec::{Db, Writable};
use crate::lifecycle::{Registry, TenantState};

impl<E: Writable> Db<E> {
    /// [`Db::drop_schema`], only if `registry` holds this tenant's key as an active tenant
    /// with this very schema: an allowlist that maps a key to some unrelated schema (a typo,
    /// a stale entry) cannot make it drop that schema. The registry row stays: this drops
    /// data, the tenant stays registered (re-create its tables, or retire it).
    ///
    /// Refuses an unregistered key ([`Error::UnknownTenant`]), a key registered with another
    /// schema ([`LifecycleError::TenantConflict`](crate::error::LifecycleError::TenantConflict)), a retired tenant ([`LifecycleError::TenantRetired`](crate::error::LifecycleError::TenantRetired)), and
    /// what [`Db::drop_schema`] refuses.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Registry};
    /// # async fn run(client: &Client, allowlist: &Allowlist) -> tenant_runtime::Result<()> {
    /// let db = tenant_runtime::Db::new(client, &allowlist.resolve("acme")?);
    /// db.drop_schema_registered(&Registry::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_schema_registered(&self, registry: &Registry) -> Result<()> {
        let key = self.tenant().key();
        let schema = self.tenant().schema();
        let Some(entry) = registry.entry(self.executor(), key).await? else {
            return Err(Error::UnknownTenant { key: key.into() });
        };
        if entry.schema != schema.as_str() {
            return Err(LifecycleError::TenantConflict {
                key: key.into(),
                registered: entry.schema,
                requested: schema.as_str().into(),
            }
            .into());
        }
        if entry.state == TenantState::Retired {
            return Err(LifecycleError::TenantRetired {
                key: key.into(),
                renamed_to: entry.retired_schema.unwrap_or_default(),
            }
            .into());
        }
        self.drop_schema().await
    }
}
