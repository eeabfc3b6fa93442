//! Splitting SQL at `{tenant}` / `{slot}` placeholders, with a lexer that knows where a brace
//! is SQL text and where it is data (string literals, quoted identifiers, comments).

use crate::{Part, SlotRef, TENANT_PLACEHOLDER};

/// Splits `sql` at its placeholders. Returns the parts and the same SQL with each placeholder
/// `{name}` replaced by the identifier `_name_` (same length, so parser positions are file
/// positions), or every problem as (byte offset, message).
///
/// In SQL text, `{` followed by an identifier and `}` is a placeholder and must name
/// `tenant` or a slot of `slots`. In dollar-quoted bodies (`$$ ... $$`, function bodies)
/// only known placeholders are replaced and other braces are left alone. String literals,
/// quoted identifiers and comments are never touched.
///
/// ```
/// use tenant_sql::{split_placeholders, Part, SlotRef};
///
/// let (parts, dummy) = split_placeholders("SELECT '{tenant}' FROM {tenant}.t", &[]).unwrap();
/// assert_eq!(dummy, "SELECT '{tenant}' FROM _tenant_.t");
/// assert_eq!(parts, [
///     Part::Sql("SELECT '{tenant}' FROM ".into()),
///     Part::Slot(SlotRef::Tenant),
///     Part::Sql(".t".into()),
/// ]);
/// ```
#[allow(clippy::type_complexity)]
pub fn split_placeholders(
    sql: &str,
    slots: &[&str],
) -> Result<(Vec<Part>, String), Vec<(usize, String)>> {
    let bytes = sql.as_bytes();
    let mut parts = Vec::new();
    let mut dummy = String::with_capacity(sql.len());
    let mut errors = Vec::new();
    let mut text_start = 0; // start of the SQL text not yet pushed into `parts`
    let mut i = 0;
    // Dollar-quote tag we are inside, if any.
    let mut dollar: Option<&str> = None;

    let known = |name: &str| -> Option<SlotRef> {
        if name == TENANT_PLACEHOLDER {
            Some(SlotRef::Tenant)
        } else if slots.contains(&name) {
            Some(SlotRef::Named(name.to_owned()))
        } else {
            None
        }
    };

    while i < bytes.len() {
        if let Some(tag) = dollar {
            if sql[i..].starts_with(tag) {
                i += tag.len();
                dollar = None;
                continue;
            }
            if bytes[i] == b'{' {
                if let Some(name) = placeholder_at(sql, i) {
                    if let Some(slot) = known(name) {
                        push_slot(sql, &mut parts, &mut dummy, &mut text_start, i, name, slot);
                        i += name.len() + 2;
                        continue;
                    }
                }
            }
            i += utf8_len(bytes[i]);
            continue;
        }
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // PostgreSQL block comments nest.
                let mut depth = 0usize;
                while i < bytes.len() {
                    if sql[i..].starts_with("/*") {
                        depth += 1;
                        i += 2;
                    } else if sql[i..].starts_with("*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += utf8_len(bytes[i]);
                    }
                }
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => match dollar_tag_at(sql, i) {
                Some(tag) => {
                    dollar = Some(tag);
                    i += tag.len();
                }
                None => i += 1,
            },
            b'{' => match placeholder_at(sql, i) {
                Some(name) => {
                    match known(name) {
                        Some(slot) => {
                            push_slot(sql, &mut parts, &mut dummy, &mut text_start, i, name, slot)
                        }
                        None => errors.push((i, unknown_placeholder(name, slots))),
                    }
                    i += name.len() + 2;
                }
                None => i += 1,
            },
            b => i += utf8_len(b),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if text_start < sql.len() {
        parts.push(Part::Sql(sql[text_start..].to_owned()));
        dummy.push_str(&sql[text_start..]);
    }
    Ok((parts, dummy))
}

fn push_slot(
    sql: &str,
    parts: &mut Vec<Part>,
    dummy: &mut String,
    text_start: &mut usize,
    at: usize,
    name: &str,
    slot: SlotRef,
) {
    if *text_start < at {
        parts.push(Part::Sql(sql[*text_start..at].to_owned()));
        dummy.push_str(&sql[*text_start..at]);
    }
    parts.push(Part::Slot(slot));
    dummy.push('_');
    dummy.push_str(name);
    dummy.push('_');
    *text_start = at + name.len() + 2;
}

fn unknown_placeholder(name: &str, slots: &[&str]) -> String {
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return format!(
            "model placeholders such as {{{name}}} are not allowed in migrations: a migration must mean the same SQL after the model changes; write the table out, e.g. {{tenant}}.\"invoices\""
        );
    }
    let declared = if slots.is_empty() {
        "no named slots are declared; declare them: `slots = [\"...\"]` in `embed_migrations!`, the `slots` argument of `Migrations::from_dir`, `--slot` in the CLI".to_owned()
    } else {
        let list: Vec<String> = slots.iter().map(|s| format!("{{{s}}}")).collect();
        format!("declared named slots: {}", list.join(", "))
    };
    format!("unknown placeholder {{{name}}}; use {{tenant}} for the tenant's schema ({declared})")
}

/// The identifier of a placeholder `{ident}` starting at byte `at`, if there is one.
fn placeholder_at(sql: &str, at: usize) -> Option<&str> {
    let rest = &sql[at + 1..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let name = &rest[..end];
    let first = name.chars().next()?;
    (rest[end..].starts_with('}') && (first.is_ascii_alphabetic() || first == '_')).then_some(name)
}

/// The dollar-quote opener (`$$` or `$tag$`) starting at byte `at`, if there is one.
fn dollar_tag_at(sql: &str, at: usize) -> Option<&str> {
    let rest = &sql[at + 1..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let tag = &rest[..end];
    if !rest[end..].starts_with('$') || tag.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(&sql[at..at + end + 2])
}

/// Index just past the quoted token (string or identifier) opening at `at`.
fn skip_quoted(bytes: &[u8], at: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = at + 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy(sql: &str) -> String {
        split_placeholders(sql, &["shared"]).unwrap().1
    }

    #[test]
    fn braces_in_literals_identifiers_and_comments_are_data() {
        for sql in [
            "SELECT '{x}', E'\\'{y}', \"{z}\" -- {w}\n",
            "SELECT 1 /* {a} /* {b} */ {c} */",
        ] {
            assert_eq!(dummy(sql), sql);
        }
    }

    #[test]
    fn dollar_bodies_replace_only_known_placeholders() {
        let sql = "CREATE FUNCTION {tenant}.f() RETURNS int AS $body$ SELECT count(*) FROM {tenant}.t WHERE a = '{x}' AND b = '{shared}' $body$ LANGUAGE sql";
        assert_eq!(
            dummy(sql),
            "CREATE FUNCTION _tenant_.f() RETURNS int AS $body$ SELECT count(*) FROM _tenant_.t WHERE a = '{x}' AND b = '_shared_' $body$ LANGUAGE sql"
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        assert_eq!(
            dummy("SELECT $1, {tenant}.f($2)"),
            "SELECT $1, _tenant_.f($2)"
        );
    }

    #[test]
    fn unknown_and_model_placeholders_are_reported_with_offsets() {
        let errors = split_placeholders("SELECT {Invoice}, {tenat}", &[]).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].0, 7);
        assert!(errors[0].1.contains("model placeholders"));
        assert_eq!(errors[1].0, 18);
        assert!(errors[1].1.contains("unknown placeholder {tenat}"));
    }
}
