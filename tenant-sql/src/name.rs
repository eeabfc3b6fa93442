//! Migration file names: `<version>_<name>.sql`.

/// Splits a migration file name into (version, name, digits in the version).
///
/// ```
/// assert_eq!(tenant_sql::parse_file_name("0003_add_paid.sql"), Ok((3, "add_paid".into(), 4)));
/// assert!(tenant_sql::parse_file_name("0003-add-paid.sql").is_err());
/// assert!(tenant_sql::parse_file_name("0000_zero.sql").is_err());
/// ```
pub fn parse_file_name(file_name: &str) -> Result<(u64, String, usize), String> {
    const RULE: &str = "name migration files `<version>_<name>.sql`, e.g. `0001_create_invoices.sql`: the version in digits, the name in [a-z0-9_]";
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(format!("not a migration file name (it does not end in `.sql`); {RULE}; only migration files (and hidden files) may be in the migrations directory"));
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "the file name does not start with a version; {RULE}"
        ));
    }
    let Some(name) = stem[digits..].strip_prefix('_') else {
        return Err(format!("the version must be followed by `_`; {RULE}"));
    };
    if name.is_empty() {
        return Err(format!(
            "the migration has no name after the version; {RULE}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!("the name contains {c:?}; {RULE}"));
    }
    let version: u64 = stem[..digits]
        .parse()
        .map_err(|_| format!("the version {} is too large for 64 bits", &stem[..digits]))?;
    if version == 0 {
        return Err("version 0 is not allowed; versions start at 1".into());
    }
    Ok((version, name.to_owned(), digits))
}

/// The longest identifier PostgreSQL keeps (longer ones are silently truncated).
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// What is wrong with a name under tenant's identifier rule (`^[a-z_][a-z0-9_]{0,62}$`, and
/// for schemas also not `pg_*` nor `information_schema`), as a value: the macros print it
/// (through [`identifier_problem`] and [`schema_problem`]), the runtime turns it into its own
/// typed error (`tenant_runtime::InvalidSchemaName`). The one copy of the rule.
///
/// ```
/// use tenant_sql::{check_identifier, check_schema_name, NameProblem};
///
/// assert_eq!(check_identifier("invoices"), Ok(()));
/// assert_eq!(check_identifier("Invoices"), Err(NameProblem::InvalidStart { found: 'I' }));
/// assert_eq!(check_identifier("a-b"), Err(NameProblem::InvalidCharacter { found: '-', at: 1 }));
/// assert_eq!(check_identifier("pg_x"), Ok(()));
/// assert_eq!(check_schema_name("pg_x"), Err(NameProblem::Reserved));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_IDENTIFIER_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Starts with an ASCII digit or an uppercase ASCII letter.
    InvalidStart {
        /// The first character.
        found: char,
    },
    /// A character outside `[a-z0-9_]` (anywhere, including a first character that is not
    /// a digit or an uppercase letter).
    InvalidCharacter {
        /// The first offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// A schema name PostgreSQL reserves (`pg_*`, `information_schema`).
    Reserved,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::TooLong { len } => write!(
                f,
                "it is {len} bytes long and PostgreSQL keeps at most {MAX_IDENTIFIER_LEN}"
            ),
            NameProblem::InvalidStart { .. } => {
                f.write_str("it must start with a lowercase ASCII letter or `_`")
            }
            NameProblem::InvalidCharacter { found, .. } => write!(
                f,
                "it contains {found:?}; use only lowercase ASCII letters, digits and `_`"
            ),
            NameProblem::Reserved => {
                f.write_str("it is reserved by PostgreSQL (`pg_*`, `information_schema`)")
            }
        }
    }
}

/// Checks the identifier rule for table, column, alias and slot names:
/// `^[a-z_][a-z0-9_]{0,62}$`.
///
/// ```
/// assert!(tenant_sql::check_identifier("invoice_items").is_ok());
/// assert!(tenant_sql::check_identifier("").is_err());
/// ```
pub fn check_identifier(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(NameProblem::TooLong { len: name.len() });
    }
    for (at, c) in name.char_indices() {
        let allowed = c.is_ascii_lowercase() || c == '_' || (at > 0 && c.is_ascii_digit());
        if !allowed {
            return Err(
                if at == 0 && (c.is_ascii_digit() || c.is_ascii_uppercase()) {
                    NameProblem::InvalidStart { found: c }
                } else {
                    NameProblem::InvalidCharacter { found: c, at }
                },
            );
        }
    }
    Ok(())
}

/// [`check_identifier`], plus the schema rule: not `pg_*`, not `information_schema`.
///
/// ```
/// assert!(tenant_sql::check_schema_name("tenant_acme").is_ok());
/// assert!(tenant_sql::check_schema_name("information_schema").is_err());
/// ```
pub fn check_schema_name(name: &str) -> Result<(), NameProblem> {
    check_identifier(name)?;
    if name.starts_with("pg_") || name == "information_schema" {
        return Err(NameProblem::Reserved);
    }
    Ok(())
}

/// Why `name` is not a valid SQL identifier for tenant ([`check_identifier`]), as a sentence,
/// or `None` if it is.
///
/// ```
/// assert!(tenant_sql::identifier_problem("invoices").is_none());
/// assert!(tenant_sql::identifier_problem("Invoices").is_some());
/// ```
pub fn identifier_problem(name: &str) -> Option<String> {
    check_identifier(name).err().map(|p| p.to_string())
}

/// Why `name` is not a valid schema name ([`check_schema_name`]), as a sentence, or `None`.
///
/// ```
/// assert!(tenant_sql::schema_problem("shared").is_none());
/// assert!(tenant_sql::schema_problem("pg_catalog").is_some());
/// ```
pub fn schema_problem(name: &str) -> Option<String> {
    check_schema_name(name).err().map(|p| p.to_string())
}

/// Like [`schema_problem`], plus the slot rule: a named slot cannot be called `tenant`, which
/// names the tenant's own slot (`{tenant}` in migrations, in rendered templates and in logs).
/// The one rule for `#[tenant(schema = "...")]`, `embed_migrations!(.., slots = [...])` and
/// the run-time migration loader.
///
/// ```
/// assert!(tenant_sql::slot_name_problem("shared").is_none());
/// assert!(tenant_sql::slot_name_problem("tenant").unwrap().contains("tenant's own slot"));
/// assert!(tenant_sql::slot_name_problem("pg_catalog").is_some());
/// ```
pub fn slot_name_problem(name: &str) -> Option<String> {
    if name == crate::TENANT_PLACEHOLDER {
        return Some(
            "`tenant` names the tenant's own slot (`{tenant}`), so a named slot cannot be called `tenant`: the two would be indistinguishable in migrations, templates and logs; pick another name, such as \"shared\"".into(),
        );
    }
    schema_problem(name)
}
