//! The handle statements run through: an executor, a [`Tenant`] and a [`SchemaMap`].

use std::future::Future;

use postgres_types::{ToSql, Type};
use smallvec::SmallVec;
use tokio_postgres::{Row, RowStream, Statement};
use tracing::Instrument;

use crate::door::SchemaName;
use crate::door::Tenant;
use crate::error::{Error, Result};
use crate::exec::{schema_enum_types, typed_params};
use crate::exec::{Begin, Executor, PgRef, QueryStream, Transaction, Writable};
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
/// let mut db = client.for_tenant(&allowlist.resolve("acme")?);
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
    /// let db = client.for_tenant(&acme);
    /// let archived = SchemaMap::new().with("shared", "archive_2025")?;
    /// let old_plans = Plan::query().fetch_all(&db.narrow(&archived)).await?; // "archive_2025"."plans"
    /// let plans = Plan::query().fetch_all(&db).await?;                        // "public"."plans"
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
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Model};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let db = client.for_tenant(&acme);
    /// let sql = db.render(&tenant_runtime::model::ddl::create_table::<Note>()[0], None)?;
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

    /// What the statement cache holds for `template` with these schemas, and its key: looked
    /// up, else rendered (once per (template, schemas)); prepared when its use reaches the
    /// prepare threshold of [`StatementMode::Prepared`] (on a miss if the threshold is 1).
    ///
    /// With `defer_prepare`, a statement whose use reaches the threshold comes back unnamed
    /// with `prepare_due` set: the caller runs it unnamed and prepares it in the same round
    /// trip (see [`Db::run`]).
    async fn cached(
        &self,
        template: &Template,
        statement_map: Option<&SchemaMap>,
        defer_prepare: bool,
    ) -> Result<Cached> {
        let mut schemas = SmallVec::new();
        for slot in template.slots() {
            schemas.push(self.resolve(slot, statement_map)?);
        }
        let key = StatementKey {
            template: template.key(),
            schemas,
        };
        let state = self.exec.conn_state();
        let threshold = match state.mode {
            StatementMode::Prepared => state.prepare_threshold,
            StatementMode::Unnamed => 0,
        };
        match state.cache.get(&key) {
            Some((CachedStatement::Unnamed(sql), uses))
                if threshold > 0 && uses >= threshold && uses != NEVER_PREPARE =>
            {
                if defer_prepare {
                    return Ok(Cached {
                        key,
                        statement: CachedStatement::Unnamed(sql),
                        uses,
                        prepare_due: true,
                    });
                }
                let statement = Box::pin(self.prepare_cached(key.clone(), &sql, uses)).await?;
                return Ok(Cached::ready(
                    key,
                    CachedStatement::Prepared(statement),
                    uses,
                ));
            }
            Some((statement, uses)) => return Ok(Cached::ready(key, statement, uses)),
            None => {}
        }
        state.note_schemas(&key.schemas);
        let mut fills = key.schemas.iter();
        let sql = template.render(|_| *fills.next().expect("one schema per slot"));
        state.cache.note_render();
        let sql: std::sync::Arc<str> = sql.into();
        if threshold != 1 {
            // Cached as unnamed SQL if admitted: a full cache admits only a statement used
            // more often lately than the one it would evict.
            state
                .cache
                .offer(key.clone(), CachedStatement::Unnamed(sql.clone()));
            return Ok(Cached::ready(key, CachedStatement::Unnamed(sql), 1));
        }
        // Threshold 1: every statement prepared on its first use, and kept.
        if defer_prepare {
            state
                .cache
                .insert(key.clone(), CachedStatement::Unnamed(sql.clone()), 1);
            return Ok(Cached {
                key,
                statement: CachedStatement::Unnamed(sql),
                uses: 1,
                prepare_due: true,
            });
        }
        let statement = Box::pin(self.prepare_cached(key.clone(), &sql, 1)).await?;
        Ok(Cached::ready(key, CachedStatement::Prepared(statement), 1))
    }

    /// Prepares `sql` (one round trip) and caches it under `key`, as used `uses` times.
    async fn prepare_cached(&self, key: StatementKey, sql: &str, uses: u32) -> Result<Statement> {
        tracing::debug!(%sql, "preparing");
        let statement = self.exec.pg().prepare(sql).await?;
        self.keep_prepared(key, statement.clone(), uses);
        Ok(statement)
    }

    /// Caches `statement`, just prepared, under `key`, as used `uses` times.
    fn keep_prepared(&self, key: StatementKey, statement: Statement, uses: u32) {
        let cache = &self.exec.conn_state().cache;
        cache.note_prepare();
        cache.insert(key, CachedStatement::Prepared(statement), uses);
    }

    /// The prepared statement for `template` on this connection, from the statement cache
    /// (rendering and preparing it on a miss, or if it was cached unprepared).
    ///
    /// In [`StatementMode::Unnamed`] only the rendered SQL is cached; the statement returned
    /// is prepared anew, named, and closed when dropped: behind a transaction pooler, use it
    /// inside a transaction only.
    pub async fn prepare(
        &self,
        template: &Template,
        statement_map: Option<&SchemaMap>,
    ) -> Result<Statement> {
        let Cached {
            key,
            statement,
            uses,
            ..
        } = self.cached(template, statement_map, false).await?;
        match statement {
            CachedStatement::Prepared(statement) => Ok(statement),
            CachedStatement::Unnamed(sql) => match self.exec.conn_state().mode {
                StatementMode::Prepared => self.prepare_cached(key, &sql, uses).await,
                StatementMode::Unnamed => self.exec.pg().prepare(&sql).await,
            },
        }
    }

    /// The enum types (with this database's OIDs) of the schemas `template` names, for
    /// typing unnamed-statement parameters (see `exec/param_types.rs`).
    async fn enum_types_of(
        &self,
        template: &Template,
        statement_map: Option<&SchemaMap>,
    ) -> Result<Vec<Type>> {
        let mut schemas: SmallVec<[SchemaName; 4]> = SmallVec::new();
        for slot in template.slots() {
            let schema = self.resolve(slot, statement_map)?;
            if !schemas.contains(&schema) {
                schemas.push(schema);
            }
        }
        schema_enum_types(self.exec.pg(), &self.exec.conn_state().enum_types, &schemas).await
    }

    /// The span every statement runs in: it carries the tenant key, so logs of concurrent
    /// requests say which tenant each statement ran for.
    fn span(&self) -> tracing::Span {
        tracing::debug_span!("tenant_statement", tenant = self.tenant.key())
    }

    // The template-level statement API: for templates built by hand
    // (`Template::builder`) or taken from elsewhere (`Select::to_template`,
    // a `lifecycle::Migration`). The same five names finish every other
    // query kind.

    /// Runs `template` and returns every row.
    ///
    /// ```no_run
    /// use tenant_runtime::{sql::Template, Allowlist, Client, Slot};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let db = client.for_tenant(&acme);
    /// let recent = Template::builder()
    ///     .sql("SELECT id FROM ")
    ///     .table(Slot::Tenant, "events")
    ///     .sql(" WHERE at_ms > $1")
    ///     .build();
    /// let rows = db.fetch_all(&recent, &[&1_700_000_000_000i64]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_all(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.run(template, params, None, Rows).await
    }

    /// Runs `template`, which must return exactly one row: [`Error::RowNotFound`] if none,
    /// [`Error::TooManyRows`] if more.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use tenant_runtime::{sql::Template, Allowlist, Client, Slot};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let db = client.for_tenant(&acme);
    /// let by_id = Template::builder().sql("SELECT kind FROM ").table(Slot::Tenant, "events").sql(" WHERE id = $1").build();
    /// let kind: String = db.fetch_one(&by_id, &[&7i64]).await?.get(0);
    /// let maybe = db.fetch_optional(&by_id, &[&8i64]).await?;
    /// let purge = Template::builder().sql("DELETE FROM ").table(Slot::Tenant, "events").build();
    /// let deleted: u64 = db.execute(&purge, &[]).await?;
    /// let all = Template::builder().sql("SELECT kind FROM ").table(Slot::Tenant, "events").build();
    /// let mut rows = db.stream(&all, &[]).await?;
    /// while let Some(row) = rows.try_next().await? { let _: String = row.get(0); }
    /// # Ok(()) }
    /// ```
    pub async fn fetch_one(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        exactly_one(self.fetch_all(template, params).await?)
    }

    /// Runs `template`, which must return at most one row ([`Error::TooManyRows`] if more).
    pub async fn fetch_optional(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        at_most_one(self.fetch_all(template, params).await?)
    }

    /// Runs `template` and returns its rows as a stream, without holding them all in memory.
    pub async fn stream(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<QueryStream<Row>> {
        let rows = self.run(template, params, None, RowsStream).await?;
        Ok(QueryStream::new(rows, Ok))
    }

    /// The one path every statement of the runtime takes (models, builder, checked queries,
    /// bulk loads, migrations): the statement cache (render on a miss, prepare at the prepare
    /// threshold), the statement mode, the tenant span, then `act` on the driver.
    pub(crate) async fn run<A: Act>(
        &self,
        template: &Template,
        params: &[&(dyn ToSql + Sync)],
        statement_map: Option<&SchemaMap>,
        act: A,
    ) -> Result<A::Output> {
        // The rare paths (a prepare, an enum lookup, a retry) await boxed futures: inline,
        // each would widen every statement's future, which the layers above copy, by a
        // kilobyte (a `Model::get` future: 4,192 bytes with them inline, 3,112 boxed).
        let statement = async {
            let pg = self.exec.pg();
            let Cached {
                key,
                statement,
                uses,
                prepare_due,
            } = self
                .cached(template, statement_map, A::PIPELINES_PREPARE)
                .await?;
            match statement {
                CachedStatement::Prepared(statement) => {
                    match act.prepared(pg, &statement, params).await {
                        // The server inferred a parameter type the Rust value does not encode
                        // (an `i32` for a `bigint`): typed from the values, as the statement's
                        // unnamed uses were, it runs. Keep it unnamed from now on, so that a
                        // statement that worked does not start failing once prepared.
                        Err(e) if is_wrong_type(&e) => {
                            let Ok(typed) = typed_params(params, &[]) else {
                                return Err(e);
                            };
                            let mut fills = key.schemas.iter();
                            let sql: std::sync::Arc<str> = template
                                .render(|_| *fills.next().expect("one schema per slot"))
                                .into();
                            self.exec.conn_state().cache.insert(
                                key,
                                CachedStatement::Unnamed(sql.clone()),
                                NEVER_PREPARE,
                            );
                            Box::pin(act.unnamed(pg, &sql, &typed)).await
                        }
                        result => result,
                    }
                }
                CachedStatement::Unnamed(sql) => match typed_params(params, &[]) {
                    // Due for preparing: run unnamed and prepare it in the same round trip
                    // (both requests pipelined on the connection, the statement first), so
                    // the use that reaches the threshold costs no extra round trip.
                    Ok(typed) if prepare_due => {
                        let (output, prepared) = Box::pin(futures_util::future::join(
                            act.unnamed(pg, &sql, &typed),
                            pg.prepare(&sql),
                        ))
                        .await;
                        // A failed prepare (the statement failed too, or its transaction is
                        // aborted) leaves the statement unnamed, to be prepared at its next use.
                        if let Ok(statement) = prepared {
                            tracing::debug!(%sql, "prepared, pipelined with its run");
                            self.keep_prepared(key, statement, uses);
                        }
                        output
                    }
                    Ok(typed) => act.unnamed(pg, &sql, &typed).await,
                    // A value of a type that is not built in (a custom enum, say): in
                    // Prepared mode, prepare now (the server gives the types, no lookup)...
                    Err(Error::UntypedParameter { .. })
                        if self.exec.conn_state().mode == StatementMode::Prepared =>
                    {
                        let statement = Box::pin(self.prepare_cached(key, &sql, uses)).await?;
                        Box::pin(act.prepared(pg, &statement, params)).await
                    }
                    // ...in Unnamed mode, maybe an enum of the statement's schemas.
                    Err(Error::UntypedParameter { .. }) => {
                        let types = Box::pin(self.enum_types_of(template, statement_map)).await?;
                        let typed = typed_params(params, &types)?;
                        Box::pin(act.unnamed(pg, &sql, &typed)).await
                    }
                    Err(e) => Err(e),
                },
            }
        };
        // Entered only if a subscriber wants it: with none (or with tracing's `log` feature
        // and no logger), entering and leaving the span at every poll is most of its cost.
        let span = self.span();
        if span.is_disabled() {
            statement.await
        } else {
            statement.instrument(span).await
        }
    }
}

