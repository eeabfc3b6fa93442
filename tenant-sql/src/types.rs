//! The PostgreSQL types an identity column may have.

/// Every name PostgreSQL accepts for the types of an identity column
/// (`GENERATED ... AS IDENTITY` takes `smallint`, `integer` and `bigint`), in upper case; the
/// one list, used by the derive for `sql_type = "..."` and passed by it to the run-time check
/// of a field type's `SqlType::SQL_TYPE`.
///
/// ```
/// assert!(tenant_sql::IDENTITY_TYPES.contains(&"INT8"));
/// ```
pub const IDENTITY_TYPES: &[&str] = &[
    "SMALLINT", "INTEGER", "BIGINT", "INT2", "INT4", "INT8", "INT",
];

/// Whether `sql_type` is one of [`IDENTITY_TYPES`], ignoring ASCII case and surrounding
/// whitespace. A `const fn`, so it also runs at compile time.
///
/// ```
/// const OK: bool = tenant_sql::is_identity_type(" bigint ");
/// assert!(OK);
/// assert!(tenant_sql::is_identity_type("Int4"));
/// assert!(!tenant_sql::is_identity_type("NUMERIC"));
/// ```
pub const fn is_identity_type(sql_type: &str) -> bool {
    let mut i = 0;
    while i < IDENTITY_TYPES.len() {
        if eq_trimmed_ignore_case(sql_type.as_bytes(), IDENTITY_TYPES[i].as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

/// `text` with surrounding ASCII whitespace removed equals `upper` (upper case), ignoring
/// ASCII case. Written out because the `const` forms of `trim_ascii`/`eq_ignore_ascii_case`
/// are newer than the crate's minimum Rust version.
const fn eq_trimmed_ignore_case(text: &[u8], upper: &[u8]) -> bool {
    let (mut start, mut end) = (0, text.len());
    while start < end && text[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    if end - start != upper.len() {
        return false;
    }
    let mut i = 0;
    while i < upper.len() {
        if text[start + i].to_ascii_uppercase() != upper[i] {
            return false;
        }
        i += 1;
    }
    true
}
