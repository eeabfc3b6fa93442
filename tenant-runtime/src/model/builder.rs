//! The typed query builder: `Invoice::query().filter(..).order_by(..).limit(..).fetch_all(&db)`.
//!
//! A builder statement becomes a [`Template`] plus bind parameters. Equal statement shapes
//! share one template in the process and one prepared statement per (shape, schemas) on a
//! connection: values, limits and offsets are parameters and never change the shape, so
//! `Invoice::query().filter(Invoice::ID.eq(n))` is built once, and rendered and prepared once
//! per schema, whatever `n` is.
//!
//! The template of a shape is kept in a process-wide cache ([`SHAPE_CACHE_CAPACITY`] shapes),
//! keyed by the shape's structure (the model's type, the columns and operators by address,
//! the presence of a limit and an offset): a repeated statement builds no SQL, and its
//! template's key in the connection's statement cache is one number, not the SQL text.

use std::any::TypeId;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use lru::LruCache;

use postgres_types::ToSql;
use smallvec::SmallVec;
use tokio_postgres::Row;

use super::{Bind, Filter, Node, Order, Value};
use super::{Column, Model, Params};
use crate::error::Result;
use crate::exec::{at_most_one, exactly_one, Affected, Rows, RowsStream};
use crate::exec::{Db, Executor, QueryStream, Writable};
use crate::sql::{SchemaMap, Template, TemplateBuilder};

/// How many builder statement shapes the process keeps built, over all models. A service has
/// a fixed set of query shapes (values never change one), so this bound is only reached by
/// code that builds shapes from data (say, a filter per user-chosen column set); past it the
/// least recently used shape is built again when it comes back.
pub(crate) const SHAPE_CACHE_CAPACITY: usize = 1024;

/// What decides a builder statement's SQL, values left out: a list of words (tags, counts,
/// and each `'static` column name and operator).
///
/// Names and operators are kept as text, compared and hashed by content: the same literal
/// may sit at several addresses in one binary (a `const` is copied into each codegen unit
/// that uses it), so keying by address would build, cache and prepare one shape several times.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct ShapeKey(SmallVec<[Word; 16]>);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Word {
    Number(usize),
    Text(&'static str),
}

impl ShapeKey {
    pub(crate) fn push(&mut self, word: usize) {
        self.0.push(Word::Number(word));
    }

    pub(crate) fn push_str(&mut self, text: &'static str) {
        self.0.push(Word::Text(text));
    }
}

type ShapeCache = Mutex<LruCache<(TypeId, ShapeKey), Arc<Template>>>;

static SHAPES: LazyLock<ShapeCache> = LazyLock::new(|| {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(SHAPE_CACHE_CAPACITY).expect("non-zero"),
    ))
});

/// The template of shape `key` of model `M`: from the cache of shapes, else built by `build`
/// (outside the lock) and kept.
fn shaped<M: Model>(key: ShapeKey, build: impl FnOnce() -> TemplateBuilder) -> Arc<Template> {
    let key = (TypeId::of::<M>(), key);
    let lock = || SHAPES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(template) = lock().get(&key) {
        return Arc::clone(template);
    }
    let built = Arc::new(build().build_shape());
    let mut cache = lock();
    // Another task may have built the same shape meanwhile: keep the first, so every caller
    // shares one template (and one statement-cache key).
    if let Some(template) = cache.get(&key) {
        return Arc::clone(template);
    }
    cache.put(key, Arc::clone(&built));
    built
}

/// The first word of a shape key: which statement.
#[derive(Clone, Copy)]
enum Kind {
    Rows = 1,
    Count,
    Exists,
    Update,
    Delete,
}