/// A statement cache lookup of [`Db::cached`].
struct Cached {
    key: StatementKey,
    statement: CachedStatement,
    /// Uses so far, this one included.
    uses: u32,
    /// Unnamed and at the prepare threshold: to be prepared along with this use.
    prepare_due: bool,
}

impl Cached {
    fn ready(key: StatementKey, statement: CachedStatement, uses: u32) -> Cached {
        Cached {
            key,
            statement,
            uses,
            prepare_due: false,
        }
    }
}

/// The use count of a cached statement that stays unnamed: its values do not encode the
/// parameter types the server infers (see [`Db::run`]). Saturating counts stay at it.
const NEVER_PREPARE: u32 = u32::MAX;

/// Whether `error` is a value refused by the parameter type of a prepared statement.
fn is_wrong_type(error: &Error) -> bool {
    match error {
        Error::Db(e) => std::error::Error::source(e)
            .is_some_and(|source| source.is::<postgres_types::WrongType>()),
        _ => false,
    }
}

/// The writes: only on an executor that may write ([`Writable`]), so a replica handle
/// (a `ReplicaDb`, see [`TenantPool`](crate::TenantPool)) does not compile with them. Reads (`fetch_*`, `stream`) run on
/// every executor.
impl<E: Executor> Db<E> {
    /// Runs `template` and returns the number of rows it affected.
    ///
    /// ```compile_fail
    /// # use tenant_runtime::{ReplicaDb, Template};
    /// async fn delete_everything(db: &ReplicaDb, template: &Template) {
    ///     db.execute(template, &[]).await; // a replica handle cannot write
    /// }
    /// ```
    pub async fn execute(&self, template: &Template, params: &[&(dyn ToSql + Sync)]) -> Result<u64>
    where
        E: Writable,
    {
        self.run(template, params, None, Affected).await
    }

