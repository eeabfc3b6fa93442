//! Models: [`Model`], the trait `#[derive(Model)]` implements (table metadata, row decoding,
//! and the statements every model gets), [`Keyed`] for models with a primary key, and
//! everything generic over one model: its typed [`Column`]s with their operators
//! ([`Filter`], [`Order`], [`Bind`]), the typed query builder ([`Select`]), bulk loads
//! ([`bulk`]), the Rust-to-SQL type mapping ([`SqlType`]), DDL ([`ddl`]) and the
//! [`ModelSet`] an application creates in each tenant schema, and what a live schema holds
//! compared with it ([`inspect`], [`Difference`]).

mod builder;
pub mod bulk;
mod column;
mod constraint;
pub mod ddl;
mod diff;
mod filter;
pub mod inspect;
mod set;
mod sql_type;

use std::borrow::Borrow;
use std::convert::Infallible;
use std::future::Future;

use futures_util::Stream;
use postgres_types::ToSql;
use smallvec::SmallVec;
use tokio_postgres::Row;

pub use builder::{Delete, Select, Update, UpdateSet};
pub use column::{Column, ColumnDef, ForeignKey};
pub use constraint::{
    ConstraintDef, FkAction, IdentityOptions, IndexDef, IndexKey, TableConstraint,
};
pub use diff::Difference;
pub use filter::{Bind, Filter, Order};
pub(crate) use filter::{Node, Value};
pub use inspect::{
    ColumnShape, ConstraintKind, ConstraintShape, IndexShape, Reference, SchemaShape,
    SchemaSnapshot, TableShape,
};
pub use set::{ModelInfo, ModelSet};
pub use sql_type::{EnumType, SqlEnum, SqlType};
// Autogenerate's SQL for differences (alter.rs).
mod alter;
pub(crate) use alter::alter_sql;

use crate::error::Result;
use crate::exec::{Begin, Db, Executor, Writable};
use crate::sql::{Slot, Template};

/// Bind parameters of one statement; inline up to 16, so most rows bind without allocating.
/// Not public API (the derive names it through `__private`).
#[doc(hidden)]
pub type Params<'a> = SmallVec<[&'a (dyn ToSql + Sync); 16]>;

/// The statement templates of one model, generated at compile time.
#[doc(hidden)]
#[derive(Debug)]
pub struct ModelTemplates {
    pub insert: Template,
    pub select_all: Template,
    pub count: Template,
    pub get: Option<Template>,
    pub update: Option<Template>,
    pub delete: Option<Template>,
}

