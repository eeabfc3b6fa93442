//! The placeholder lexer: where a brace in SQL is a placeholder and where it is data. The one
//! copy of the rule, used by `embed_migrations!`, `Migrations::from_dir` and the query macros.
//!
//! The rule:
//! - inside string literals (`'...'`, `E'...'` with backslash escapes), quoted identifiers
//!   (`"..."`) and comments (`-- ...`, nested `/* ... */`), braces are data: `'{1,2}'` stays
//!   `'{1,2}'`;
//! - in SQL text, `{{` and `}}` are one literal `{` and `}`, `{...}` is a placeholder (its
//!   content is whatever lies between the braces), and any other brace is an error;
//! - the body of a dollar quote (`$$ ... $$`, `$tag$ ... $tag$`) is read by the same rule, as
//!   SQL: it is almost always a function body, whose statements name tables (so `{tenant}`
//!   works there) while the string literals, quoted identifiers and comments inside it stay
//!   data. As in PostgreSQL, the body ends at the first closing tag.
//!
//! What a placeholder may say is the caller's business: `{tenant}` and declared slots in
//! migrations, `{Model}`, `{Model.column}`, ... in the query macros.

use std::fmt;

/// One piece of SQL, as [`lex`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lexeme<'a> {
    /// SQL written as is: text, literals, quoted identifiers, comments, dollar-quote tags.
    /// Starts at byte `at` of the SQL.
    Text {
        /// Byte offset of the text in the SQL.
        at: usize,
        /// The text.
        text: &'a str,
    },
    /// `{{` or `}}` in SQL text: one literal brace (the SQL holds two bytes at `at`).
    Brace {
        /// Byte offset of the doubled brace in the SQL.
        at: usize,
        /// `'{'` or `'}'`.
        brace: char,
    },
    /// `{content}` in SQL text: a placeholder.
    Placeholder {
        /// Byte offset of the `{` in the SQL.
        at: usize,
        /// What is between the braces, untrimmed.
        content: &'a str,
    },
}

impl Lexeme<'_> {
    /// Bytes of the SQL this lexeme covers.
    ///
    /// ```
    /// use tenant_sql::{lex, Lexeme};
    ///
    /// let lexed = lex("a {{ {b}");
    /// let lens: Vec<usize> = lexed.lexemes.iter().map(Lexeme::source_len).collect();
    /// assert_eq!(lens, [2, 2, 1, 3]);
    /// ```
    pub fn source_len(&self) -> usize {
        match self {
            Lexeme::Text { text, .. } => text.len(),
            Lexeme::Brace { .. } => 2,
            Lexeme::Placeholder { content, .. } => content.len() + 2,
        }
    }
}

/// A brace in SQL text that is neither doubled nor part of a placeholder.
///
/// ```
/// let error = tenant_sql::lex("SELECT 1 }").errors[0];
/// assert_eq!((error.at, error.brace), (9, '}'));
/// assert!(error.to_string().starts_with("unmatched `}`: write `}}` for a literal `}`"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset of the brace in the SQL.
    pub at: usize,
    /// `'{'` (no `}` closes it before the next brace or the end of the text) or `'}'` (no
    /// placeholder is open).
    pub brace: char,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.brace {
            '{' => f.write_str(
                "unmatched `{`: a placeholder `{...}` is closed by `}` before any other brace; write `{{` for a literal `{` in SQL text (braces inside string literals, quoted identifiers and comments are data)",
            ),
            _ => f.write_str(
                "unmatched `}`: write `}}` for a literal `}` in SQL text (braces inside string literals, quoted identifiers and comments are data)",
            ),
        }
    }
}

impl std::error::Error for LexError {}

/// What [`lex`] read: the pieces of the SQL in order (together they cover it exactly), and
/// every unmatched brace (each also kept as text in `lexemes`, so a caller can go on checking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed<'a> {
    /// The SQL, piece by piece.
    pub lexemes: Vec<Lexeme<'a>>,
    /// Unmatched braces, in order.
    pub errors: Vec<LexError>,
}

