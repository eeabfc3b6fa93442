//! The identifier rule, shared with `tenant_runtime::SchemaName` (which cannot be a
//! dependency of a proc-macro crate): `^[a-z_][a-z0-9_]{0,62}$`.

/// Why `name` is not a valid SQL identifier for tenant, or `None` if it is.
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

/// Like [`identifier_problem`], plus the schema-only rule: no `pg_*`, no `information_schema`.
pub fn schema_problem(name: &str) -> Option<String> {
    identifier_problem(name).or_else(|| {
        (name.starts_with("pg_") || name == "information_schema")
            .then(|| "it is reserved by PostgreSQL (`pg_*`, `information_schema`)".into())
    })
}

/// `amount_cents` → `AMOUNT_CENTS`.
pub fn screaming(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// `InvoiceLine` → `invoice_line`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
