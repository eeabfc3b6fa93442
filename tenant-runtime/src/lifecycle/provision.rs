//! Provisioning and two-phase teardown of tenant schemas.
//!
//! Every operation on one tenant is one transaction: PostgreSQL DDL is transactional, so a
//! failure at any step leaves nothing behind (no half-made schema, no registry row without a
//! schema, no renamed schema without its registry update). Concurrent operations on one
//! tenant are serialised by transaction-scoped advisory locks (see [`Registry`]).

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use postgres_types::Type;

use crate::door::{Allowlist, Tenant};
use crate::door::{SchemaName, MAX_SCHEMA_NAME_LEN};
use crate::error::{AllowlistError, Duplicated, Error, LifecycleError, Result};
use crate::exec::{Client, Db, Transaction};
use crate::exec::{Executor, PgRef, Writable};
use crate::lifecycle::{entry_from_row, Registry, RegistryEntry, TenantState};
use crate::lifecycle::{not_started, run_jobs, Job};
use crate::model::ddl::run_statements;
use crate::model::ModelSet;
use crate::sql::{Piece, SchemaMap, Slot, Template};
// Provisioning from migrations.
use crate::lifecycle::{apply_all_in, Migrations};

/// The suffix retired schemas get, before the date: `<schema>_deleted_<yyyymmdd>`.
pub const RETIRED_MARKER: &str = "_deleted_";

/// Creates, retires, restores and purges tenants: their schemas, their tables (a
/// [`ModelSet`]) and their [`Registry`] rows.
///
/// The only way to a [`Tenant`] stays the [`Allowlist`]: [`Provisioner::provision`] inserts
/// the new tenant into the allowlist you pass and returns what the allowlist hands out;
/// [`Provisioner::retire`] removes it.
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::{Allowlist, Client, Model, ModelSet, Provisioner};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let provisioner = Provisioner::new(ModelSet::new().with::<Note>())?.grant_to("app")?;
/// provisioner.install(&client).await?;                 // registry + shared tables, once
///
/// let allowlist = Allowlist::load_from_registry(&client, provisioner.registry()).await?;
/// let acme = provisioner.provision(&mut client, &allowlist, "acme", "tenant_acme").await?;
/// assert_eq!(allowlist.resolve("acme")?, acme);
///
/// let retired = provisioner.retire(&mut client, &allowlist, "acme").await?; // phase one
/// assert!(allowlist.resolve("acme").is_err());
/// provisioner.purge(&mut client, Duration::from_secs(30 * 86_400)).await?;  // phase two, later
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Provisioner {
    models: ModelSet,
    tenant_ddl: Vec<Template>,
    registry: Registry,
    role: Option<SchemaName>,
    map: SchemaMap,
    adopt_existing: bool,
    distribute_on_citus: bool,
    /// Where purge snapshots each schema before dropping it (see `archive::snapshot`).
    pub(crate) snapshot_dir: Option<std::path::PathBuf>,
    /// Build tenant tables by these migrations instead of the models' DDL.
    migrations: Option<Migrations>,
}

/// What [`Provisioner::retire`] did.
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::{Allowlist, Client, ModelSet, Provisioner};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let provisioner = Provisioner::new(ModelSet::new())?;
/// let retired = provisioner.retire(&mut client, &allowlist, "acme").await?;
/// println!("{} ({}) retired; its data is in {}", retired.key, retired.schema, retired.renamed_to);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retired {
    /// The tenant key.
    pub key: String,
    /// The schema it had.
    pub schema: String,
    /// The schema its data now lives in, until purge or restore.
    pub renamed_to: String,
}

/// One tenant [`Provisioner::purge`] dropped.
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::{Allowlist, Client, ModelSet, Provisioner};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let provisioner = Provisioner::new(ModelSet::new())?;
/// // Tenants retired more than 30 days ago: their schemas are dropped for good.
/// let report = provisioner.purge(&mut client, Duration::from_secs(30 * 86_400)).await?;
/// for purged in &report.purged {
///     println!("{}: dropped {}", purged.key, purged.dropped_schema);
/// }
/// # let _ = allowlist;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// The tenant key (now free to provision again).
    pub key: String,
    /// The retired schema that was dropped.
    pub dropped_schema: String,
}

/// A retired tenant [`Provisioner::purge`] refused to drop, because its registry row does not
/// name the schema that retiring the tenant produced, or because its snapshot could not be
/// written (with [`snapshot_before_purge`](Provisioner::snapshot_before_purge)). Nothing of
/// it was dropped or deleted.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn run(provisioner: &tenant_runtime::Provisioner, client: &mut tenant_runtime::Client) -> tenant_runtime::Result<()> {
/// let report = provisioner.purge(client, Duration::from_secs(30 * 86_400)).await?;
/// for refused in &report.refused {
///     eprintln!("left alone: tenant {:?}: {}", refused.key, refused.error);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct PurgeRefused {
    /// The tenant key of the row.
    pub key: String,
    /// Why: [`LifecycleError::RetiredSchemaMismatch`](crate::error::LifecycleError::RetiredSchemaMismatch), [`LifecycleError::RetiredSchemaInUse`](crate::error::LifecycleError::RetiredSchemaInUse),
    /// [`AllowlistError::ReservedSchema`](crate::error::AllowlistError::ReservedSchema) or [`Error::InvalidSchemaName`] (of the row's schema).
    /// With a snapshot directory also [`ArchiveError::SnapshotFailed`](crate::error::ArchiveError::SnapshotFailed).
    pub error: Error,
}