/// Splits `sql` into text, literal braces and placeholders by the rule of this module.
///
/// ```
/// use tenant_sql::{lex, Lexeme};
///
/// let lexed = lex("SELECT '{1,2}'::int[] FROM {tenant}.t -- {x}");
/// assert!(lexed.errors.is_empty());
/// assert_eq!(lexed.lexemes, [
///     Lexeme::Text { at: 0, text: "SELECT '{1,2}'::int[] FROM " },
///     Lexeme::Placeholder { at: 27, content: "tenant" },
///     Lexeme::Text { at: 35, text: ".t -- {x}" },
/// ]);
/// ```
pub fn lex<'a>(sql: &'a str) -> Lexed<'a> {
    let bytes = sql.as_bytes();
    let mut lexemes = Vec::new();
    let mut errors = Vec::new();
    let mut text_start = 0;
    // Open dollar quotes, innermost last: (byte where the body ends, length of the closing tag).
    let mut bodies: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;

    let flush = |lexemes: &mut Vec<Lexeme<'a>>, text_start: usize, end: usize| {
        if text_start < end {
            // Every boundary is at an ASCII byte or the end, so a char boundary.
            lexemes.push(Lexeme::Text {
                at: text_start,
                text: &sql[text_start..end],
            });
        }
    };

    loop {
        // Close every dollar quote whose body ends here (an unterminated inner one ends with
        // its outer body).
        while let Some(&(end, tag_len)) = bodies.last() {
            if i < end {
                break;
            }
            i = end + tag_len;
            bodies.pop();
        }
        let limit = bodies.last().map_or(bytes.len(), |&(end, _)| end);
        if i >= limit {
            break;
        }
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') && i + 1 < limit => {
                i = sql[i..limit].find('\n').map_or(limit, |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') && i + 1 < limit => {
                // PostgreSQL block comments nest.
                let mut depth = 0usize;
                while i < limit {
                    if bytes[i..limit].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..limit].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = skip_quoted(&bytes[..limit], i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(&bytes[..limit], i, b'"', false),
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => match dollar_tag_at(&sql[..limit], i)
            {
                Some(tag) => {
                    let body = i + tag.len();
                    // As in PostgreSQL, the body ends at the first closing tag; an
                    // unterminated one runs to the end of the text around it.
                    bodies.push(match sql[body..limit].find(tag) {
                        Some(n) => (body + n, tag.len()),
                        None => (limit, 0),
                    });
                    i = body;
                }
                None => i += 1,
            },
            b'{' if bytes.get(i + 1) == Some(&b'{') && i + 1 < limit => {
                flush(&mut lexemes, text_start, i);
                lexemes.push(Lexeme::Brace { at: i, brace: '{' });
                i += 2;
                text_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') && i + 1 < limit => {
                flush(&mut lexemes, text_start, i);
                lexemes.push(Lexeme::Brace { at: i, brace: '}' });
                i += 2;
                text_start = i;
            }
            b'{' => {
                let rest = &sql[i + 1..limit];
                match rest.find(['{', '}']) {
                    Some(n) if rest.as_bytes()[n] == b'}' => {
                        flush(&mut lexemes, text_start, i);
                        lexemes.push(Lexeme::Placeholder {
                            at: i,
                            content: &rest[..n],
                        });
                        i += n + 2;
                        text_start = i;
                    }
                    _ => {
                        errors.push(LexError { at: i, brace: '{' });
                        i += 1;
                    }
                }
            }
            b'}' => {
                errors.push(LexError { at: i, brace: '}' });
                i += 1;
            }
            _ => i += 1,
        }
    }
    flush(&mut lexemes, text_start, bytes.len());
    Lexed { lexemes, errors }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lexemes as a compact string: text as is, `[..]` for a placeholder, `{`/`}` for
    /// a literal brace; and the offsets of the errors.
    fn show(sql: &str) -> (String, Vec<(usize, char)>) {
        let lexed = lex(sql);
        let mut out = String::new();
        let mut covered = 0;
        for l in &lexed.lexemes {
            match l {
                Lexeme::Text { at, text } => {
                    assert_eq!(*at, covered);
                    out.push_str(text)
                }
                Lexeme::Brace { at, brace } => {
                    assert_eq!(*at, covered);
                    out.push(*brace)
                }
                Lexeme::Placeholder { at, content } => {
                    assert_eq!(*at, covered);
                    out.push_str(&format!("[{content}]"))
                }
            }
            covered += l.source_len();
        }
        assert_eq!(covered, sql.len(), "the lexemes cover the SQL");
        (out, lexed.errors.iter().map(|e| (e.at, e.brace)).collect())
    }

    #[test]
    fn braces_in_literals_identifiers_and_comments_are_data() {
        for sql in [
            "SELECT '{x}', E'\\'{y}', \"{z}\" -- {w}\n",
            "SELECT 1 /* {a} /* {b} */ {c} */",
            "SELECT '{1,2}'::int[], 'it''s {x}', U&'{d}'",
            "SELECT e'\\\\' || '{'",
            "SELECT 'é{ü}' -- ünïcode {",
        ] {
            assert_eq!(show(sql), (sql.to_owned(), vec![]), "{sql}");
        }
    }

    #[test]
    fn in_sql_text_doubled_braces_are_literal_and_single_ones_placeholders() {
        assert_eq!(
            show("SELECT {{a}} FROM {Invoice AS i}, {tenant}.t"),
            (
                "SELECT {a} FROM [Invoice AS i], [tenant].t".to_owned(),
                vec![]
            )
        );
        assert_eq!(show("{}"), ("[]".to_owned(), vec![]));
    }

    #[test]
    fn unmatched_braces_are_errors_and_kept_as_text() {
        assert_eq!(
            show("SELECT {a FROM {b} }"),
            ("SELECT {a FROM [b] }".to_owned(), vec![(7, '{'), (19, '}')])
        );
        assert_eq!(show("{"), ("{".to_owned(), vec![(0, '{')]));
        // A quote does not close a placeholder's search, a brace does.
        assert_eq!(show("{a '}'"), ("[a ']'".to_owned(), vec![]));
    }

    #[test]
    fn dollar_bodies_are_read_as_sql() {
        let sql = "CREATE FUNCTION {tenant}.f() RETURNS int AS $body$ SELECT count(*) FROM {tenant}.t WHERE a = '{x}' -- {y}\n $body$ LANGUAGE sql";
        assert_eq!(
            show(sql).0,
            "CREATE FUNCTION [tenant].f() RETURNS int AS $body$ SELECT count(*) FROM [tenant].t WHERE a = '{x}' -- {y}\n $body$ LANGUAGE sql"
        );
        // Nested bodies with their own tags; the outer body ends at its first closing tag,
        // even inside what looks like a literal of the inner one.
        assert_eq!(
            show("$a$ {p} $b$ {q} '$b$ {r} $a$ {s}").0,
            "$a$ [p] $b$ [q] '$b$ [r] $a$ [s]"
        );
        // Unterminated: the body runs to the end.
        assert_eq!(show("$$ {p} '{q}'").0, "$$ [p] '{q}'");
    }

    #[test]
    fn parameters_and_identifiers_with_dollars_are_not_dollar_quotes() {
        assert_eq!(show("SELECT $1, a$b$ {c}").0, "SELECT $1, a$b$ [c]");
    }
}
