//! The statements `query!`, `query_as!` and `query_scalar!` expand to: a `'static`
//! template checked at compile time, with the arguments captured by reference.

use std::marker::PhantomData;

use postgres_types::{FromSql, ToSql};
use tokio_postgres::Row;

use crate::error::{Error, Result};
use crate::exec::{at_most_one, exactly_one, Affected, Rows, RowsStream};
use crate::exec::{Db, Executor, QueryStream};
use crate::model::{Model, Params};
use crate::sql::{SchemaMap, Template};

/// What the three macro forms share: the template, the arguments and the statement map.
struct Statement<'a> {
    template: &'static Template,
    params: Params<'a>,
    map: Option<&'a SchemaMap>,
}

impl Statement<'_> {
    async fn rows<E: Executor>(&self, db: &Db<E>) -> Result<Vec<Row>> {
        db.run(self.template, &self.params, self.map, Rows).await
    }

    async fn at_most_one<E: Executor>(&self, db: &Db<E>) -> Result<Option<Row>> {
        at_most_one(self.rows(db).await?)
    }

    async fn exactly_one<E: Executor>(&self, db: &Db<E>) -> Result<Row> {
        exactly_one(self.rows(db).await?)
    }

    async fn execute<E: Executor>(&self, db: &Db<E>) -> Result<u64> {
        db.run(self.template, &self.params, self.map, Affected)
            .await
    }

    async fn stream<E: Executor, T>(
        &self,
        db: &Db<E>,
        decode: fn(Row) -> Result<T>,
    ) -> Result<QueryStream<T>> {
        let rows = db
            .run(self.template, &self.params, self.map, RowsStream)
            .await?;
        Ok(QueryStream::new(rows, decode))
    }
}

macro_rules! common_methods {
    () => {
        /// The statement-level [`SchemaMap`] (the narrowest of the three map levels) for the
        /// statement's named slots.
        pub fn schema_map(mut self, map: &'a SchemaMap) -> Self {
            self.statement.map = Some(map);
            self
        }

        /// The statement's template: its SQL with slots shown as `{tenant}` / `{name}`.
        pub fn template(&self) -> &'static Template {
            self.statement.template
        }

        /// Runs the statement; returns the number of rows it affected.
        pub async fn execute<E: Executor>(self, db: &Db<E>) -> Result<u64> {
            self.statement.execute(db).await
        }
    };
}

/// A statement from [`query!`](crate::query!): its rows are `tokio_postgres::Row`s.
///
/// ```no_run
/// use tenant_runtime::{query, Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
/// let row = query!("SELECT count(*) AS n FROM {Invoice} WHERE {Invoice.paid} = $1", false)
///     .fetch_one(&db)
///     .await?;
/// let n: i64 = row.get("n");
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until a terminal such as `fetch_all(&db)` runs it"]
pub struct Query<'a> {
    statement: Statement<'a>,
}

impl<'a> Query<'a> {
    #[doc(hidden)]
    pub fn __new<const N: usize>(
        template: &'static Template,
        params: [&'a (dyn ToSql + Sync); N],
    ) -> Query<'a> {
        Query {
            statement: Statement {
                template,
                params: Params::from_iter(params),
                map: None,
            },
        }
    }

    common_methods!();

    /// Every row.
    pub async fn fetch_all<E: Executor>(self, db: &Db<E>) -> Result<Vec<Row>> {
        self.statement.rows(db).await
    }

    /// The one row: [`Error::RowNotFound`] if none, [`Error::TooManyRows`] if more.
    pub async fn fetch_one<E: Executor>(self, db: &Db<E>) -> Result<Row> {
        self.statement.exactly_one(db).await
    }

    /// The row if there is one; [`Error::TooManyRows`] if more.
    pub async fn fetch_optional<E: Executor>(self, db: &Db<E>) -> Result<Option<Row>> {
        self.statement.at_most_one(db).await
    }

    /// The rows as a stream.
    pub async fn stream<E: Executor>(self, db: &Db<E>) -> Result<QueryStream<Row>> {
        self.statement.stream(db, Ok).await
    }
}

/// A statement from [`query_as!`](crate::query_as!): its rows decode into model `M` with
/// [`Model::from_row`] (by position, so select `{M.*}`).
///
/// ```no_run
/// use tenant_runtime::{query_as, Allowlist, Client, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
/// let unpaid: Vec<Invoice> =
///     query_as!(Invoice, "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.paid} = $1", false)
///         .fetch_all(&db)
///         .await?;
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until a terminal such as `fetch_all(&db)` runs it"]
pub struct QueryAs<'a, M> {
    statement: Statement<'a>,
    _model: PhantomData<fn() -> M>,
}

