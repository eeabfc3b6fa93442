//! Paths the macros' generated code uses. Not public API: no stability promise.

pub use crate::error::{Error, Result};
pub use crate::lifecycle::{Migration, Migrations};
pub use crate::model::SqlType;
pub use crate::model::{Column, ColumnDef, ForeignKey, ModelTemplates, Params};
pub use crate::model::{Keyed, Model};
pub use crate::sql::{Piece, Slot, Template};
pub use postgres_types::{FromSql, ToSql};
pub use smallvec::smallvec;
pub use std::borrow::Cow;
pub use tokio_postgres::Row;

/// Decodes column `index` of `row`, naming the model and column in the error.
#[inline]
pub fn decode<'r, T: FromSql<'r>>(
    row: &'r Row,
    index: usize,
    model: &'static str,
    column: &'static str,
) -> Result<T> {
    row.try_get(index).map_err(|source| Error::Decode {
        model,
        column,
        index,
        source,
    })
}

/// The column type of a field type (its [`SqlType`]); spanned at the field so a missing
/// implementation points there.
#[derive(Clone, Copy)]
pub struct ColumnType {
    pub sql_type: &'static str,
    pub nullable: bool,
}

/// The [`ColumnType`] of `T`.
pub const fn column_type<T: SqlType + ?Sized>() -> ColumnType {
    ColumnType {
        sql_type: T::SQL_TYPE,
        nullable: T::NULLABLE,
    }
}

/// Checks at compile time that an `identity` column is an integer column.
pub const fn assert_identity_type(sql_type: &str) {
    let b = sql_type.as_bytes();
    let ok = matches!(
        b,
        b"SMALLINT" | b"INTEGER" | b"BIGINT" | b"smallint" | b"integer" | b"bigint"
    );
    if !ok {
        panic!("`#[tenant(identity)]` needs an integer column (i16, i32 or i64)");
    }
}

/// Compile-time check that a type is a model (for `query_as!` and friends).
pub const fn assert_model<T: Model>() {}

/// The foreign key to `T`'s primary key; fails to compile unless `T` is a model with a
/// single-column primary key.
pub const fn foreign_key<T: Model>() -> ForeignKey {
    let column = match T::PRIMARY_KEY {
        [one] => *one,
        _ => panic!("`references` needs a target model with exactly one primary-key column"),
    };
    ForeignKey {
        model: T::NAME,
        table: T::TABLE,
        slot: T::SLOT,
        column,
    }
}

// ---- query macros (`query!`, `query_as!`, `query_scalar!`) ----

pub use crate::model::Bind;
pub use crate::query::{Query, QueryAs, QueryScalar};

/// What `query_as!(M, ...)` expands to: the `M: Model` bound of a free function is reported
/// as "`M` is not a tenant model", at `M`.
pub fn query_as<'a, M: Model, const N: usize>(
    template: &'static Template,
    params: [&'a (dyn ToSql + Sync); N],
) -> QueryAs<'a, M> {
    QueryAs::__new(template, params)
}

/// The SQL name of a typed column, at compile time. Taking a `Column<M, T>` makes
/// `{Model.column}` fail to compile unless `Model::COLUMN` is one of `Model`'s columns.
pub const fn column_name<M, T>(column: Column<M, T>) -> &'static str {
    column.name()
}

/// A query argument compared with a column of type `T`: it must [`Bind`] as a `T`, and the
/// error points at the argument when it does not.
#[inline]
pub fn bind_as<M, T, V>(_: Column<M, T>, value: &V) -> &(dyn ToSql + Sync)
where
    V: Bind<T> + ToSql + Sync,
{
    value
}

/// A query argument the macro could not tie to a column: any `ToSql + Sync` value.
#[inline]
pub fn bind<V: ToSql + Sync>(value: &V) -> &(dyn ToSql + Sync) {
    value
}

/// Length of `{Model.*}` rendered as `"qualifier"."c1", "qualifier"."c2", ...`.
pub const fn star_len(columns: &[ColumnDef], qualifier: &str) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < columns.len() {
        if i > 0 {
            len += 2; // ", "
        }
        // "q"."c"
        len += qualifier.len() + columns[i].name.len() + 5;
        i += 1;
    }
    len
}

/// `{Model.*}` rendered into a `[u8; N]` at compile time (`N` from [`star_len`]).
pub const fn star_bytes<const N: usize>(columns: &[ColumnDef], qualifier: &str) -> [u8; N] {
    const fn put(out: &mut [u8], mut at: usize, s: &[u8]) -> usize {
        let mut i = 0;
        while i < s.len() {
            out[at] = s[i];
            at += 1;
            i += 1;
        }
        at
    }
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < columns.len() {
        if i > 0 {
            at = put(&mut out, at, b", ");
        }
        at = put(&mut out, at, b"\"");
        at = put(&mut out, at, qualifier.as_bytes());
        at = put(&mut out, at, b"\".\"");
        at = put(&mut out, at, columns[i].name.as_bytes());
        at = put(&mut out, at, b"\"");
        i += 1;
    }
    if at != N {
        panic!("star_bytes: length mismatch");
    }
    out
}

/// The `&str` of bytes built by [`star_bytes`] (always UTF-8: names are ASCII identifiers).
pub const fn utf8(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("column names are ASCII"),
    }
}
