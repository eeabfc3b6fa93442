//! Migration placeholders: `{tenant}` and the declared named slots, found by the one lexer
//! ([`crate::lex`]).

use crate::lexer::{lex, Lexeme};
use crate::{Part, SlotRef, TENANT_PLACEHOLDER};

/// A migration split at its placeholders.
pub(crate) struct Split {
    pub parts: Vec<Part>,
    /// The SQL with each placeholder replaced by an identifier of the same length
    /// (`{tenant}` → `_tenant_`) and each unmatched brace by a space, so that the parser can
    /// go on and its positions are positions in the file.
    pub dummy: String,
    /// Every problem, as (byte offset, message).
    pub errors: Vec<(usize, String)>,
}

/// Splits `sql` at its placeholders. Returns the parts and the same SQL with each placeholder
/// `{name}` replaced by the identifier `_name_` (same length, so parser positions are file
/// positions), or every problem as (byte offset, message).
///
/// Braces follow the rule of [`crate::lex`]: data inside string literals, quoted identifiers
/// and comments; in SQL text (dollar-quoted bodies included) `{{`/`}}` are literal braces and
/// `{name}` a placeholder, which must be `tenant` or one of `slots`.
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
///
/// let errors = split_placeholders("SELECT 1 FROM {tenat}.t, {Invoice}", &[]).unwrap_err();
/// assert_eq!(errors.len(), 2);
/// ```
#[allow(clippy::type_complexity)]
pub fn split_placeholders(
    sql: &str,
    slots: &[&str],
) -> Result<(Vec<Part>, String), Vec<(usize, String)>> {
    let split = split(sql, slots);
    if split.errors.is_empty() {
        Ok((split.parts, split.dummy))
    } else {
        Err(split.errors)
    }
}

pub(crate) fn split(sql: &str, slots: &[&str]) -> Split {
    let lexed = lex(sql);
    let mut parts = Vec::new();
    let mut dummy = String::with_capacity(sql.len());
    let mut errors: Vec<(usize, String)> =
        lexed.errors.iter().map(|e| (e.at, e.to_string())).collect();
    let mut text = String::new();
    for lexeme in &lexed.lexemes {
        match *lexeme {
            Lexeme::Text { text: t, .. } => {
                text.push_str(t);
                dummy.push_str(t);
            }
            Lexeme::Brace { brace, .. } => {
                text.push(brace);
                dummy.push(brace);
                dummy.push(' ');
            }
            Lexeme::Placeholder { at, content } => {
                let name = content.trim();
                let len = content.len() + 2;
                let slot = if name == TENANT_PLACEHOLDER {
                    Some(SlotRef::Tenant)
                } else if slots.contains(&name) {
                    Some(SlotRef::Named(name.to_owned()))
                } else {
                    None
                };
                match slot {
                    Some(slot) => {
                        if !text.is_empty() {
                            parts.push(Part::Sql(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Slot(slot));
                    }
                    None => errors.push((at, unknown_placeholder(content, slots))),
                }
                // `_name_`, padded to the placeholder's length; `___` for what is no name.
                let mut id = String::with_capacity(len);
                if is_name(name) {
                    id.push('_');
                    id.push_str(name);
                }
                while id.len() < len {
                    id.push('_');
                }
                dummy.push_str(&id);
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Sql(text));
    }
    // Unmatched braces become spaces for the parser: the error is reported once, here.
    let mut dummy = dummy.into_bytes();
    for e in &lexed.errors {
        dummy[e.at] = b' ';
    }
    let dummy = String::from_utf8(dummy).expect("only ASCII bytes were replaced");
    errors.sort_by_key(|(at, _)| *at);
    Split {
        parts,
        dummy,
        errors,
    }
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown_placeholder(content: &str, slots: &[&str]) -> String {
    let name = content.trim();
    let declared = if slots.is_empty() {
        "no named slots are declared; declare them: `slots = [\"...\"]` in `embed_migrations!`, the `slots` argument of `Migrations::from_dir`, `--slot` in the CLI".to_owned()
    } else {
        let list: Vec<String> = slots.iter().map(|s| format!("{{{s}}}")).collect();
        format!("declared named slots: {}", list.join(", "))
    };
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return format!(
            "model placeholders such as {{{name}}} are not allowed in migrations: a migration must mean the same SQL after the model changes; write the table out, e.g. {{tenant}}.\"invoices\""
        );
    }
    if !is_name(name) {
        return format!(
            "{{{content}}} is not a placeholder: use {{tenant}} for the tenant's schema ({declared}); write `{{{{` and `}}}}` for literal braces outside string literals"
        );
    }
    format!("unknown placeholder {{{name}}}; use {{tenant}} for the tenant's schema ({declared})")
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
    fn dollar_bodies_are_sql_with_placeholders_and_their_literals_are_data() {
        let sql = "CREATE FUNCTION {tenant}.f() RETURNS int AS $body$ SELECT count(*) FROM {tenant}.t WHERE a = '{x}' AND b = '{shared}' $body$ LANGUAGE sql";
        assert_eq!(
            dummy(sql),
            "CREATE FUNCTION _tenant_.f() RETURNS int AS $body$ SELECT count(*) FROM _tenant_.t WHERE a = '{x}' AND b = '{shared}' $body$ LANGUAGE sql"
        );
        let errors = split_placeholders("SELECT $$ {x} $$", &[]).unwrap_err();
        assert!(
            errors[0].1.contains("unknown placeholder {x}"),
            "{errors:?}"
        );
    }

    #[test]
    fn doubled_braces_are_literal_braces_and_spaces_around_a_name_are_ignored() {
        let (parts, dummy) = split_placeholders("SELECT {{ {{ tenant }} }}", &[]).unwrap();
        assert_eq!(parts, [Part::Sql("SELECT { { tenant } }".into())]);
        assert_eq!(dummy, "SELECT {  {  tenant }  } ");
        let (parts, dummy) = split_placeholders("SELECT 1 FROM { tenant }.t", &[]).unwrap();
        assert_eq!(parts[1], Part::Slot(SlotRef::Tenant));
        assert_eq!(dummy, "SELECT 1 FROM _tenant___.t");
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        assert_eq!(
            dummy("SELECT $1, {tenant}.f($2)"),
            "SELECT $1, _tenant_.f($2)"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_offset() {
        let errors =
            split_placeholders("SELECT {Invoice}, {tenat}, {1,2}, } FROM t", &[]).unwrap_err();
        let found: Vec<(usize, &str)> = errors.iter().map(|(at, m)| (*at, m.as_str())).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].0, 7);
        assert!(found[0].1.contains("model placeholders"));
        assert_eq!(found[1].0, 18);
        assert!(found[1].1.contains("unknown placeholder {tenat}"));
        assert_eq!(found[2].0, 27);
        assert!(found[2].1.contains("{1,2} is not a placeholder"));
        assert_eq!(found[3].0, 34);
        assert!(found[3].1.contains("unmatched `}`"));
    }

    #[test]
    fn the_dummy_stands_in_for_unknown_placeholders_and_unmatched_braces() {
        let split = split("SELECT {tenat}.a, { FROM {1}", &[]);
        assert_eq!(split.errors.len(), 3);
        assert_eq!(split.dummy, "SELECT _tenat_.a,   FROM ___");
    }
}