/// The rows of model `M` that match its filters: read them ([`fetch_all`](Select::fetch_all),
/// [`fetch_one`](Select::fetch_one), [`fetch_optional`](Select::fetch_optional),
/// [`stream`](Select::stream)), [`count`](Select::count) them, test for them
/// ([`exists`](Select::exists)), [`update`](Select::update) or [`delete`](Select::delete) them.
///
/// Made by [`Model::query`]. Filters are typed: `Invoice::PAID.eq("no")` does not compile.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
///
/// let unpaid: Vec<Invoice> = Invoice::query()
///     .filter(Invoice::PAID.eq(false))
///     .order_by(Invoice::ID.asc())
///     .limit(100)
///     .fetch_all(&db)
///     .await?;
/// let big = Invoice::query().filter(Invoice::AMOUNT_CENTS.ge(10_000)).count(&db).await?;
/// let settled = Invoice::query()
///     .filter(Invoice::ID.in_list(unpaid.iter().map(|i| i.id)))
///     .update()
///     .set(Invoice::PAID, true)
///     .execute(&db)
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until a terminal such as `fetch_all(&db)` runs it"]
pub struct Select<'a, M> {
    filters: Vec<Node<'a>>,
    order: SmallVec<[(&'static str, bool); 2]>,
    limit: Option<i64>,
    offset: Option<i64>,
    map: Option<&'a SchemaMap>,
    _model: PhantomData<fn() -> M>,
}

impl<'a, M: Model> Select<'a, M> {
    /// Every row of `M` (no filter yet). Usually reached as `M::query()`.
    pub fn new() -> Select<'a, M> {
        Select {
            filters: Vec::new(),
            order: SmallVec::new(),
            limit: None,
            offset: None,
            map: None,
            _model: PhantomData,
        }
    }

    /// Keeps the rows that match `filter` too (filters combine with `AND`).
    pub fn filter(mut self, filter: Filter<'a, M>) -> Select<'a, M> {
        self.filters.push(filter.into_node());
        self
    }

    /// Sorts by `order` after the orderings already given.
    pub fn order_by(mut self, order: Order<M>) -> Select<'a, M> {
        self.order.push((order.column, order.descending));
        self
    }

    /// Returns at most `n` rows (a bind parameter: any `n` shares one prepared statement).
    pub fn limit(mut self, n: u64) -> Select<'a, M> {
        self.limit = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// Skips the first `n` rows (a bind parameter).
    pub fn offset(mut self, n: u64) -> Select<'a, M> {
        self.offset = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// The statement-level [`SchemaMap`] (the narrowest of the three map levels) for this
    /// statement's named slots.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, SchemaMap};
    /// #[derive(Model)]
    /// #[tenant(table = "plans", schema = "shared")]
    /// struct Plan { #[tenant(primary_key)] code: String }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let db = client.for_tenant(&acme);
    /// let archive = SchemaMap::new().with("shared", "shared_2025")?;
    /// let old_plans = Plan::query().schema_map(&archive).fetch_all(&db).await?; // "shared_2025"."plans"
    /// # Ok(()) }
    /// ```
    pub fn schema_map(mut self, map: &'a SchemaMap) -> Select<'a, M> {
        self.map = Some(map);
        self
    }

    /// The SQL this query runs for its rows (slots shown as `{tenant}` / `{name}`), with its
    /// parameters numbered from `$1`.
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
    /// let q = Invoice::query().filter(Invoice::PAID.eq(false)).order_by(Invoice::ID.desc()).limit(10);
    /// assert_eq!(
    ///     q.to_template().to_string(),
    ///     r#"SELECT "id", "paid" FROM {tenant}."invoices" WHERE "paid" = $1 ORDER BY "id" DESC LIMIT $2"#
    /// );
    /// ```
    pub fn to_template(&self) -> Template {
        self.statement(Shape::Rows).0
    }

    /// The shape of this selection (filters, ordering, limit, offset; not the values).
    fn shape_key(&self, kind: Kind, key: &mut ShapeKey) {
        key.push(kind as usize);
        key.push(self.filters.len());
        self.filters.iter().for_each(|node| node.shape(key));
        key.push(self.order.len());
        for (column, descending) in &self.order {
            key.push_str(column);
            key.push(usize::from(*descending));
        }
        key.push(usize::from(self.limit.is_some()) | usize::from(self.offset.is_some()) << 1);
    }

    /// The statement of `shape`: its template from the cache of shapes, its parameters bound
    /// in the order the template numbers them.
    fn cached_statement(&self, shape: Shape) -> (Arc<Template>, Params<'_>) {
        let kind = match shape {
            Shape::Rows => Kind::Rows,
            Shape::Count => Kind::Count,
            Shape::Exists => Kind::Exists,
        };
        let mut key = ShapeKey::default();
        self.shape_key(kind, &mut key);
        let template = shaped::<M>(key, || self.statement_sql(shape).0);
        let mut params = Params::new();
        self.bind_selection(&mut params);
        (template, params)
    }

    /// The parameters [`write_selection`](Self::write_selection) numbers, in its order.
    fn bind_selection<'s>(&'s self, params: &mut Params<'s>) {
        self.filters.iter().for_each(|node| node.bind(params));
        if let Some(limit) = &self.limit {
            params.push(limit);
        }
        if let Some(offset) = &self.offset {
            params.push(offset);
        }
    }

    /// The parameters [`write_target`](Self::write_target) numbers, in its order.
    fn bind_target<'s>(&'s self, params: &mut Params<'s>) {
        if self.is_windowed() {
            self.bind_selection(params);
        } else {
            self.filters.iter().for_each(|node| node.bind(params));
        }
    }

    fn statement(&self, shape: Shape) -> (Template, Params<'_>) {
        let (mut sql, params) = self.statement_sql(shape);
        (sql.build(), params)
    }

    fn statement_sql(&self, shape: Shape) -> (TemplateBuilder, Params<'_>) {
        let mut sql = Template::builder();
        let mut params = Params::new();
        match shape {
            Shape::Rows => {
                sql.sql("SELECT ");
                push_columns::<M>(&mut sql);
                sql.sql(" FROM ");
                self.write_selection(&mut sql, &mut params);
            }
            Shape::Count if self.limit.is_none() && self.offset.is_none() => {
                sql.sql("SELECT count(*) FROM ");
                self.write_selection(&mut sql, &mut params);
            }
            Shape::Count => {
                sql.sql("SELECT count(*) FROM (SELECT 1 FROM ");
                self.write_selection(&mut sql, &mut params);
                sql.sql(") AS q");
            }
            Shape::Exists => {
                sql.sql("SELECT EXISTS (SELECT 1 FROM ");
                self.write_selection(&mut sql, &mut params);
                sql.sql(")");
            }
        }
        (sql, params)
    }

    /// `<table> [WHERE ..] [ORDER BY ..] [LIMIT $n] [OFFSET $n]`.
    fn write_selection<'s>(&'s self, sql: &mut TemplateBuilder, params: &mut Params<'s>) {
        sql.table(M::SLOT, M::TABLE);
        self.write_where(sql, params);
        for (i, (column, descending)) in self.order.iter().enumerate() {
            sql.sql(if i == 0 { " ORDER BY " } else { ", " })
                .ident(column)
                .sql(if *descending { " DESC" } else { " ASC" });
        }
        if let Some(limit) = &self.limit {
            params.push(limit);
            let _ = write!(sql, " LIMIT ${}", params.len());
        }
        if let Some(offset) = &self.offset {
            params.push(offset);
            let _ = write!(sql, " OFFSET ${}", params.len());
        }
    }

    fn write_where<'s>(&'s self, sql: &mut TemplateBuilder, params: &mut Params<'s>) {
        for (i, node) in self.filters.iter().enumerate() {
            sql.sql(if i == 0 { " WHERE " } else { " AND " });
            node.write(sql, params);
        }
    }

    /// Whether the rows are narrowed by more than the filters (so UPDATE and DELETE, which
    /// have no ORDER BY or LIMIT in PostgreSQL, must find them in a subquery).
    fn is_windowed(&self) -> bool {
        !self.order.is_empty() || self.limit.is_some() || self.offset.is_some()
    }

    /// `WHERE ..` of an UPDATE or DELETE, after the table.
    fn write_target<'s>(&'s self, sql: &mut TemplateBuilder, params: &mut Params<'s>) {
        if self.is_windowed() {
            // The rows this selection would return, identified by their physical row id.
            sql.sql(" WHERE ctid IN (SELECT ctid FROM ");
            self.write_selection(sql, params);
            sql.sql(")");
        } else {
            self.write_where(sql, params);
        }
    }

    /// The matching rows of `shape`, through the one run path.
    async fn rows<E: Executor>(&self, db: &Db<E>, shape: Shape) -> Result<Vec<Row>> {
        let (template, params) = self.cached_statement(shape);
        db.run(&template, &params, self.map, Rows).await
    }

    /// Every matching row, in the order of [`order_by`](Select::order_by); without one, in
    /// whatever order the server reads them (no `ORDER BY` is sent: sorting costs about a
    /// fifth of a plain scan's throughput, so it is only paid when asked for).
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
    /// assert!(!Invoice::query().to_template().to_string().contains("ORDER BY"));
    /// let sorted = Invoice::query().order_by(Invoice::ID.asc());
    /// assert!(sorted.to_template().to_string().ends_with(r#"ORDER BY "id" ASC"#));
    /// ```
    pub async fn fetch_all<E: Executor>(self, db: &Db<E>) -> Result<Vec<M>> {
        let rows = self.rows(db, Shape::Rows).await?;
        rows.iter().map(M::from_row).collect()
    }

    /// The one matching row: [`Error::RowNotFound`](crate::Error::RowNotFound) if none,
    /// [`Error::TooManyRows`](crate::Error::TooManyRows) if more.
    pub async fn fetch_one<E: Executor>(self, db: &Db<E>) -> Result<M> {
        M::from_row(&exactly_one(self.rows(db, Shape::Rows).await?)?)
    }

    /// The matching row if there is one;
    /// [`Error::TooManyRows`](crate::Error::TooManyRows) if more.
    pub async fn fetch_optional<E: Executor>(self, db: &Db<E>) -> Result<Option<M>> {
        let row = at_most_one(self.rows(db, Shape::Rows).await?)?;
        row.as_ref().map(M::from_row).transpose()
    }

    /// The number of matching rows (within `limit`/`offset` when given).
    pub async fn count<E: Executor>(self, db: &Db<E>) -> Result<i64> {
        let row = exactly_one(self.rows(db, Shape::Count).await?)?;
        Ok(row.try_get(0)?)
    }

    /// Whether any row matches.
    pub async fn exists<E: Executor>(self, db: &Db<E>) -> Result<bool> {
        let row = exactly_one(self.rows(db, Shape::Exists).await?)?;
        Ok(row.try_get(0)?)
    }

    /// The matching rows as a stream, decoded as they arrive: unsorted unless
    /// [`order_by`](Select::order_by) was given, as with [`fetch_all`](Select::fetch_all).
    pub async fn stream<E: Executor>(self, db: &Db<E>) -> Result<QueryStream<M>> {
        let (template, params) = self.cached_statement(Shape::Rows);
        let rows = db.run(&template, &params, self.map, RowsStream).await?;
        Ok(QueryStream::new(rows, decode_model::<M>))
    }

    /// Starts an `UPDATE` of the matching rows; give the new values with
    /// [`set`](Update::set). With `order_by`/`limit`/`offset`, exactly the rows this query
    /// would return are updated.
    pub fn update(self) -> Update<'a, M> {
        Update { select: self }
    }

    /// A `DELETE` of the matching rows. With `order_by`/`limit`/`offset`, exactly the rows
    /// this query would return are deleted.
    pub fn delete(self) -> Delete<'a, M> {
        Delete { select: self }
    }
}

