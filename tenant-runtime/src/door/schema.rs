//! Validated PostgreSQL schema identifiers.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::InvalidSchemaName;

/// The longest identifier PostgreSQL keeps without truncation (`NAMEDATALEN - 1`).
pub const MAX_SCHEMA_NAME_LEN: usize = tenant_sql::MAX_IDENTIFIER_LEN;

/// A syntactically valid schema identifier: `^[a-z_][a-z0-9_]{0,62}$`, not starting with
/// `pg_` and not `information_schema`.
///
/// A `SchemaName` proves *syntax* only. It is what named slots (such as `shared`) map to,
/// and what an [`Allowlist`](crate::Allowlist) stores for each tenant; it can never stand
/// in where a [`Tenant`](crate::Tenant) is required. It is always emitted double-quoted.
///
/// It is stored inline (64 bytes, `Copy`), so filling a schema slot never allocates.
///
/// ```
/// use tenant_runtime::error::InvalidSchemaName;
/// use tenant_runtime::SchemaName;
///
/// let shared = SchemaName::parse("shared")?;
/// assert_eq!(shared.as_str(), "shared");
/// assert_eq!(shared.quoted(), "\"shared\"");
/// assert!(matches!(SchemaName::parse("acme\"; --"), Err(InvalidSchemaName::InvalidCharacter { .. })));
/// # Ok::<(), InvalidSchemaName>(())
/// ```
#[derive(Clone, Copy)]
pub struct SchemaName {
    len: u8,
    bytes: [u8; MAX_SCHEMA_NAME_LEN],
}

impl SchemaName {
    /// Checks `name` against the identifier rule and returns it as a `SchemaName`.
    ///
    /// ```
    /// # use tenant_runtime::SchemaName;
    /// assert!(SchemaName::parse("tenant_0042").is_ok());
    /// assert!(SchemaName::parse("Tenant").is_err());
    /// assert!(SchemaName::parse("a.b").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<SchemaName, InvalidSchemaName> {
        validate_identifier(name)?;
        let mut bytes = [0u8; MAX_SCHEMA_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(SchemaName {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The bare identifier, without quotes.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("schema names are ASCII")
    }

    /// The identifier's bytes (ASCII).
    fn name_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The identifier as it appears in SQL: double-quoted.
    ///
    /// ```
    /// # use tenant_runtime::SchemaName;
    /// assert_eq!(SchemaName::parse("acme")?.quoted(), "\"acme\"");
    /// # Ok::<(), tenant_runtime::error::InvalidSchemaName>(())
    /// ```
    pub fn quoted(&self) -> String {
        let mut s = String::with_capacity(self.len as usize + 2);
        self.push_quoted(&mut s);
        s
    }

    pub(crate) fn push_quoted(&self, out: &mut String) {
        out.push('"');
        out.push_str(self.as_str());
        out.push('"');
    }
}

/// Checks the schema-name rule (`^[a-z_][a-z0-9_]{0,62}$`, not `pg_*`, not
/// `information_schema`): tenant-sql's one copy of the rule, with the runtime's typed error.
#[doc(hidden)]
pub fn validate_identifier(name: &str) -> Result<(), InvalidSchemaName> {
    use tenant_sql::NameProblem;
    tenant_sql::check_schema_name(name).map_err(|problem| match problem {
        NameProblem::Empty => InvalidSchemaName::Empty,
        NameProblem::TooLong { len } => InvalidSchemaName::TooLong { len },
        NameProblem::InvalidStart { .. } => InvalidSchemaName::InvalidStart { name: name.into() },
        NameProblem::InvalidCharacter { found, at } => InvalidSchemaName::InvalidCharacter {
            name: name.into(),
            found,
            at,
        },
        NameProblem::Reserved => InvalidSchemaName::Reserved { name: name.into() },
    })
}

// Equality, hashing and order go by the stored bytes, without `as_str`'s UTF-8 check: they
// run several times per statement (the statement cache's keys). Hashed as `str` hashes
// (the bytes, then 0xff), ordered as `str` orders (bytewise).
impl PartialEq for SchemaName {
    fn eq(&self, other: &Self) -> bool {
        self.name_bytes() == other.name_bytes()
    }
}
impl Eq for SchemaName {}
impl Hash for SchemaName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.name_bytes());
        state.write_u8(0xff);
    }
}
impl PartialOrd for SchemaName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SchemaName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name_bytes().cmp(other.name_bytes())
    }
}
impl fmt::Debug for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaName({:?})", self.as_str())
    }
}
/// Displays the quoted identifier, as it appears in SQL.
impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_str())
    }
}
impl std::str::FromStr for SchemaName {
    type Err = InvalidSchemaName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchemaName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_valid_name_is_63_bytes() {
        let ok = "a".repeat(63);
        assert_eq!(SchemaName::parse(&ok).unwrap().as_str(), ok);
        assert_eq!(
            SchemaName::parse(&"a".repeat(64)),
            Err(InvalidSchemaName::TooLong { len: 64 })
        );
    }

    #[test]
    fn equality_ignores_unused_storage() {
        assert_eq!(
            SchemaName::parse("ab").unwrap(),
            SchemaName::parse("ab").unwrap()
        );
        assert_ne!(
            SchemaName::parse("ab").unwrap(),
            SchemaName::parse("abc").unwrap()
        );
    }

    #[test]
    fn hashes_and_orders_as_its_str() {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        for name in ["a", "tenant_0042", "ab", "abc", "b"] {
            let schema = SchemaName::parse(name).unwrap();
            assert_eq!(state.hash_one(schema), state.hash_one(name));
        }
        let mut names =
            ["tenant_b", "tenant_a", "tenant_ab", "t"].map(|n| SchemaName::parse(n).unwrap());
        names.sort();
        let sorted: Vec<&str> = names.iter().map(SchemaName::as_str).collect();
        assert_eq!(sorted, ["t", "tenant_a", "tenant_ab", "tenant_b"]);
    }
}
