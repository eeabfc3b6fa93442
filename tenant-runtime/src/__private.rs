//! Paths the macros' generated code uses. Not public API: no stability promise.

pub use crate::error::{Error, Result};
pub use crate::lifecycle::{Migration, Migrations};
pub use crate::model::SqlType;
pub use crate::model::{Column, ColumnDef, ForeignKey, ModelTemplates, Params};
pub use crate::model::{
    ConstraintDef, FkAction, IdentityOptions, IndexDef, IndexKey, TableConstraint,
};
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
    pub enum_type: Option<&'static EnumType>,
}

/// The [`ColumnType`] of `T`.
pub const fn column_type<T: SqlType + ?Sized>() -> ColumnType {
    ColumnType {
        sql_type: T::SQL_TYPE,
        nullable: T::NULLABLE,
        enum_type: T::ENUM_TYPE,
    }
}

/// Checks at compile time that an `identity` column is an integer column: `sql_type` is one
/// of `allowed` (ignoring ASCII case and surrounding spaces). The derive passes
/// `tenant_sql::IDENTITY_TYPES`, the one list of those types.
pub const fn assert_identity_type(sql_type: &str, allowed: &[&str]) {
    let mut i = 0;
    while i < allowed.len() {
        if eq_trimmed_ignore_case(sql_type.as_bytes(), allowed[i].as_bytes()) {
            return;
        }
        i += 1;
    }
    panic!("`#[tenant(identity)]` needs an integer column (i16, i32 or i64)");
}

/// `text` without surrounding ASCII whitespace equals `name`, ignoring ASCII case.
const fn eq_trimmed_ignore_case(text: &[u8], name: &[u8]) -> bool {
    let (mut start, mut end) = (0, text.len());
    while start < end && text[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if end - start != name.len() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if !text[start + i].eq_ignore_ascii_case(&name[i]) {
            return false;
        }
        i += 1;
    }
    true
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

/// The primary key of `T` as the target of a foreign key with `n` columns; fails to compile
/// when the counts differ.
pub const fn foreign_key_target<T: Model>(n: usize) -> &'static [&'static str] {
    if T::PRIMARY_KEY.len() != n {
        panic!(
            "`foreign_key(columns(..))` needs as many columns as the target model's primary key"
        );
    }
    T::PRIMARY_KEY
}

// ---- `#[derive(SqlEnum)]` ----

pub use crate::model::{EnumType, SqlEnum};
pub use bytes::BytesMut;
pub use postgres_types::{IsNull, Type};

/// The error type of `ToSql` / `FromSql`.
pub type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Whether `ty` is `T`'s PostgreSQL enum type: by **name** and kind, since each schema's
/// type of that name has its own OID (never `text`, so an enum never binds as text).
pub fn enum_accepts<T: SqlEnum>(ty: &Type) -> bool {
    ty.name() == T::TYPE_NAME && matches!(ty.kind(), postgres_types::Kind::Enum(_))
}

/// The binary form of an enum value: its label's bytes.
pub fn enum_to_sql(label: &str, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    out.extend_from_slice(label.as_bytes());
    Ok(IsNull::No)
}

/// `to_sql` after the type check, refusing a type that is not `T`'s enum type with
/// `postgres_types::WrongType` (which unnamed mode's parameter typing relies on).
pub fn enum_to_sql_checked<T: SqlEnum>(
    value: &T,
    ty: &Type,
    out: &mut BytesMut,
) -> std::result::Result<IsNull, BoxError> {
    if !enum_accepts::<T>(ty) {
        return Err(Box::new(postgres_types::WrongType::new::<T>(ty.clone())));
    }
    enum_to_sql(value.label(), out)
}