/// A table in a schema slot, with its rows as `Self`. Implement it with `#[derive(Model)]`.
///
/// Every method takes a [`Db`] handle, which carries the [`Tenant`](crate::Tenant) and the
/// [`SchemaMap`](crate::SchemaMap) that fill the slots.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&allowlist.resolve("acme")?);
/// Note::create_table(&db).await?;
/// let note = Note { id: 0, body: "hi".into() }.insert(&db).await?; // id comes back
/// assert_eq!(Note::get(&db, note.id).await?.unwrap().body, "hi");
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tenant model",
    label = "not a model",
    note = "add `#[derive(tenant_runtime::Model)]` to `{Self}`"
)]
pub trait Model: Sized + Send + Sync + 'static {
    /// The Rust type name.
    const NAME: &'static str;
    /// The table name.
    const TABLE: &'static str;
    /// The schema slot the table lives in.
    const SLOT: Slot;
    /// The columns, in field order (which is also decode order).
    const COLUMNS: &'static [ColumnDef];
    /// Names of the primary-key columns, in key order (empty if none).
    const PRIMARY_KEY: &'static [&'static str];
    /// Every constraint of the table, named: the primary key, then field-level foreign keys,
    /// unique and check constraints in field order, then container-level ones in attribute
    /// order.
    const CONSTRAINTS: &'static [TableConstraint] = &[];
    /// Every index of the table that backs no constraint, named: field-level `index`, then
    /// container-level `index(..)`.
    const INDEXES: &'static [IndexDef] = &[];
    #[doc(hidden)]
    fn templates() -> &'static ModelTemplates;

    /// Decodes a row whose columns are this model's columns, in order.
    fn from_row(row: &Row) -> Result<Self>;

    /// Parameters for `INSERT` (every column but identity columns, in order).
    #[doc(hidden)]
    fn insert_params(&self) -> Params<'_>;

    /// A typed query over this model's rows: filter, order, limit, then read, count, update
    /// or delete them (see [`Select`]). Rows are not sorted unless the query says
    /// [`order_by`](Select::order_by): `M::query().fetch_all(&db)` and `.stream(&db)` read
    /// every row in the server's order, with no `ORDER BY`.
    ///
    /// ```
    /// use tenant_runtime::Model;
    ///
    /// #[derive(Model)]
    /// #[tenant(table = "notes")]
    /// struct Note { #[tenant(primary_key)] id: i64, pinned: bool }
    ///
    /// let q = Note::query().filter(Note::PINNED.eq(true)).order_by(Note::ID.desc()).limit(20);
    /// assert_eq!(
    ///     q.to_template().to_string(),
    ///     r#"SELECT "id", "pinned" FROM {tenant}."notes" WHERE "pinned" = $1 ORDER BY "id" DESC LIMIT $2"#
    /// );
    /// ```
    fn query<'a>() -> Select<'a, Self> {
        Select::new()
    }

    /// Inserts the row and returns it as stored (with identity values and defaults).
    fn insert<E: Writable>(&self, db: &Db<E>) -> impl Future<Output = Result<Self>> + Send {
        async move {
            let row = db
                .fetch_one(&Self::templates().insert, &self.insert_params())
                .await?;
            Self::from_row(&row)
        }
    }

    /// Inserts every row of `rows` with multi-row `INSERT`s and returns how many were
    /// inserted. All of them or none: when the rows need more than one statement
    /// (see [`bulk::rows_per_insert`]) they run in one transaction, or a savepoint if `db` is
    /// already a transaction. Identity columns are generated, as with [`Model::insert`].
    ///
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Model};
    ///
    /// #[derive(Model)]
    /// #[tenant(table = "events")]
    /// struct Event { #[tenant(primary_key, identity)] id: i64, kind: String }
    ///
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let mut db = client.for_tenant(&acme);
    /// let events: Vec<Event> = (0..100_000).map(|i| Event { id: 0, kind: format!("k{i}") }).collect();
    /// assert_eq!(Event::insert_many(&mut db, &events).await?, 100_000); // 4 statements, 1 transaction
    /// # Ok(()) }
    /// ```
    fn insert_many<E: Begin + Writable>(
        db: &mut Db<E>,
        rows: &[Self],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move { Ok(bulk::insert_many(db, rows, false).await?.0) }
    }

    /// [`Model::insert_many`], returning the rows as stored (with generated identity values
    /// and defaults), in the order of `rows`.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model};
    /// # #[derive(Model)] #[tenant(table = "events")]
    /// # struct Event { #[tenant(primary_key, identity)] id: i64, kind: String }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let mut db = client.for_tenant(&acme);
    /// let rows = [Event { id: 0, kind: "a".into() }, Event { id: 0, kind: "b".into() }];
    /// let stored = Event::insert_many_returning(&mut db, &rows).await?;
    /// assert_eq!(stored[1].kind, "b");
    /// assert!(stored[1].id > stored[0].id);
    /// # Ok(()) }
    /// ```
    fn insert_many_returning<E: Begin + Writable>(
        db: &mut Db<E>,
        rows: &[Self],
    ) -> impl Future<Output = Result<Vec<Self>>> + Send {
        async move { Ok(bulk::insert_many(db, rows, true).await?.1) }
    }

    /// Loads `rows` with one binary `COPY ... FROM STDIN` and returns how many were written.
    /// One statement, so all or nothing: an error on any row (a value the column type
    /// rejects, a constraint) aborts the `COPY` and nothing is written. Identity columns are
    /// generated, as with [`Model::insert`]. The items may be models or references to them.
    ///
    /// On Citus, a `COPY` that breaks a foreign key fails with SQLSTATE `XX000` (internal
    /// error, raised on the worker), where the same row through `INSERT` fails with `23503`
    /// (foreign-key violation): match on the code with that in mind, or validate the keys
    /// first.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model};
    /// # #[derive(Model)] #[tenant(table = "events")]
    /// # struct Event { #[tenant(primary_key, identity)] id: i64, kind: String }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let db = client.for_tenant(&acme);
    /// let events = (0..1_000_000).map(|i| Event { id: 0, kind: format!("k{i}") });
    /// assert_eq!(Event::copy_in(&db, events).await?, 1_000_000);
    /// # Ok(()) }
    /// ```
    fn copy_in<E, I>(db: &Db<E>, rows: I) -> impl Future<Output = Result<u64>> + Send
    where
        E: Writable,
        I: IntoIterator + Send,
        I::IntoIter: Send,
        I::Item: Borrow<Self> + Send,
    {
        let source = futures_util::stream::iter(rows.into_iter().map(Ok::<_, Infallible>));
        bulk::copy_in::<Self, _, _, _, _>(db, source)
    }

    /// [`Model::copy_in`] from a stream of results (rows read from a file, a socket, another
    /// database...). The first `Err` the stream yields aborts the `COPY` — nothing is
    /// written — and comes back as [`Error::CopySource`](crate::Error::CopySource).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model};
    /// # #[derive(Model)] #[tenant(table = "events")]
    /// # struct Event { #[tenant(primary_key, identity)] id: i64, kind: String }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let db = client.for_tenant(&acme);
    /// let lines = futures_util::stream::iter(["a", "b", "oops"]);
    /// let events = futures_util::StreamExt::map(lines, |kind| match kind {
    ///     "oops" => Err(std::io::Error::other("line 3 is malformed")),
    ///     kind => Ok(Event { id: 0, kind: kind.into() }),
    /// });
    /// let failed = Event::copy_in_stream(&db, events).await;
    /// assert!(matches!(failed, Err(tenant_runtime::Error::CopySource { .. })));
    /// assert_eq!(Event::query().count(&db).await?, 0); // "a" and "b" were not written either
    /// # Ok(()) }
    /// ```
    fn copy_in_stream<E, S, T, SE>(db: &Db<E>, rows: S) -> impl Future<Output = Result<u64>> + Send
    where
        E: Writable,
        S: Stream<Item = std::result::Result<T, SE>> + Send,
        T: Borrow<Self> + Send,
        SE: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        bulk::copy_in::<Self, _, _, _, _>(db, rows)
    }

    /// Fetches the row with primary key `key`.
    fn get<E: Executor>(
        db: &Db<E>,
        key: <Self as Keyed>::Key,
    ) -> impl Future<Output = Result<Option<Self>>> + Send
    where
        Self: Keyed,
    {
        async move {
            let template = Self::templates()
                .get
                .as_ref()
                .expect("keyed models have get");
            let row = db.fetch_optional(template, &Self::key_params(&key)).await?;
            row.as_ref().map(Self::from_row).transpose()
        }
    }

    /// Writes every non-key column of `self` to the row with the same key; returns whether a
    /// row was updated.
    fn update<E: Writable>(&self, db: &Db<E>) -> impl Future<Output = Result<bool>> + Send
    where
        Self: Keyed,
    {
        async move {
            match Self::templates().update.as_ref() {
                Some(template) => Ok(db.execute(template, &self.update_params()).await? == 1),
                // Every column is part of the key: there is nothing to write, only to find.
                None => Ok(db
                    .fetch_optional(
                        Self::templates().get.as_ref().expect("keyed"),
                        &self.update_params(),
                    )
                    .await?
                    .is_some()),
            }
        }
    }

    /// Deletes the row with primary key `key`; returns whether a row was deleted.
    fn delete<E: Writable>(
        db: &Db<E>,
        key: <Self as Keyed>::Key,
    ) -> impl Future<Output = Result<bool>> + Send
    where
        Self: Keyed,
    {
        async move {
            let template = Self::templates().delete.as_ref().expect("keyed");
            Ok(db.execute(template, &Self::key_params(&key)).await? == 1)
        }
    }

    /// Creates the enum types of its columns ([`ddl::create_enum_type`]), then the table, its
    /// constraints and its indexes in the model's slot, each if missing, in one transaction
    /// (`db`'s, if it is one), one statement per query string ([`ddl::create_table`]).
    fn create_table<E: Writable>(db: &Db<E>) -> impl Future<Output = Result<()>> + Send {
        async move {
            let statements = ddl::enum_types::<Self>()
                .into_iter()
                .map(|ty| ddl::create_enum_type(Self::SLOT, ty))
                .chain(ddl::create_table::<Self>())
                .map(|t| db.render(&t, None))
                .collect::<Result<Vec<_>>>()?;
            db.executor().conn_state().enum_types.clear();
            ddl::run_statements(db.executor().pg(), &statements).await
        }
    }

    /// Drops the table if it exists: runs the DDL [`ddl::drop_table`] renders. Enum types
    /// stay (other models may use them); [`ModelSet::drop_all`] drops them too.
    fn drop_table<E: Writable>(db: &Db<E>) -> impl Future<Output = Result<()>> + Send {
        async move {
            let statement = db.render(&ddl::drop_table::<Self>(), None)?;
            ddl::run_statements(db.executor().pg(), &[statement]).await
        }
    }
}