/// What [`Provisioner::purge`] did: the tenants it dropped, and the rows it refused (it goes
/// on with the other rows after a refusal).
///
/// ```
/// let report = tenant_runtime::lifecycle::PurgeReport::default();
/// assert!(report.purged.is_empty() && report.refused.is_empty());
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PurgeReport {
    /// The tenants dropped, in the order they were retired.
    pub purged: Vec<Purged>,
    /// The rows refused, with why.
    pub refused: Vec<PurgeRefused>,
}

impl Provisioner {
    /// A provisioner for the tenant-slot models of `models`, with the default [`Registry`].
    /// Fails if the model set is invalid (e.g. a foreign-key cycle).
    pub fn new(models: ModelSet) -> Result<Provisioner> {
        let tenant_ddl = models.tenant_tables_ddl()?;
        Ok(Provisioner {
            models,
            tenant_ddl,
            registry: Registry::default(),
            role: None,
            map: SchemaMap::new(),
            adopt_existing: false,
            distribute_on_citus: false,
            snapshot_dir: None,
            migrations: None,
        })
    }

    /// Uses `registry` instead of the default one.
    ///
    /// ```
    /// # use tenant_runtime::{ModelSet, Provisioner, Registry};
    /// let p = Provisioner::new(ModelSet::new())?.with_registry(Registry::new("control")?);
    /// assert_eq!(p.registry().schema().as_str(), "control");
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn with_registry(mut self, registry: Registry) -> Provisioner {
        self.registry = registry;
        self
    }

    /// Grants `USAGE` and `CREATE` on each new schema to `role`, and (as default privileges
    /// of the provisioning role) DML on its tables and sequences. The role must exist.
    ///
    /// Refused with [`Error::InvalidRoleName`]: the names PostgreSQL reads as pseudo-roles even
    /// when quoted (`public`, which would hand every tenant's data to every role on the
    /// server, `current_user`, `session_user`, `current_role`), the reserved `none` and
    /// `pg_*` (in any case), and anything that is not an identifier by the schema-name rule
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    ///
    /// ```
    /// # use tenant_runtime::{Error, ModelSet, Provisioner};
    /// assert!(Provisioner::new(ModelSet::new())?.grant_to("app").is_ok());
    /// for role in ["public", "PUBLIC", "current_user", "pg_read_all_data", "app; DROP"] {
    ///     let refused = Provisioner::new(ModelSet::new())?.grant_to(role);
    ///     assert!(matches!(refused, Err(Error::InvalidRoleName { .. })), "{role}");
    /// }
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn grant_to(mut self, role: &str) -> Result<Provisioner> {
        self.role = Some(grant_role(role)?);
        Ok(self)
    }

    /// The map that fills named slots in the tenant tables' DDL (foreign keys to shared
    /// tables); narrower than the connection's map.
    pub fn with_schema_map(mut self, map: SchemaMap) -> Provisioner {
        self.map = map;
        self
    }

    /// Takes over a schema that exists but is not registered, instead of refusing it with
    /// [`LifecycleError::SchemaExists`] (for bringing existing schemas under management).
    pub fn adopt_existing_schemas(mut self, adopt: bool) -> Provisioner {
        self.adopt_existing = adopt;
        self
    }