    /// Creates the tenant's schema if it does not exist yet.
    ///
    /// This is the bare primitive; provisioning (grants, tables, registry) builds on it.
    pub async fn create_schema(&self) -> Result<()>
    where
        E: Writable,
    {
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
    /// [`AllowlistError::ReservedSchema`](crate::error::AllowlistError::ReservedSchema) and
    /// [`Error::InvalidSchemaName`]). When a registry is in
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
    pub async fn drop_schema(&self) -> Result<()>
    where
        E: Writable,
    {
        let mut sql = String::from("DROP SCHEMA IF EXISTS ");
        self.tenant.schema().push_quoted(&mut sql);
        sql.push_str(" CASCADE");
        self.exec.pg().batch_execute(&sql).await
    }

    /// Runs one or more parameterless statements of the caller's through the simple query
    /// protocol, as one implicit transaction (all or nothing); not cached.
    ///
    /// An escape hatch like [`Client::as_tokio_postgres`](crate::Client::as_tokio_postgres):
    /// the SQL may change the session, so the connection is marked for a reset before a pool
    /// hands it out again. The library's own DDL never goes through it. On Citus, send one
    /// statement per call: a string with a `CREATE INDEX` next to another statement is
    /// refused for a distributed schema.
    pub async fn batch_execute(&self, template: &Template) -> Result<()>
    where
        E: Writable,
    {
        let sql = self.render(template, None)?;
        self.exec.conn_state().mark_needs_reset();
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

/// What running a statement is for, as the driver calls it in each [`StatementMode`]: every
/// row ([`Rows`]), the affected-row count ([`Affected`]) or a row stream ([`RowsStream`]).
pub(crate) trait Act: Copy + Send {
    type Output: Send;

    /// Whether a statement due for preparing may run unnamed with its prepare pipelined
    /// behind it: only if `Output` holds the whole result (a stream's prepare would wait for
    /// the stream's end).
    const PIPELINES_PREPARE: bool = true;

    /// With a named prepared statement.
    fn prepared<'a>(
        self,
        pg: PgRef<'a>,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a;

    /// With the unnamed statement, parameter types sent along.
    fn unnamed<'a>(
        self,
        pg: PgRef<'a>,
        sql: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a;
}

/// Every row.
#[derive(Clone, Copy)]
pub(crate) struct Rows;

impl Act for Rows {
    type Output = Vec<Row>;
    fn prepared<'a>(
        self,
        pg: PgRef<'a>,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send + 'a {
        pg.query(statement, params)
    }
    fn unnamed<'a>(
        self,
        pg: PgRef<'a>,
        sql: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send + 'a {
        pg.query_typed(sql, params)
    }
}

/// The number of rows affected.
#[derive(Clone, Copy)]
pub(crate) struct Affected;

impl Act for Affected {
    type Output = u64;
    fn prepared<'a>(
        self,
        pg: PgRef<'a>,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64>> + Send + 'a {
        pg.execute(statement, params)
    }
    fn unnamed<'a>(
        self,
        pg: PgRef<'a>,
        sql: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<u64>> + Send + 'a {
        pg.execute_typed(sql, params)
    }
}

/// The rows as a stream.
#[derive(Clone, Copy)]
pub(crate) struct RowsStream;

impl Act for RowsStream {
    type Output = RowStream;
    const PIPELINES_PREPARE: bool = false;
    fn prepared<'a>(
        self,
        pg: PgRef<'a>,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<RowStream>> + Send + 'a {
        pg.query_raw(statement, params)
    }
    fn unnamed<'a>(
        self,
        pg: PgRef<'a>,
        sql: &'a str,
        params: &'a [(&'a (dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<RowStream>> + Send + 'a {
        pg.query_typed_raw(sql, params)
    }
}

/// The row of `rows` if there is at most one, else [`Error::TooManyRows`]: the one rule behind
/// every `fetch_optional` (and, with [`exactly_one`], every `fetch_one`).
pub(crate) fn at_most_one(mut rows: Vec<Row>) -> Result<Option<Row>> {
    match rows.len() {
        0 | 1 => Ok(rows.pop()),
        _ => Err(Error::TooManyRows),
    }
}

/// The one row of `rows`: [`Error::RowNotFound`] if none, [`Error::TooManyRows`] if more.
pub(crate) fn exactly_one(rows: Vec<Row>) -> Result<Row> {
    at_most_one(rows)?.ok_or(Error::RowNotFound)
}
