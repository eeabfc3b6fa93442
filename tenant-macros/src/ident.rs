//! Names: the identifier rule (shared with the migration checks in `tenant-sql`) and the
//! case conversions the derive uses.

pub use tenant_sql::{identifier_problem, slot_name_problem};

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