    /// With `true`, provisioning also makes each new tenant schema a Citus distributed schema
    /// (`citus_schema_distribute`, see [`citus`](crate::lifecycle::citus)), inside the same transaction
    /// as the schema, its tables and its registry row: on a Citus coordinator (12 or later) the
    /// tenant's tables become one colocated group placed on a worker; if the call fails (for
    /// example on PostgreSQL without Citus), nothing of the tenant is left behind. Citus treats
    /// an already distributed schema as done, so re-provisioning stays idempotent.
    ///
    /// ```
    /// # use tenant_runtime::{ModelSet, Provisioner};
    /// let provisioner = Provisioner::new(ModelSet::new())?.distribute_on_citus(true);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn distribute_on_citus(mut self, enabled: bool) -> Provisioner {
        self.distribute_on_citus = enabled;
        self
    }

    /// Builds each new tenant's tables by `migrations` instead of the models' DDL, so a new
    /// tenant is exactly what an old one migrated to the latest version is: inside the
    /// provisioning transaction, after the schema and its grants, every migration is applied
    /// in version order and recorded in the tenant's version table (a later
    /// [`Migrator::run`](crate::Migrator::run) finds nothing to do). With no migrations
    /// (an empty set) the tables come from the models, as without this call. A tenant
    /// provisioned again whose version table records migrations is left to the migrator.
    /// Named slots in the migrations are filled by [`with_schema_map`](Provisioner::with_schema_map)
    /// and the connection's map. The models' shared tables are still what
    /// [`install`](Provisioner::install) creates.
    ///
    /// ```no_run
    /// use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, ModelSet, Provisioner};
    ///
    /// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    ///
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let provisioner = Provisioner::new(ModelSet::new())?.with_migrations(&MIGRATIONS);
    /// provisioner.install(&client).await?;
    /// let acme = provisioner.provision(&mut client, &Allowlist::new(), "acme", "tenant_acme").await?;
    /// // "tenant_acme" has the notes table and both migrations recorded as applied.
    /// # Ok(()) }
    /// ```
    pub fn with_migrations(mut self, migrations: &Migrations) -> Provisioner {
        self.migrations = (!migrations.is_empty()).then(|| migrations.clone());
        self
    }

    /// The registry this provisioner writes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The model set.
    pub fn models(&self) -> &ModelSet {
        &self.models
    }

    /// Creates the registry and the shared (named-slot) tables of the model set, if missing.
    /// Run it once per database, before provisioning; it is idempotent.
    ///
    /// With [`distribute_on_citus(true)`](Provisioner::distribute_on_citus) it also makes each
    /// shared table a Citus reference table (`create_reference_table`, see
    /// [`citus::make_reference_tables`](crate::lifecycle::citus::make_reference_tables)), skipping those
    /// Citus already distributes: foreign keys from a distributed tenant schema may only
    /// point into the same schema or to reference tables.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// Provisioner::new(ModelSet::new())?.install(&client).await?;
    /// # Ok(()) }
    /// ```
    pub async fn install<E: Writable>(&self, exec: &E) -> Result<()> {
        self.registry.install(exec).await?;
        self.models
            .create_shared_tables(exec, Some(&self.map))
            .await?;
        if self.distribute_on_citus {
            let tables = self.models.shared_table_names(exec, Some(&self.map))?;
            crate::lifecycle::citus::make_reference_tables(exec, &tables).await?;
        }
        Ok(())
    }

    /// Provisions tenant `key` in schema `schema`: creates the schema if missing, grants it
    /// to the configured role, creates the tenant tables in foreign-key order and records it
    /// in the registry, in one transaction; then inserts it into `allowlist` and returns the
    /// [`Tenant`] the allowlist hands out.
    ///
    /// Idempotent: provisioning a registered tenant again with the same schema creates what
    /// is missing and succeeds. Bad input is refused before anything runs: a malformed key,
    /// an invalid schema name, `public` or a system schema. A key registered with another
    /// schema is [`LifecycleError::TenantConflict`], a schema registered for another key is
    /// [`AllowlistError::DuplicateTenant`], a retired key is [`LifecycleError::TenantRetired`], and a schema that
    /// exists without being registered is [`LifecycleError::SchemaExists`] (unless
    /// [`adopt_existing_schemas`](Provisioner::adopt_existing_schemas)).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let allowlist = Allowlist::new();
    /// let acme = provisioner.provision(&mut client, &allowlist, "acme", "tenant_acme").await?;
    /// assert!(provisioner.provision(&mut client, &allowlist, "acme", "public").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn provision(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        key: &str,
        schema: &str,
    ) -> Result<Tenant> {
        // Validates key and schema by the allowlist's own rules, and gives a tenant to fill
        // the DDL's tenant slot before the real allowlist knows it.
        let scratch = Allowlist::with_max_len(1).insert(key, schema)?;
        self.provision_in_transaction(client, &scratch).await?;
        allowlist.insert(key, schema)
    }

    /// Provisions many tenants, one transaction each, over `clients.len()` connections at
    /// once. Returns one result per `(key, schema)` pair, in order; a failure does not stop
    /// the others. With no client, every result is [`LifecycleError::NoConnection`]; a
    /// tenant not started because every connection was lost is
    /// [`LifecycleError::ConnectionsLost`].
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let mut clients = tenant_runtime::lifecycle::connect_many("postgres://postgres@127.0.0.1/postgres", 8).await?;
    /// let allowlist = Allowlist::new();
    /// let pairs: Vec<(String, String)> =
    ///     (0..200).map(|i| (format!("t{i}"), format!("tenant_{i:04}"))).collect();
    /// let results = provisioner.provision_many(&mut clients, &allowlist, &pairs).await;
    /// assert!(results.iter().all(|r| r.is_ok()));
    /// # Ok(()) }
    /// ```
    pub async fn provision_many<K, S>(
        &self,
        clients: &mut [Client],
        allowlist: &Allowlist,
        tenants: &[(K, S)],
    ) -> Vec<Result<Tenant>>
    where
        K: AsRef<str> + Sync,
        S: AsRef<str> + Sync,
    {
        struct Provision<'p> {
            provisioner: &'p Provisioner,
            allowlist: &'p Allowlist,
        }
        impl<K: AsRef<str> + Sync, S: AsRef<str> + Sync> Job<(K, S)> for Provision<'_> {
            type Output = Result<Tenant>;
            fn run<'a>(
                &'a self,
                client: &'a mut Client,
                (key, schema): &'a (K, S),
            ) -> impl std::future::Future<Output = Result<Tenant>> + Send + 'a {
                self.provisioner
                    .provision(client, self.allowlist, key.as_ref(), schema.as_ref())
            }
        }
        let job = Provision {
            provisioner: self,
            allowlist,
        };
        let never = AtomicBool::new(false);
        let results = run_jobs(clients, tenants, &never, &job, &|_, _| {}, None).await;
        let why = not_started(clients.len(), &results);
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(why())))
            .collect()
    }

    async fn provision_in_transaction(&self, client: &mut Client, tenant: &Tenant) -> Result<()> {
        let mut db = client.for_tenant(tenant).with_schema_map(self.map.clone());
        let tx = db.transaction().await?;
        self.provision_within(&tx).await?;
        tx.commit().await
    }

    /// What [`provision`](Provisioner::provision) does, inside the caller's transaction on
    /// the tenant's handle (with [`schema_map`](Provisioner::schema_map)), without
    /// committing: import and clone put the data in the same transaction.
    pub(crate) async fn provision_within(&self, tx: &Db<Transaction<'_>>) -> Result<()> {
        let tenant = tx.tenant();
        let (key, schema) = (tenant.key(), tenant.schema());
        let pg = tx.executor().pg();
        lock_key(pg, key).await?;
        lock_schema(pg, schema).await?;

        let sql = format!(
            "{} WHERE key = $1 OR schema = $2 OR retired_schema = $2",
            self.registry.select_sql()
        );
        let rows = self
            .registry
            .query(
                pg,
                &sql,
                &[(&key, Type::TEXT), (&schema.as_str(), Type::TEXT)],
            )
            .await?;
        let mut registered = false;
        for row in &rows {
            let entry = entry_from_row(row)?;
            if entry.key != key {
                return Err(Error::Allowlist(AllowlistError::DuplicateTenant {
                    what: Duplicated::Schema,
                    value: schema.as_str().into(),
                }));
            }
            if entry.state == TenantState::Retired {
                return Err(Error::Lifecycle(LifecycleError::TenantRetired {
                    key: key.into(),
                    renamed_to: entry.retired_schema.unwrap_or_default(),
                }));
            }
            if entry.schema != schema.as_str() {
                return Err(Error::Lifecycle(LifecycleError::TenantConflict {
                    key: key.into(),
                    registered: entry.schema,
                    requested: schema.as_str().into(),
                }));
            }
            registered = true;
        }
        if !registered && !self.adopt_existing && schema_exists(pg, schema).await? {
            return Err(Error::Lifecycle(LifecycleError::SchemaExists {
                schema: schema.as_str().into(),
            }));
        }

        let ddl = self
            .provision_ddl()
            .iter()
            .map(|t| tx.render(t, None))
            .collect::<Result<Vec<_>>>()?;
        run_statements(pg, &ddl).await?;
        if let Some(migrations) = &self.migrations {
            apply_all_in(tx, migrations).await?;
        }
        if self.distribute_on_citus {
            crate::lifecycle::citus::distribute_schema(tx).await?;
        }
        if !registered {
            let sql = format!(
                "INSERT INTO {} (key, schema) VALUES ($1, $2)",
                self.registry.table()
            );
            self.registry
                .query(
                    pg,
                    &sql,
                    &[(&key, Type::TEXT), (&schema.as_str(), Type::TEXT)],
                )
                .await?;
        }
        Ok(())
    }

    /// The map that fills named slots in the tenant tables' DDL.
    pub(crate) fn schema_map(&self) -> &SchemaMap {
        &self.map
    }

    /// `CREATE SCHEMA`, the grants, and the tenant tables, one statement per template: sent
    /// one per query string, pipelined (one round trip), inside the provisioning transaction.
    fn provision_ddl(&self) -> Vec<Template> {
        // `<before>{tenant}<after>`
        let around = |before: &'static str, after: String| {
            Template::new(vec![
                Piece::Sql(Cow::Borrowed(before)),
                Piece::Schema(Slot::Tenant),
                Piece::Sql(Cow::Owned(after)),
            ])
        };
        let mut statements = vec![around("CREATE SCHEMA IF NOT EXISTS ", String::new())];
        if let Some(role) = self.role {
            statements.extend([
                around("GRANT USAGE, CREATE ON SCHEMA ", format!(" TO {role}")),
                around(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA ",
                    format!(" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"),
                ),
                around(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA ",
                    format!(" GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}"),
                ),
            ]);
        }
        if self.migrations.is_none() {
            statements.extend(self.tenant_ddl.iter().cloned());
        }
        if let Some(role) = self.role {
            // Tables that existed before (re-provisioning) get the grants too.
            statements.extend([
                around(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ",
                    format!(" TO {role}"),
                ),
                around(
                    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ",
                    format!(" TO {role}"),
                ),
            ]);
        }
        statements
    }

    /// Phase one of teardown: renames the tenant's schema to `<schema>_deleted_<yyyymmdd>`
    /// (UTC date of the database server; see [`retired_schema_name`]), marks it retired in
    /// the registry and removes it from `allowlist`, in one transaction. Nothing is deleted:
    /// [`restore`](Provisioner::restore) undoes it, [`purge`](Provisioner::purge) finishes it.
    ///
    /// Refused: a key that is not registered ([`Error::UnknownTenant`]), a tenant already
    /// retired ([`LifecycleError::TenantRetired`]), a registry row naming `public`
    /// ([`AllowlistError::ReservedSchema`]) or a system schema ([`Error::InvalidSchemaName`]), a schema
    /// that does not exist ([`LifecycleError::SchemaNotFound`]).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// # let allowlist = Allowlist::new();
    /// let retired = provisioner.retire(&mut client, &allowlist, "acme").await?;
    /// assert!(retired.renamed_to.starts_with("tenant_acme_deleted_"));
    /// # Ok(()) }
    /// ```
    pub async fn retire(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        key: &str,
    ) -> Result<Retired> {
        let tx = client.transaction().await?;
        let pg = tx.pg();
        let entry = self.locked_entry(pg, key).await?;
        if entry.state == TenantState::Retired {
            return Err(Error::Lifecycle(LifecycleError::TenantRetired {
                key: key.into(),
                renamed_to: entry.retired_schema.unwrap_or_default(),
            }));
        }
        let schema = tenant_schema(&entry.schema)?;
        lock_schema(pg, schema).await?;
        if !schema_exists(pg, schema).await? {
            return Err(Error::Lifecycle(LifecycleError::SchemaNotFound {
                schema: schema.as_str().into(),
            }));
        }
        let today = pg
            .query_typed("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')", &[])
            .await?;
        let today: String = today[0].try_get(0)?;
        let renamed = retired_schema_name(schema, &today)?;
        if schema_exists(pg, renamed).await? {
            return Err(Error::Lifecycle(LifecycleError::SchemaExists {
                schema: renamed.as_str().into(),
            }));
        }
        pg.batch_execute(&format!("ALTER SCHEMA {schema} RENAME TO {renamed}"))
            .await?;
        let sql = format!(
            "UPDATE {} SET state = 'retired', retired_schema = $2, retired_at = now() WHERE key = $1",
            self.registry.table()
        );
        pg.query_typed(&sql, &[(&key, Type::TEXT), (&renamed.as_str(), Type::TEXT)])
            .await?;
        tx.commit().await?;
        allowlist.remove(key);
        Ok(Retired {
            key: key.into(),
            schema: schema.as_str().into(),
            renamed_to: renamed.as_str().into(),
        })
    }

    /// Undoes [`retire`](Provisioner::retire): renames the schema back, marks the tenant
    /// active and inserts it into `allowlist`, in one transaction. A tenant that is not
    /// retired is [`LifecycleError::TenantNotRetired`]; a schema of the original name that exists again
    /// is [`LifecycleError::SchemaExists`].
    ///
    /// It renames only the exact schema retiring the tenant produced,
    /// `retired_schema_name(schema, date of retired_at)`: a registry row that names another
    /// one is refused with [`LifecycleError::RetiredSchemaMismatch`](crate::error::LifecycleError::RetiredSchemaMismatch), and one whose retired name is a
    /// registered tenant's schema with [`LifecycleError::RetiredSchemaInUse`](crate::error::LifecycleError::RetiredSchemaInUse).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// # let allowlist = Allowlist::new();
    /// let acme = provisioner.restore(&mut client, &allowlist, "acme").await?;
    /// assert_eq!(allowlist.resolve("acme")?, acme);
    /// # Ok(()) }
    /// ```
    pub async fn restore(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        key: &str,
    ) -> Result<Tenant> {
        let tx = client.transaction().await?;
        let pg = tx.pg();
        let entry = self.locked_entry(pg, key).await?;
        if entry.retired_schema.is_none() {
            return Err(Error::Lifecycle(LifecycleError::TenantNotRetired {
                key: key.into(),
            }));
        }
        let schema = tenant_schema(&entry.schema)?;
        let retired = self.trusted_retired_schema(pg, &entry).await??;
        lock_schema(pg, schema).await?;
        if schema_exists(pg, schema).await? {
            return Err(Error::Lifecycle(LifecycleError::SchemaExists {
                schema: schema.as_str().into(),
            }));
        }
        if !schema_exists(pg, retired).await? {
            return Err(Error::Lifecycle(LifecycleError::SchemaNotFound {
                schema: retired.as_str().into(),
            }));
        }
        pg.batch_execute(&format!("ALTER SCHEMA {retired} RENAME TO {schema}"))
            .await?;
        let sql = format!(
            "UPDATE {} SET state = 'active', retired_schema = NULL, retired_at = NULL WHERE key = $1",
            self.registry.table()
        );
        pg.query_typed(&sql, &[(&key, Type::TEXT)]).await?;
        tx.commit().await?;
        allowlist.insert(key, schema.as_str())
    }

    /// Phase two of teardown: drops the schemas of tenants retired at least `grace` ago
    /// (by the database clock) and deletes their registry rows, one transaction per tenant.
    /// `Duration::ZERO` purges every retired tenant.
    ///
    /// The registry is not trusted to name what to drop: for each row, purge drops only the
    /// exact schema retiring it produced, `retired_schema_name(schema, date of retired_at)`,
    /// and never a schema that is any registered tenant's schema. A row that names another
    /// schema is not touched and is reported in [`PurgeReport::refused`]
    /// ([`LifecycleError::RetiredSchemaMismatch`](crate::error::LifecycleError::RetiredSchemaMismatch), [`LifecycleError::RetiredSchemaInUse`](crate::error::LifecycleError::RetiredSchemaInUse), or the row's own
    /// schema refused); purge goes on with the other rows. A database error stops the run
    /// (the tenants purged before it stay purged; run it again).
    ///
    /// With [`snapshot_before_purge`](Provisioner::snapshot_before_purge), each schema is
    /// exported first, and one whose snapshot could not be written is not dropped: it is in
    /// [`PurgeReport::refused`] with
    /// [`ArchiveError::SnapshotFailed`](crate::error::ArchiveError::SnapshotFailed).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use tenant_runtime::{Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let report = provisioner.purge(&mut client, Duration::from_secs(30 * 86_400)).await?;
    /// for purged in &report.purged {
    ///     println!("dropped {} ({})", purged.dropped_schema, purged.key);
    /// }
    /// for refused in &report.refused {
    ///     eprintln!("left alone: {}", refused.error);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn purge(&self, client: &mut Client, grace: Duration) -> Result<PurgeReport> {
        let due = "state = 'retired' AND retired_at <= now() - make_interval(secs => $1)";
        let sql = format!(
            "SELECT key FROM {} WHERE {due} ORDER BY retired_at, key",
            self.registry.table()
        );
        let grace = grace.as_secs_f64();
        let keys: Vec<String> = self
            .registry
            .query(client.pg(), &sql, &[(&grace, Type::FLOAT8)])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut report = PurgeReport::default();
        for key in keys {
            let tx = client.transaction().await?;
            let pg = tx.pg();
            lock_key(pg, &key).await?;
            // Re-read under the lock: a concurrent restore or purge may have won.
            let sql = format!(
                "{} WHERE key = $1 AND {} FOR UPDATE",
                self.registry.select_sql(),
                due.replace("$1", "$2")
            );
            let rows = pg
                .query_typed(&sql, &[(&key, Type::TEXT), (&grace, Type::FLOAT8)])
                .await?;
            let Some(row) = rows.first() else {
                continue;
            };
            let entry = entry_from_row(row)?;
            let retired = match self.trusted_retired_schema(pg, &entry).await? {
                Ok(retired) => retired,
                Err(error) => {
                    tracing::warn!(%error, "purge left a registry row alone");
                    // Dropping the transaction rolls it back (and releases the lock).
                    report.refused.push(PurgeRefused { key, error });
                    continue;
                }
            };
            lock_schema(pg, retired).await?;
            // With a snapshot directory: no drop without a written snapshot.
            if let Err(error) =
                crate::lifecycle::archive::snapshot_schema(self, pg, &key, retired).await
            {
                tracing::warn!(%error, "purge kept a schema whose snapshot failed");
                report.refused.push(PurgeRefused { key, error });
                continue;
            }
            pg.batch_execute(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
                .await?;
            let sql = format!("DELETE FROM {} WHERE key = $1", self.registry.table());
            pg.query_typed(&sql, &[(&key, Type::TEXT)]).await?;
            tx.commit().await?;
            report.purged.push(Purged {
                key,
                dropped_schema: retired.as_str().into(),
            });
        }
        Ok(report)
    }

    /// The retired schema of `entry` if its row can be trusted: exactly the name retiring
    /// the row's schema on the date of its `retired_at` gives, and no registered tenant's
    /// schema. The inner error is the refusal; the outer one a database error.
    async fn trusted_retired_schema(
        &self,
        pg: PgRef<'_>,
        entry: &RegistryEntry,
    ) -> Result<Result<SchemaName>> {
        let expected = match expected_retired_schema(entry) {
            Ok(expected) => expected,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if entry.retired_schema.as_deref() != Some(expected.as_str()) {
            return Ok(Err(Error::Lifecycle(
                LifecycleError::RetiredSchemaMismatch {
                    key: entry.key.clone(),
                    recorded: entry.retired_schema.clone(),
                    expected: expected.as_str().into(),
                },
            )));
        }
        let sql = format!(
            "SELECT key FROM {} WHERE schema = $1 ORDER BY key LIMIT 1",
            self.registry.table()
        );
        let rows = self
            .registry
            .query(pg, &sql, &[(&expected.as_str(), Type::TEXT)])
            .await?;
        if let Some(row) = rows.first() {
            return Ok(Err(Error::Lifecycle(LifecycleError::RetiredSchemaInUse {
                key: entry.key.clone(),
                schema: expected.as_str().into(),
                used_by: row.try_get(0)?,
            })));
        }
        Ok(Ok(expected))
    }

    /// Locks `key` and reads its registry row (unknown key: [`Error::UnknownTenant`]).
    async fn locked_entry(&self, pg: PgRef<'_>, key: &str) -> Result<RegistryEntry> {
        lock_key(pg, key).await?;
        let sql = format!("{} WHERE key = $1 FOR UPDATE", self.registry.select_sql());
        let rows = self.registry.query(pg, &sql, &[(&key, Type::TEXT)]).await?;
        match rows.first() {
            Some(row) => entry_from_row(row),
            None => Err(Error::UnknownTenant { key: key.into() }),
        }
    }
}

