//! The handle statements run through: an executor, a [`Tenant`] and a [`SchemaMap`].

use postgres_types::ToSql;
use smallvec::SmallVec;
use tokio_postgres::{Row, RowStream, Statement};
use tracing::Instrument;

use crate::door::SchemaName;
use crate::door::Tenant;
use crate::error::{Error, Result};
use crate::exec::typed_params;
use crate::exec::Transaction;
use crate::exec::{Begin, Executor};
use crate::exec::{CachedStatement, StatementKey, StatementMode};
use crate::sql::{default_for_slot, SchemaMap, Slot, Template};

/// A handle that runs statements for one [`Tenant`] on one executor (a [`Client`](crate::Client),
/// a [`Transaction`], or a reference to either).
///
/// The tenant slot of every statement is filled with the tenant's schema; named slots with
/// the narrowest map that maps them: the statement's, then this handle's
/// ([`Db::with_schema_map`]), then the connection's, else the slot's own name.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let mut db = tenant_runtime::Db::new(client, &allowlist.resolve("acme")?);
/// let tx = db.transaction().await?;
/// Note { id: 1, body: "in a transaction".into() }.insert(&tx).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Db<E> {
    exec: E,
    tenant: Tenant,
    map: SchemaMap,
}

impl<E: Executor> Db<E> {
    /// A handle for `tenant` on `exec`, with no handle-level map.
    pub fn new(exec: E, tenant: &Tenant) -> Db<E> {
        Db {
            exec,
            tenant: tenant.clone(),
            map: SchemaMap::new(),
        }
    }

    /// Sets the handle-level schema map (narrower than the connection's).
    pub fn with_schema_map(mut self, map: SchemaMap) -> Db<E> {
        self.map = map;
        self
    }

