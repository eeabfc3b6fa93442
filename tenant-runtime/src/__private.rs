//! Paths the macros' generated code uses. Not public API: no stability promise.

pub use crate::error::{Error, Result};
pub use crate::model::{Column, ColumnDef, ForeignKey, Keyed, Model, ModelTemplates, Params};
pub use crate::template::{Piece, Slot, Template};
pub use crate::types::SqlType;
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