/// The name a retired schema gets: `<schema>_deleted_<yyyymmdd>`. When that would pass
/// PostgreSQL's 63-byte limit, the base is cut to 37 bytes and followed by `_` and 8 hex
/// digits of a hash of the full name, so the result is deterministic and two long names
/// with a common prefix do not collide.
///
///
/// `yyyymmdd` must be a calendar date written as 8 digits; anything else is
/// [`LifecycleError::InvalidRetirementDate`](crate::error::LifecycleError::InvalidRetirementDate).
///
/// ```
/// use tenant_runtime::error::{Error, LifecycleError};
/// use tenant_runtime::lifecycle::retired_schema_name;
/// use tenant_runtime::SchemaName;
///
/// let short = SchemaName::parse("tenant_acme")?;
/// assert_eq!(retired_schema_name(short, "20260421")?.as_str(), "tenant_acme_deleted_20260421");
///
/// let long = SchemaName::parse(&"t".repeat(60))?;
/// let renamed = retired_schema_name(long, "20260421")?;
/// assert_eq!(renamed.as_str().len(), 63);
/// assert!(renamed.as_str().ends_with("_deleted_20260421"));
/// assert_eq!(renamed, retired_schema_name(long, "20260421")?);
///
/// for bad in ["2026-04-21", "20261301", "20260230", "2026042", "x"] {
///     assert!(matches!(
///         retired_schema_name(short, bad),
///         Err(Error::Lifecycle(LifecycleError::InvalidRetirementDate { .. }))
///     ));
/// }
/// # Ok::<(), Error>(())
/// ```
pub fn retired_schema_name(schema: SchemaName, yyyymmdd: &str) -> Result<SchemaName> {
    if !is_calendar_date(yyyymmdd) {
        return Err(Error::Lifecycle(LifecycleError::InvalidRetirementDate {
            date: yyyymmdd.into(),
        }));
    }
    let suffix = format!("{RETIRED_MARKER}{yyyymmdd}");
    let base = schema.as_str();
    let name = if base.len() + suffix.len() <= MAX_SCHEMA_NAME_LEN {
        format!("{base}{suffix}")
    } else {
        let keep = MAX_SCHEMA_NAME_LEN - suffix.len() - 9;
        format!("{}_{:08x}{suffix}", &base[..keep], fnv1a32(base))
    };
    // A valid base, `_`, hex digits and an 8-digit date: always a valid name.
    Ok(SchemaName::parse(&name)?)
}