impl<M: Model> Default for Select<'_, M> {
    fn default() -> Self {
        Select::new()
    }
}

impl<M: Model> std::fmt::Debug for Select<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Select").field(&self.to_template()).finish()
    }
}

fn decode_model<M: Model>(row: tokio_postgres::Row) -> Result<M> {
    M::from_row(&row)
}

#[derive(Clone, Copy)]
enum Shape {
    Rows,
    Count,
    Exists,
}

/// An `UPDATE` with no values yet: [`set`](Update::set) gives the first.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
/// // UPDATE "tenant_acme"."invoices" SET "paid" = $1 WHERE "amount_cents" = $2
/// let changed: u64 = Invoice::query()
///     .filter(Invoice::AMOUNT_CENTS.eq(0))
///     .update()                       // an Update
///     .set(Invoice::PAID, true)       // an UpdateSet
///     .execute(&db)
///     .await?;                        // rows affected
/// # Ok(()) }
/// ```
#[must_use = "an update does nothing until `set(..)` and `execute(&db)`"]
pub struct Update<'a, M> {
    select: Select<'a, M>,
}

impl<'a, M: Model> Update<'a, M> {
    /// Sets `column` to `value` (a bind parameter of the column's type).
    pub fn set<T, V>(self, column: Column<M, T>, value: V) -> UpdateSet<'a, M>
    where
        V: Bind<T> + ToSql + Sync + Send + 'a,
    {
        UpdateSet {
            select: self.select,
            sets: Vec::new(),
        }
        .set(column, value)
    }
}