impl<'a, M: Model> QueryAs<'a, M> {
    #[doc(hidden)]
    pub fn __new<const N: usize>(
        template: &'static Template,
        params: [&'a (dyn ToSql + Sync); N],
    ) -> QueryAs<'a, M> {
        QueryAs {
            statement: Statement {
                template,
                params: Params::from_iter(params),
                map: None,
            },
            _model: PhantomData,
        }
    }

    common_methods!();

    /// Every row, decoded.
    pub async fn fetch_all<E: Executor>(self, db: &Db<E>) -> Result<Vec<M>> {
        let rows = self.statement.rows(db).await?;
        rows.iter().map(M::from_row).collect()
    }

    /// The one row: [`Error::RowNotFound`] if none, [`Error::TooManyRows`] if more.
    pub async fn fetch_one<E: Executor>(self, db: &Db<E>) -> Result<M> {
        M::from_row(&self.statement.exactly_one(db).await?)
    }

    /// The row if there is one; [`Error::TooManyRows`] if more.
    pub async fn fetch_optional<E: Executor>(self, db: &Db<E>) -> Result<Option<M>> {
        let row = self.statement.at_most_one(db).await?;
        row.as_ref().map(M::from_row).transpose()
    }

    /// The rows as a stream of models.
    pub async fn stream<E: Executor>(self, db: &Db<E>) -> Result<QueryStream<M>> {
        self.statement.stream(db, |row| M::from_row(&row)).await
    }
}

/// A statement from [`query_scalar!`](crate::query_scalar!): each row is one value, of the
/// type the caller asks for (`T: FromSql`).
///
/// ```no_run
/// use tenant_runtime::{query_scalar, Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64, amount_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
/// let total: Option<i64> =
///     query_scalar!("SELECT sum({Invoice.amount_cents})::bigint FROM {Invoice}").fetch_one(&db).await?;
/// let ids: Vec<i64> = query_scalar!("SELECT {Invoice.id} FROM {Invoice}").fetch_all(&db).await?;
/// # Ok(()) }
/// ```
#[must_use = "a query does nothing until a terminal such as `fetch_all(&db)` runs it"]
pub struct QueryScalar<'a> {
    statement: Statement<'a>,
}

fn first_column<T: for<'r> FromSql<'r>>(row: Row) -> Result<T> {
    row.try_get(0).map_err(Error::from)
}

impl<'a> QueryScalar<'a> {
    #[doc(hidden)]
    pub fn __new<const N: usize>(
        template: &'static Template,
        params: [&'a (dyn ToSql + Sync); N],
    ) -> QueryScalar<'a> {
        QueryScalar {
            statement: Statement {
                template,
                params: Params::from_iter(params),
                map: None,
            },
        }
    }

    common_methods!();

    /// The value of every row.
    pub async fn fetch_all<T, E>(self, db: &Db<E>) -> Result<Vec<T>>
    where
        T: for<'r> FromSql<'r>,
        E: Executor,
    {
        let rows = self.statement.rows(db).await?;
        rows.into_iter().map(first_column).collect()
    }

    /// The value of the one row: [`Error::RowNotFound`] if none, [`Error::TooManyRows`] if
    /// more.
    pub async fn fetch_one<T, E>(self, db: &Db<E>) -> Result<T>
    where
        T: for<'r> FromSql<'r>,
        E: Executor,
    {
        first_column(self.statement.exactly_one(db).await?)
    }

    /// The value of the row if there is one; [`Error::TooManyRows`] if more.
    pub async fn fetch_optional<T, E>(self, db: &Db<E>) -> Result<Option<T>>
    where
        T: for<'r> FromSql<'r>,
        E: Executor,
    {
        let row = self.statement.at_most_one(db).await?;
        row.map(first_column).transpose()
    }

    /// The values as a stream.
    pub async fn stream<T, E>(self, db: &Db<E>) -> Result<QueryStream<T>>
    where
        T: for<'r> FromSql<'r>,
        E: Executor,
    {
        self.statement.stream(db, first_column::<T>).await
    }
}

impl std::fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Query")
            .field(self.statement.template)
            .finish()
    }
}

impl<M> std::fmt::Debug for QueryAs<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("QueryAs")
            .field(self.statement.template)
            .finish()
    }
}

impl std::fmt::Debug for QueryScalar<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("QueryScalar")
            .field(self.statement.template)
            .finish()
    }
}