/// Decodes an enum value from its label, naming the type and the label when it is unknown
/// (a label added to the database but not to the Rust enum).
pub fn enum_from_sql<T: SqlEnum>(raw: &[u8]) -> std::result::Result<T, BoxError> {
    let label = std::str::from_utf8(raw)?;
    T::from_label(label).ok_or_else(|| {
        format!(
            "enum type {:?} has the label {label:?}, which the Rust enum does not have (its labels: {}); add the variant, or remove the label",
            T::TYPE_NAME,
            T::LABELS.join(", ")
        )
        .into()
    })
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

/// Column `I` of a model (its position in [`Model::COLUMNS`]) has the field type `Type`. The
/// derive implements it for every column; the query macros check arguments with it.
pub trait ColumnAt<const I: usize> {
    /// The field's Rust type.
    type Type;
}

/// The position in `M::COLUMNS` of the column `{Model.name}` names: by field name first,
/// then by SQL name. Only called once [`unknown_column_len`] said it exists.
pub const fn column_index<M: Model>(name: &str) -> usize {
    match find_column(M::COLUMNS, name) {
        Some(i) => i,
        None => panic!("no such column"),
    }
}

const fn find_column(columns: &[ColumnDef], name: &str) -> Option<usize> {
    let mut i = 0;
    while i < columns.len() {
        if str_eq(columns[i].field, name) {
            return Some(i);
        }
        i += 1;
    }
    let mut i = 0;
    while i < columns.len() {
        if str_eq(columns[i].name, name) {
            return Some(i);
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Writes the unknown-column message into `out` (when given) and returns its length:
/// "`{written}`: model `M` has no column `name`; its columns are: a, b (field `c`), ...".
const fn unknown_column_text<M: Model>(
    name: &str,
    written: &str,
    mut out: Option<&mut [u8]>,
) -> usize {
    const fn put(out: &mut Option<&mut [u8]>, at: usize, s: &str) -> usize {
        let s = s.as_bytes();
        if let Some(out) = out {
            let mut i = 0;
            while i < s.len() {
                out[at + i] = s[i];
                i += 1;
            }
        }
        at + s.len()
    }
    let mut at = put(&mut out, 0, "`");
    at = put(&mut out, at, written);
    at = put(&mut out, at, "`: model `");
    at = put(&mut out, at, M::NAME);
    at = put(&mut out, at, "` has no column `");
    at = put(&mut out, at, name);
    at = put(&mut out, at, "`; its columns are: ");
    let columns = M::COLUMNS;
    let mut i = 0;
    while i < columns.len() {
        if i > 0 {
            at = put(&mut out, at, ", ");
        }
        at = put(&mut out, at, columns[i].name);
        if !str_eq(columns[i].name, columns[i].field) {
            at = put(&mut out, at, " (field `");
            at = put(&mut out, at, columns[i].field);
            at = put(&mut out, at, "`)");
        }
        i += 1;
    }
    at
}

/// 0 when `M` has the column `{Model.name}` names; else the length of the message
/// [`unknown_column_message`] builds (`written` is the placeholder as written).
pub const fn unknown_column_len<M: Model>(name: &str, written: &str) -> usize {
    match find_column(M::COLUMNS, name) {
        Some(_) => 0,
        None => unknown_column_text::<M>(name, written, None),
    }
}

/// The unknown-column message, `N` bytes long (`N` from [`unknown_column_len`]): it names
/// what was written, the model and the model's columns.
pub const fn unknown_column_message<M: Model, const N: usize>(
    name: &str,
    written: &str,
) -> [u8; N] {
    let mut out = [0u8; N];
    if N > 0 {
        unknown_column_text::<M>(name, written, Some(&mut out));
    }
    out
}

/// A query argument compared with column `I` of `M`: it must [`Bind`] as that column's
/// type, and the error points at the argument when it does not.
#[inline]
pub fn bind_at<M, const I: usize, V>(value: &V) -> &(dyn ToSql + Sync)
where
    M: ColumnAt<I>,
    V: Bind<<M as ColumnAt<I>>::Type> + ToSql + Sync,
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