/// An `UPDATE` with at least one value: run it with [`execute`](UpdateSet::execute).
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
/// let changed = Invoice::query()
///     .filter(Invoice::ID.eq(7))
///     .update()
///     .set(Invoice::PAID, true)
///     .set(Invoice::AMOUNT_CENTS, 1500)  // more values: still an UpdateSet
///     .execute(&db)
///     .await?;
/// assert!(changed <= 1);
/// # Ok(()) }
/// ```
#[must_use = "an update does nothing until `execute(&db)`"]
pub struct UpdateSet<'a, M> {
    select: Select<'a, M>,
    sets: Vec<(&'static str, Value<'a>)>,
}

impl<'a, M: Model> UpdateSet<'a, M> {
    /// Also sets `column` to `value`.
    pub fn set<T, V>(mut self, column: Column<M, T>, value: V) -> UpdateSet<'a, M>
    where
        V: Bind<T> + ToSql + Sync + Send + 'a,
    {
        self.sets.push((column.name(), Box::new(value)));
        self
    }

    /// The statement's SQL, slots shown as `{tenant}` / `{name}`.
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
    /// let u = Invoice::query().filter(Invoice::ID.lt(10)).update().set(Invoice::PAID, true);
    /// assert_eq!(
    ///     u.to_template().to_string(),
    ///     r#"UPDATE {tenant}."invoices" SET "paid" = $1 WHERE "id" < $2"#
    /// );
    /// ```
    pub fn to_template(&self) -> Template {
        self.statement().0
    }

