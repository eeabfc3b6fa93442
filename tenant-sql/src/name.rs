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

/// Why `name` is not a valid SQL identifier for tenant (`^[a-z_][a-z0-9_]{0,62}$`: table,
/// column, alias and slot names), or `None` if it is. The one copy of the rule for compile-time
/// checks; `tenant_runtime::SchemaName` applies the same rule with a typed error.
///
/// ```
/// assert!(tenant_sql::identifier_problem("invoices").is_none());
/// assert!(tenant_sql::identifier_problem("Invoices").is_some());
/// ```
pub fn identifier_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "it is {} bytes long and PostgreSQL keeps at most 63",
            name.len()
        ));
    }
    let first = name.chars().next().expect("non-empty");
    if !(first.is_ascii_lowercase() || first == '_') {
        return Some("it must start with a lowercase ASCII letter or `_`".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(format!(
            "it contains {c:?}; use only lowercase ASCII letters, digits and `_`"
        ));
    }
    None
}

/// Like [`identifier_problem`], plus the schema rule: no `pg_*`, no `information_schema`.
///
/// ```
/// assert!(tenant_sql::schema_problem("shared").is_none());
/// assert!(tenant_sql::schema_problem("pg_catalog").is_some());
/// ```
pub fn schema_problem(name: &str) -> Option<String> {
    identifier_problem(name).or_else(|| {
        (name.starts_with("pg_") || name == "information_schema")
            .then(|| "it is reserved by PostgreSQL (`pg_*`, `information_schema`)".into())
    })
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
