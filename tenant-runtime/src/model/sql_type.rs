//! [`SqlType`]: the mapping from Rust field types to PostgreSQL column types, for DDL.

/// A Rust type that has a PostgreSQL column type, used by `#[derive(Model)]` to write DDL.
///
/// Implemented for `i16`, `i32`, `i64`, `f32`, `f64`, `bool`, `String`, `Vec<u8>` and
/// `Option<T>` (which makes the column NULL-able), and behind features for `uuid::Uuid`
/// (`uuid`), `chrono` and `time` date/time types, `serde_json::Value` (`json`) and
/// `rust_decimal::Decimal` (`decimal`). Library authors implement it for their own types;
/// the type must also implement `postgres_types::ToSql` and `FromSql`.
///
/// ```
/// use tenant_runtime::model::SqlType;
///
/// struct Email(String);
/// impl SqlType for Email {
///     const SQL_TYPE: &'static str = "TEXT";
/// }
/// assert_eq!(<Option<Email> as SqlType>::SQL_TYPE, "TEXT");
/// assert!(<Option<Email> as SqlType>::NULLABLE);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no PostgreSQL column type known to tenant",
    label = "no `SqlType` for this field type",
    note = "implement `tenant_runtime::model::SqlType` for `{Self}`, or name the column type with `#[tenant(sql_type = \"...\")]` on the field"
)]
pub trait SqlType {
    /// The type as written in `CREATE TABLE` (e.g. `BIGINT`).
    const SQL_TYPE: &'static str;
    /// Whether the column accepts NULL (true only for `Option<T>`).
    const NULLABLE: bool = false;
    /// The type of a column of arrays of it (`BIGINT[]`), which `Vec<T>` maps to; `None`
    /// (the default) when it has none, and then `Vec<T>` fails to compile where it is used.
    const ARRAY_TYPE: Option<&'static str> = None;
}

macro_rules! sql_types {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl SqlType for $t {
            const SQL_TYPE: &'static str = $name;
            const ARRAY_TYPE: Option<&'static str> = Some(concat!($name, "[]"));
        })*
    };
}

/// `Vec<T>` is the array type `T[]` (`Vec<u8>` is `BYTEA`, since `u8` has no `SqlType`).
///
/// ```
/// use tenant_runtime::model::SqlType;
/// assert_eq!(<Vec<String> as SqlType>::SQL_TYPE, "TEXT[]");
/// assert_eq!(<Vec<u8> as SqlType>::SQL_TYPE, "BYTEA");
/// assert_eq!(<Option<Vec<i64>> as SqlType>::SQL_TYPE, "BIGINT[]");
/// ```
impl<T: SqlType> SqlType for Vec<T> {
    const SQL_TYPE: &'static str = match T::ARRAY_TYPE {
        Some(t) => t,
        None => panic!("this element type has no PostgreSQL array type known to tenant; name the column type with `#[tenant(sql_type = \"...\")]`"),
    };
}

impl SqlType for Vec<u8> {
    const SQL_TYPE: &'static str = "BYTEA";
}

sql_types! {
    i16 => "SMALLINT",
    i32 => "INTEGER",
    i64 => "BIGINT",
    f32 => "REAL",
    f64 => "DOUBLE PRECISION",
    bool => "BOOLEAN",
    String => "TEXT",
}

#[cfg(feature = "uuid")]
sql_types! { uuid::Uuid => "UUID" }
#[cfg(feature = "chrono")]
sql_types! {
    chrono::NaiveDate => "DATE",
    chrono::NaiveTime => "TIME",
    chrono::NaiveDateTime => "TIMESTAMP",
    chrono::DateTime<chrono::Utc> => "TIMESTAMPTZ",
}
#[cfg(feature = "time")]
sql_types! {
    time::Date => "DATE",
    time::Time => "TIME",
    time::PrimitiveDateTime => "TIMESTAMP",
    time::OffsetDateTime => "TIMESTAMPTZ",
}
#[cfg(feature = "json")]
sql_types! { serde_json::Value => "JSONB" }
#[cfg(feature = "decimal")]
sql_types! { rust_decimal::Decimal => "NUMERIC" }

impl<T: SqlType> SqlType for Option<T> {
    const SQL_TYPE: &'static str = T::SQL_TYPE;
    const NULLABLE: bool = true;
}