/// Whether `s` is `YYYYMMDD` naming a day of the Gregorian calendar.
fn is_calendar_date(s: &str) -> bool {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| s[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `YYYYMMDD` of `time` in UTC: the date [`Provisioner::retire`] put in the name (it takes it
/// from the same `now()` it stores as `retired_at`).
fn utc_date(time: SystemTime) -> Option<String> {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!("{year:04}{month:02}{day:02}"))
}

/// The schema retiring `entry`'s schema on its retirement date gives (a refusal if the row's
/// schema is not a tenant schema or it has no retirement date).
fn expected_retired_schema(entry: &RegistryEntry) -> Result<SchemaName> {
    let schema = tenant_schema(&entry.schema)?;
    let Some(date) = entry.retired_at.and_then(utc_date) else {
        return Err(Error::Lifecycle(LifecycleError::RetiredSchemaMismatch {
            key: entry.key.clone(),
            recorded: entry.retired_schema.clone(),
            expected: format!("{schema}{RETIRED_MARKER}<date>: the row has no retired_at"),
        }));
    };
    retired_schema_name(schema, &date)
}

/// Role names PostgreSQL reads as pseudo-roles (even quoted) or reserves.
const RESERVED_ROLES: [&str; 5] = [
    "public",
    "none",
    "current_user",
    "session_user",
    "current_role",
];

/// A role [`Provisioner::grant_to`] may grant to.
fn grant_role(role: &str) -> Result<SchemaName> {
    let refuse = |reason: String| Error::InvalidRoleName {
        role: role.into(),
        reason,
    };
    let lower = role.to_ascii_lowercase();
    match lower.as_str() {
        "public" => {
            return Err(refuse(
                "PostgreSQL reads `public` as the PUBLIC pseudo-role even when quoted, so every \
                 role on the server could read and write every tenant's data"
                    .into(),
            ))
        }
        "none" => {
            return Err(refuse(
                "`none` is reserved by PostgreSQL and names no role".into(),
            ))
        }
        other if RESERVED_ROLES.contains(&other) => {
            return Err(refuse(format!(
                "PostgreSQL reads `{other}` as whichever role runs the statement, not as a role \
                 of its own"
            )))
        }
        other if other.starts_with("pg_") => {
            return Err(refuse(
                "`pg_` names are reserved for PostgreSQL's predefined roles (such as \
                 pg_read_all_data), whose members would all get the grant"
                    .into(),
            ))
        }
        _ => {}
    }
    SchemaName::parse(role)
        .map_err(|e| refuse(format!("not a valid identifier for the grant: {e}")))
}

fn fnv1a32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A registry schema name that may hold a tenant (refuses `public` and system schemas even
/// if a hand-edited registry names them).
fn tenant_schema(name: &str) -> Result<SchemaName> {
    let schema = SchemaName::parse(name)?;
    if schema.as_str() == "public" {
        return Err(Error::Allowlist(AllowlistError::ReservedSchema {
            schema: "public".into(),
        }));
    }
    Ok(schema)
}

/// Takes the transaction-scoped advisory lock of a tenant key.
pub(crate) async fn lock_key(pg: PgRef<'_>, key: &str) -> Result<()> {
    let id = format!("tenant:key:{key}");
    advisory_lock(pg, &id).await
}

/// Takes the transaction-scoped advisory lock of a schema (provisioning, teardown and
/// migrations of one schema never overlap).
pub(crate) async fn lock_schema(pg: PgRef<'_>, schema: SchemaName) -> Result<()> {
    let id = format!("tenant:schema:{}", schema.as_str());
    advisory_lock(pg, &id).await
}

async fn advisory_lock(pg: PgRef<'_>, id: &str) -> Result<()> {
    pg.query_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[(&id, Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Whether `schema` exists in the database.
pub(crate) async fn schema_exists(pg: PgRef<'_>, schema: SchemaName) -> Result<bool> {
    let rows = pg
        .query_typed(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[(&schema.as_str(), Type::TEXT)],
        )
        .await?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_with_a_common_prefix_retire_to_different_names() {
        let a = SchemaName::parse(&format!("{}a", "x".repeat(50))).unwrap();
        let b = SchemaName::parse(&format!("{}b", "x".repeat(50))).unwrap();
        let (ra, rb) = (
            retired_schema_name(a, "20260101").unwrap(),
            retired_schema_name(b, "20260101").unwrap(),
        );
        assert_ne!(ra, rb);
        assert!(ra.as_str().len() <= MAX_SCHEMA_NAME_LEN);
    }

    #[test]
    fn malformed_retirement_dates_are_errors_not_panics() {
        let schema = SchemaName::parse("tenant_acme").unwrap();
        let long = SchemaName::parse(&"t".repeat(63)).unwrap();
        for bad in [
            "",
            "2026042",
            "202604210",
            "2026-04-21",
            "2026042X",
            "20260230",
            "20250229",
            "20261301",
            "20260100",
            "20260432",
            "ＡＢＣＤ",
            &"9".repeat(80),
        ] {
            for base in [schema, long] {
                assert!(
                    matches!(
                        retired_schema_name(base, bad),
                        Err(Error::Lifecycle(LifecycleError::InvalidRetirementDate { ref date })) if date == bad
                    ),
                    "{bad:?}"
                );
            }
        }
        for good in ["20240229", "20000229", "19991231", "20260101"] {
            assert!(retired_schema_name(schema, good).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_utc_date_is_the_civil_date() {
        let at = |secs: u64| utc_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0).as_deref(), Some("19700101"));
        assert_eq!(at(951_782_400).as_deref(), Some("20000229")); // 2000-02-29T00:00:00Z
        assert_eq!(at(1_776_729_599).as_deref(), Some("20260420")); // 2026-04-20T23:59:59Z
        assert_eq!(at(1_776_729_600).as_deref(), Some("20260421"));
    }

    #[test]
    fn reserved_and_malformed_roles_are_refused_with_a_reason() {
        for role in [
            "public",
            "PUBLIC",
            "Public",
            "none",
            "current_user",
            "SESSION_USER",
            "current_role",
            "pg_read_all_data",
            "PG_MONITOR",
            "app; DROP",
            "",
            "\"app\"",
        ] {
            match grant_role(role) {
                Err(Error::InvalidRoleName { role: r, reason }) => {
                    assert_eq!(r, role);
                    assert!(!reason.is_empty());
                }
                other => panic!("{role:?}: {other:?}"),
            }
        }
        assert_eq!(grant_role("app_rw").unwrap().as_str(), "app_rw");
    }
}