    /// A borrowed handle on the same executor and tenant whose map is this handle's, narrowed
    /// by `map` (its entries win). This is how a call that takes a handle rather than a map,
    /// such as generated CRUD, runs with a statement-level map; queries take theirs directly.
    ///
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Model, SchemaMap};
    ///
    /// #[derive(Model)]
    /// #[tenant(table = "plans", schema = "shared")]
    /// struct Plan { #[tenant(primary_key)] code: String }
    ///
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres")
    ///     .await?
    ///     .with_schema_map(SchemaMap::new().with("shared", "public")?);
    /// let db = tenant_runtime::Db::new(client, &acme);
    /// let archived = SchemaMap::new().with("shared", "archive_2025")?;
    /// let old_plans = Plan::all(&db.narrow(&archived)).await?; // "archive_2025"."plans"
    /// let plans = Plan::all(&db).await?;                        // "public"."plans"
    /// # Ok(()) }
    /// ```
    pub fn narrow(&self, map: &SchemaMap) -> Db<&E> {
        let mut merged = self.map.clone();
        for (slot, schema) in map.iter() {
            merged = merged
                .with(slot.as_str(), schema.as_str())
                .expect("entries of a SchemaMap are valid identifiers");
        }
        Db {
            exec: &self.exec,
            tenant: self.tenant.clone(),
            map: merged,
        }
    }

    /// The tenant this handle runs for.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The handle-level schema map.
    pub fn schema_map(&self) -> &SchemaMap {
        &self.map
    }

    /// The executor.
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// Gives the executor back.
    pub fn into_executor(self) -> E {
        self.exec
    }

    /// The schema that fills `slot` for a statement with the (optional) statement-level map.
    pub fn resolve(&self, slot: Slot, statement_map: Option<&SchemaMap>) -> Result<SchemaName> {
        match slot {
            Slot::Tenant => Ok(self.tenant.schema()),
            Slot::Named(name) => {
                let mapped = statement_map
                    .and_then(|m| m.get(name))
                    .or_else(|| self.map.get(name))
                    .or_else(|| self.exec.conn_state().map.get(name));
                match mapped {
                    Some(schema) => Ok(schema),
                    None => Ok(default_for_slot(name)?),
                }
            }
        }
    }

    /// The SQL text `template` runs as on this handle (for logs and tests).
    ///
    ///
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Model};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let db = tenant_runtime::Db::new(client, &acme);
    /// let sql = db.render(&tenant_runtime::ddl::create_table::<Note>(), None)?;
    /// assert!(sql.starts_with(r#"CREATE TABLE IF NOT EXISTS "tenant_acme"."notes""#));
    /// # Ok(()) }
    /// ```
    pub fn render(&self, template: &Template, statement_map: Option<&SchemaMap>) -> Result<String> {
        let mut failed = None;
        let sql = template.render(|slot| match self.resolve(slot, statement_map) {
            Ok(schema) => schema,
            Err(e) => {
                failed = Some(e);
                SchemaName::parse("invalid").expect("valid")
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(sql),
        }
    }

    /// What the statement cache holds for `template` with these schemas: looked up, else
    /// rendered (once per (template, schemas)) and, in [`StatementMode::Prepared`], prepared.
    async fn cached(
        &self,
        template: &Template,
        statement_map: Option<&SchemaMap>,
    ) -> Result<CachedStatement> {
        let mut schemas = SmallVec::new();
        for slot in template.slots() {
            schemas.push(self.resolve(slot, statement_map)?);
        }
        let key = StatementKey {
            template: template.key(),
            schemas,
        };
        let state = self.exec.conn_state();
        if let Some(statement) = state.cache.get(&key) {
            return Ok(statement);
        }
        let mut fills = key.schemas.iter();
        let sql = template.render(|_| *fills.next().expect("one schema per slot"));
        state.cache.note_render();
        let statement = match state.mode {
            StatementMode::Prepared => {
                tracing::debug!(%sql, "preparing");
                CachedStatement::Prepared(self.exec.pg().prepare(&sql).await?)
            }
            StatementMode::Unnamed => CachedStatement::Unnamed(sql.into()),
        };
        state.cache.insert(key, statement.clone());
        Ok(statement)
    }

    /// The prepared statement for `template` on this connection, from the statement cache
    /// (rendering and preparing it on a miss).
    ///
    /// In [`StatementMode::Unnamed`] only the rendered SQL is cached; the statement returned
    /// is prepared anew, named, and closed when dropped: behind a transaction pooler, use it
    /// inside a transaction only.
    pub async fn prepare(
        &self,
        template: &Template,
        statement_map: Option<&SchemaMap>,
    ) -> Result<Statement> {
        match self.cached(template, statement_map).await? {
            CachedStatement::Prepared(statement) => Ok(statement),
            CachedStatement::Unnamed(sql) => self.exec.pg().prepare(&sql).await,
        }
    }

    /// The span every statement runs in: it carries the tenant key, so logs of concurrent
    /// requests say which tenant each statement ran for.
    fn span(&self) -> tracing::Span {
        tracing::debug_span!("tenant_statement", tenant = self.tenant.key())
    }

    /// Runs `template` and returns every row.
    pub async fn query(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.query_mapped(template, params, None).await
    }

    /// Runs `template`, which must return exactly one row.
    pub async fn query_one(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        let mut rows = self.query(template, params).await?;
        match rows.len() {
            1 => Ok(rows.pop().expect("one row")),
            0 => Err(Error::RowNotFound),
            _ => Err(Error::TooManyRows),
        }
    }

    /// Runs `template`, which must return at most one row.
    pub async fn query_opt(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let mut rows = self.query(template, params).await?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.pop()),
            _ => Err(Error::TooManyRows),
        }
    }

    /// Runs `template` and returns the number of rows it affected.
    pub async fn execute(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.execute_mapped(template, params, None).await
    }

    /// Runs `template` and returns its rows as a stream, without holding them all in memory.
    pub async fn query_stream(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream> {
        self.query_stream_mapped(template, params, None).await
    }

    // The execution primitives. Every statement the runtime runs goes through one of these
    // three, with the statement-level map (the narrowest level) when it has one.

    /// Runs `template` with a statement-level map and returns every row.
    #[doc(hidden)]
    pub async fn query_mapped(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
        statement_map: Option<&SchemaMap>,
    ) -> Result<Vec<Row>> {
        async {
            match self.cached(template, statement_map).await? {
                CachedStatement::Prepared(statement) => {
                    self.exec.pg().query(&statement, params).await
                }
                CachedStatement::Unnamed(sql) => {
                    let params = typed_params(params)?;
                    self.exec.pg().query_typed(&sql, &params).await
                }
            }
        }
        .instrument(self.span())
        .await
    }

    /// Runs `template` with a statement-level map and returns the affected row count.
    #[doc(hidden)]
    pub async fn execute_mapped(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
        statement_map: Option<&SchemaMap>,
    ) -> Result<u64> {
        async {
            match self.cached(template, statement_map).await? {
                CachedStatement::Prepared(statement) => {
                    self.exec.pg().execute(&statement, params).await
                }
                CachedStatement::Unnamed(sql) => {
                    let params = typed_params(params)?;
                    self.exec.pg().execute_typed(&sql, &params).await
                }
            }
        }
        .instrument(self.span())
        .await
    }

    /// Runs `template` with a statement-level map and streams its rows.
    #[doc(hidden)]
    pub async fn query_stream_mapped(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
        statement_map: Option<&SchemaMap>,
    ) -> Result<RowStream> {
        async {
            match self.cached(template, statement_map).await? {
                CachedStatement::Prepared(statement) => {
                    self.exec.pg().query_raw(&statement, params).await
                }
                CachedStatement::Unnamed(sql) => {
                    let params = typed_params(params)?;
                    self.exec.pg().query_typed_raw(&sql, &params).await
                }
            }
        }
        .instrument(self.span())
        .await
    }

    /// Creates the tenant's schema if it does not exist yet.
    ///
    /// This is the bare primitive; provisioning (grants, tables, registry) builds on it.
    pub async fn create_schema(&self) -> Result<()> {
        let mut sql = String::from("CREATE SCHEMA IF NOT EXISTS ");
        self.tenant.schema().push_quoted(&mut sql);
        self.exec.pg().batch_execute(&sql).await
    }

    /// Drops the tenant's schema and everything in it (`DROP SCHEMA IF EXISTS ... CASCADE`):
    /// the bare opposite of [`Db::create_schema`], for rebuilding a tenant or cleaning up
    /// scratch schemas. Registered tenants are retired and purged by the
    /// [`Provisioner`](crate::Provisioner) (two phases, with a grace period), not dropped.
    ///
    /// It cannot drop `public` or a system schema (`pg_*`, `information_schema`): a
    /// [`Tenant`] never names one (the [`Allowlist`](crate::Allowlist) refuses them with
    /// [`Error::ReservedSchema`] and [`Error::InvalidSchemaName`]). When a registry is in
    /// play use [`Db::drop_schema_registered`], which also refuses schemas the registry does
    /// not give to this tenant.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client};
    /// # async fn run(client: &Client, allowlist: &Allowlist) -> tenant_runtime::Result<()> {
    /// let db = tenant_runtime::Db::new(client, &allowlist.resolve("scratch")?);
    /// db.create_schema().await?;
    /// db.drop_schema().await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_schema(&self) -> Result<()> {
        let mut sql = String::from("DROP SCHEMA IF EXISTS ");
        self.tenant.schema().push_quoted(&mut sql);
        sql.push_str(" CASCADE");
        self.exec.pg().batch_execute(&sql).await
    }

    /// Runs one or more parameterless statements through the simple query protocol, as one
    /// implicit transaction (all or nothing). Used for DDL; not cached.
    pub async fn batch_execute(&self, template: &Template) -> Result<()> {
        let sql = self.render(template, None)?;
        self.exec.pg().batch_execute(&sql).await
    }
}