    fn statement(&self) -> (Template, Params<'_>) {
        let (mut sql, params) = self.statement_sql();
        (sql.build(), params)
    }

    fn statement_sql(&self) -> (TemplateBuilder, Params<'_>) {
        let mut sql = Template::builder();
        let mut params = Params::new();
        sql.sql("UPDATE ").table(M::SLOT, M::TABLE);
        for (i, (column, value)) in self.sets.iter().enumerate() {
            params.push(&**value);
            sql.sql(if i == 0 { " SET " } else { ", " }).ident(column);
            let _ = write!(sql, " = ${}", params.len());
        }
        self.select.write_target(&mut sql, &mut params);
        (sql, params)
    }

    /// Runs the update; returns the number of rows updated.
    pub async fn execute<E: Writable>(self, db: &Db<E>) -> Result<u64> {
        let mut key = ShapeKey::default();
        self.select.shape_key(Kind::Update, &mut key);
        key.push(self.sets.len());
        self.sets
            .iter()
            .for_each(|(column, _)| key.push_str(column));
        let template = shaped::<M>(key, || self.statement_sql().0);
        let mut params = Params::new();
        self.sets
            .iter()
            .for_each(|(_, value)| params.push(&**value));
        self.select.bind_target(&mut params);
        db.run(&template, &params, self.select.map, Affected).await
    }
}

/// A `DELETE` of the rows a [`Select`] matches.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
/// // DELETE FROM "tenant_acme"."invoices" WHERE "paid" = $1
/// let deleted: u64 = Invoice::query().filter(Invoice::PAID.eq(true)).delete().execute(&db).await?;
/// # Ok(()) }
/// ```
#[must_use = "a delete does nothing until `execute(&db)`"]
pub struct Delete<'a, M> {
    select: Select<'a, M>,
}

impl<M: Model> Delete<'_, M> {
    /// The statement's SQL, slots shown as `{tenant}` / `{name}`.
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
    /// let d = Invoice::query().filter(Invoice::PAID.eq(true)).delete();
    /// assert_eq!(d.to_template().to_string(), r#"DELETE FROM {tenant}."invoices" WHERE "paid" = $1"#);
    /// ```
    pub fn to_template(&self) -> Template {
        self.statement().0
    }

    fn statement(&self) -> (Template, Params<'_>) {
        let (mut sql, params) = self.statement_sql();
        (sql.build(), params)
    }

    fn statement_sql(&self) -> (TemplateBuilder, Params<'_>) {
        let mut sql = Template::builder();
        let mut params = Params::new();
        sql.sql("DELETE FROM ").table(M::SLOT, M::TABLE);
        self.select.write_target(&mut sql, &mut params);
        (sql, params)
    }

    /// Runs the delete; returns the number of rows deleted.
    pub async fn execute<E: Writable>(self, db: &Db<E>) -> Result<u64> {
        let mut key = ShapeKey::default();
        self.select.shape_key(Kind::Delete, &mut key);
        let template = shaped::<M>(key, || self.statement_sql().0);
        let mut params = Params::new();
        self.select.bind_target(&mut params);
        db.run(&template, &params, self.select.map, Affected).await
    }
}

/// `"a", "b", ...`: the model's columns in decode order.
fn push_columns<M: Model>(sql: &mut TemplateBuilder) {
    for (i, column) in M::COLUMNS.iter().enumerate() {
        if i > 0 {
            sql.sql(", ");
        }
        sql.ident(column.name);
    }
}

#[cfg(test)]
mod tests {
    use super::ShapeKey;

    fn key(column: &'static str) -> ShapeKey {
        let mut key = ShapeKey::default();
        key.push(1);
        key.push_str(column);
        key
    }

    #[test]
    fn the_same_name_at_two_addresses_is_one_shape() {
        let here: &'static str = "id";
        let elsewhere: &'static str = Box::leak(String::from("id").into_boxed_str());
        assert_ne!(here.as_ptr(), elsewhere.as_ptr());
        assert!(key(here) == key(elsewhere));
        assert!(key(here) != key("qty"));
        assert!(key("ab") != key("a"));
    }
}
