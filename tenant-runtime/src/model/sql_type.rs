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
    /// The PostgreSQL enum type behind it, for a Rust enum with `#[derive(SqlEnum)]` (and
    /// `Option`/`Vec` of one): the DDL then names the type in the model's slot
    /// (`{tenant}."status"`) and a [`ModelSet`](crate::ModelSet) creates it before the
    /// tables. `None` (the default) for every other type.
    const ENUM_TYPE: Option<&'static EnumType> = None;
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
    const ENUM_TYPE: Option<&'static EnumType> = T::ENUM_TYPE;
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
    const ENUM_TYPE: Option<&'static EnumType> = T::ENUM_TYPE;
}

/// A PostgreSQL enum type as `#[derive(SqlEnum)]` declares it: its name (unqualified; it
/// lives in the slot of each model that uses it) and its labels in declaration order.
///
/// ```
/// use tenant_runtime::model::{EnumType, SqlType};
/// use tenant_runtime::SqlEnum;
///
/// #[derive(Debug, Clone, Copy, PartialEq, SqlEnum)]
/// #[tenant(type_name = "ticket_status")]
/// enum Status { Open, InProgress, Closed }
///
/// let ty: &EnumType = <Option<Status> as SqlType>::ENUM_TYPE.unwrap();
/// assert_eq!(ty.name, "ticket_status");
/// assert_eq!(ty.labels, ["open", "in_progress", "closed"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnumType {
    /// The type name, a valid unquoted identifier (`ticket_status`).
    pub name: &'static str,
    /// The labels, in declaration (and sort) order.
    pub labels: &'static [&'static str],
}

/// A fieldless Rust enum mapped to a PostgreSQL enum type: implement it with
/// `#[derive(SqlEnum)]`, which also implements [`SqlType`], `ToSql` and `FromSql`.
///
/// The type lives in the schema slot of every model that has a column of it: in each
/// tenant's schema for a tenant model (`CREATE TYPE "tenant_acme"."ticket_status" AS ENUM
/// (...)`), created by [`ModelSet::create_all`](crate::ModelSet::create_all) (and
/// provisioning, and [`Model::create_table`](crate::Model::create_table)) before the
/// tables and dropped by [`ModelSet::drop_all`](crate::ModelSet::drop_all) after them.
/// Every tenant's type has its own OID, so values are encoded and decoded by type **name**
/// (and kind): `ToSql`/`FromSql` accept an enum type called [`SqlEnum::TYPE_NAME`] in any
/// schema, never `text`.
///
/// Attributes: `type_name = "..."` (default: the enum's name in snake_case),
/// `rename_all = "..."` (how labels are made from variant names: `snake_case`, the default;
/// `lowercase`, `UPPERCASE`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE`,
/// `camelCase`, `PascalCase`, the variant name as written) and `crate = path` on the enum;
/// `rename = "..."` (the label) on a variant. The enum must also derive `Debug` (`ToSql`
/// needs it). Labels are at most 63 bytes, unique, without control characters; a mistake is
/// a compile error at the attribute or variant.
///
/// ```
/// use tenant_runtime::{Model, SqlEnum};
///
/// #[derive(Debug, Clone, Copy, PartialEq, SqlEnum)]
/// enum Priority { Low, #[tenant(rename = "normal")] Medium, High }
///
/// #[derive(Model)]
/// #[tenant(table = "tickets")]
/// struct Ticket { #[tenant(primary_key)] id: i64, priority: Priority }
///
/// assert_eq!(<Priority as SqlEnum>::TYPE_NAME, "priority");
/// assert_eq!(Priority::Medium.label(), "normal");
/// assert_eq!(Priority::from_label("high"), Some(Priority::High));
/// let ddl = tenant_runtime::model::ddl::create_table::<Ticket>()[0].to_string();
/// assert!(ddl.contains(r#""priority" {tenant}."priority" NOT NULL"#), "{ddl}");
/// ```
pub trait SqlEnum: Sized + Send + Sync + 'static {
    /// The PostgreSQL type name (unqualified).
    const TYPE_NAME: &'static str;
    /// The labels, one per variant, in declaration order.
    const LABELS: &'static [&'static str];
    /// This value's label.
    fn label(&self) -> &'static str;
    /// The variant whose label is `label`, if any.
    fn from_label(label: &str) -> Option<Self>;
}