impl<E: Begin> Db<E> {
    /// Opens a transaction (a savepoint when this handle is already in one) for the same
    /// tenant and map. It rolls back when dropped without [`Db::commit`].
    pub async fn transaction(&mut self) -> Result<Db<Transaction<'_>>> {
        let tx = self.exec.begin().await?;
        Ok(Db {
            exec: tx,
            tenant: self.tenant.clone(),
            map: self.map.clone(),
        })
    }
}

impl Db<Transaction<'_>> {
    /// Commits the transaction (or releases the savepoint).
    pub async fn commit(self) -> Result<()> {
        self.exec.commit().await
    }

    /// Rolls the transaction back (to the savepoint).
    pub async fn rollback(self) -> Result<()> {
        self.exec.rollback().await
    }

    /// The escape hatch for third-party SQL that names tables without a schema: sets
    /// `search_path` to this handle's tenant schema, then the schemas that fill `also` (named
    /// slots, resolved through the map levels), for the rest of this transaction only
    /// (`SET LOCAL`). It is gone at commit or rollback, so it cannot leak to the next user of
    /// the connection, even behind a transaction pooler. The path is built from the
    /// [`Tenant`] and validated schema names only, never from a string.
    ///
    /// The runtime's own statements never depend on `search_path`: they name every schema.
    ///
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Slot};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let mut db = client.for_tenant(&acme);
    /// let tx = db.transaction().await?;
    /// tx.set_local_search_path(&[Slot::Named("shared")]).await?;
    /// // Unqualified names now resolve in "tenant_acme", then "shared".
    /// let rows = tx.executor().as_tokio_postgres().query("SELECT count(*) FROM invoices", &[]).await?;
    /// tx.commit().await?; // search_path is back to the connection's own
    /// # Ok(()) }
    /// ```
    pub async fn set_local_search_path(&self, also: &[Slot]) -> Result<()> {
        let mut sql = String::from("SET LOCAL search_path TO ");
        self.tenant.schema().push_quoted(&mut sql);
        for slot in also {
            sql.push_str(", ");
            self.resolve(*slot, None)?.push_quoted(&mut sql);
        }
        self.exec.pg().batch_execute(&sql).await
    }
}