/// A [`Model`] with a primary key: it can be fetched, updated and deleted by key.
///
/// `#[derive(Model)]` implements it when a field is marked `#[tenant(primary_key)]`; `Key`
/// is that field's type, or a tuple for a composite key, in field order.
///
/// ```
/// use tenant_runtime::{Keyed, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "seats")]
/// struct Seat {
///     #[tenant(primary_key)] section: i32,
///     #[tenant(primary_key)] number: i32,
///     taken: bool,
/// }
///
/// fn keys<M: Keyed>(rows: &[M]) -> Vec<M::Key> {
///     rows.iter().map(Keyed::key).collect()
/// }
/// let seats = [Seat { section: 1, number: 2, taken: false }, Seat { section: 3, number: 4, taken: true }];
/// assert_eq!(keys(&seats), [(1, 2), (3, 4)]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no primary key",
    label = "this model has no primary key",
    note = "mark the key field(s) of `{Self}` with `#[tenant(primary_key)]` to fetch, update or delete by key"
)]
pub trait Keyed: Model {
    /// The primary key: the key field's type, or a tuple of them.
    type Key: Send + Sync;

    /// Bind parameters for the key.
    #[doc(hidden)]
    fn key_params(key: &Self::Key) -> Params<'_>;

    /// Parameters for `UPDATE`: non-key columns, then key columns.
    #[doc(hidden)]
    fn update_params(&self) -> Params<'_>;

    /// This row's key.
    fn key(&self) -> Self::Key;
}
