//! Splitting a migration file into its statements, so each one can be sent as a query string
//! of its own (Citus refuses a query string that holds a `CREATE INDEX` on a distributed
//! table next to another statement).
//!
//! The lexer is psql's: a `;` ends a statement unless it is inside a string literal
//! (`'...'`, `E'...'` with backslash escapes), a quoted identifier, a dollar-quoted body
//! (`$$ ... $$`, `$tag$ ... $tag$`), a comment (`--`, nesting `/* */`), parentheses, or the
//! `BEGIN ... END` body of a `CREATE [OR REPLACE] FUNCTION | PROCEDURE ... BEGIN ATOMIC`.
//! Statements with nothing but whitespace and comments are dropped, and so are the comments
//! before and after a statement's tokens.

use std::ops::Range;

/// The byte ranges of the statements of `sql`, in order: from a statement's first token to
/// its last, so without its `;` and the whitespace and comments around it (comments inside
/// it stay); empty statements (only whitespace and comments) are left out.
///
/// ```
/// let sql = "CREATE TABLE {tenant}.t (note text DEFAULT ';');\n-- a comment; with a semicolon\nCREATE INDEX i ON {tenant}.t (note);;";
/// let statements: Vec<&str> = tenant_sql::statement_ranges(sql).into_iter().map(|r| &sql[r]).collect();
/// assert_eq!(statements, [
///     "CREATE TABLE {tenant}.t (note text DEFAULT ';')",
///     "CREATE INDEX i ON {tenant}.t (note)",
/// ]);
/// ```
pub fn statement_ranges(sql: &str) -> Vec<Range<usize>> {
    let bytes = sql.as_bytes();
    let mut ranges = Vec::new();
    // Where the first token of the current statement starts (None: no token yet).
    let mut first_token: Option<usize> = None;
    let mut last_token_end = 0;
    let mut parens = 0usize;
    let mut routine = Routine::default();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let token_start = i;
        match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(sql, i);
                continue;
            }
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b';' if parens == 0 && routine.depth == 0 => {
                if let Some(first) = first_token {
                    ranges.push(first..last_token_end);
                }
                i += 1;
                first_token = None;
                routine = Routine::default();
                continue;
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
                    i = sql[i + tag.len()..]
                        .find(tag)
                        .map_or(bytes.len(), |n| i + tag.len() + n + tag.len());
                }
                None => i += 1,
            },
            b'(' => {
                parens += 1;
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                i += 1;
            }
            b if is_ident_start(b) => {
                let end = i + sql[i..]
                    .bytes()
                    .position(|b| !is_ident_byte(b))
                    .unwrap_or(bytes.len() - i);
                routine.word(&sql[i..end], parens);
                i = end;
            }
            _ => i += utf8_len(b),
        }
        first_token.get_or_insert(token_start);
        last_token_end = i;
    }
    if let Some(first) = first_token {
        ranges.push(first..last_token_end);
    }
    ranges
}

/// psql's heuristic for SQL-standard routine bodies: in a statement that starts with
/// `CREATE [OR REPLACE] FUNCTION | PROCEDURE`, `BEGIN` (outside parentheses) opens a block
/// that `END` closes, and `CASE` inside a block needs its own `END`.
#[derive(Default)]
struct Routine {
    /// The first words of the statement, lowercased initials (`c`, `o`, `r`, `f`, `p`).
    initials: [u8; 4],
    words: usize,
    depth: usize,
}

impl Routine {
    fn word(&mut self, word: &str, parens: usize) {
        let lower = word.to_ascii_lowercase();
        if self.words < self.initials.len()
            && matches!(
                lower.as_str(),
                "create" | "or" | "replace" | "function" | "procedure"
            )
        {
            self.initials[self.words] = lower.as_bytes()[0];
        }
        self.words += 1;
        let i = self.initials;
        let in_routine = i[0] == b'c'
            && (matches!(i[1], b'f' | b'p')
                || (i[1] == b'o' && i[2] == b'r' && matches!(i[3], b'f' | b'p')));
        if !in_routine || parens != 0 {
            return;
        }
        match lower.as_str() {
            "begin" => self.depth += 1,
            "case" if self.depth >= 1 => self.depth += 1,
            "end" => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// Past the end of the (nesting) block comment that starts at `i`.
fn skip_block_comment(sql: &str, mut i: usize) -> usize {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    while i < bytes.len() {
        if sql[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if sql[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += utf8_len(bytes[i]);
        }
    }
    bytes.len()
}

/// Past the closing `quote` of the literal or quoted identifier that starts at `i` (a doubled
/// quote is data; with `escapes`, so is a backslash-escaped one).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The dollar-quote tag (`$$` or `$name$`) starting at `i`, if one does.
fn dollar_tag_at(sql: &str, i: usize) -> Option<&str> {
    let rest = &sql.as_bytes()[i + 1..];
    let len = rest.iter().position(|b| *b == b'$')?;
    let tag = &rest[..len];
    let valid = match tag.first() {
        None => true,
        Some(first) => {
            is_ident_start(*first) && tag.iter().all(|b| is_ident_byte(*b) && *b != b'$')
        }
    };
    valid.then(|| &sql[i..i + len + 2])
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::statement_ranges;

    fn split(sql: &str) -> Vec<&str> {
        statement_ranges(sql).into_iter().map(|r| &sql[r]).collect()
    }

    #[test]
    fn semicolons_in_data_and_comments_do_not_split() {
        assert_eq!(
            split("SELECT ';', \"a;b\", E'\\';', $$;$$, $f$ ; $$ ; $f$; /* ; /* ; */ ; */ SELECT 2 -- ;\n;"),
            [
                "SELECT ';', \"a;b\", E'\\';', $$;$$, $f$ ; $$ ; $f$",
                "SELECT 2",
            ]
        );
    }

    #[test]
    fn a_plain_string_ends_at_its_quote_even_after_a_backslash() {
        // standard_conforming_strings: a backslash is data in '...'.
        assert_eq!(
            split("SELECT 'a\\'; SELECT 2"),
            ["SELECT 'a\\'", "SELECT 2"]
        );
    }

    #[test]
    fn empty_statements_and_trailing_comments_are_dropped() {
        assert_eq!(
            split(";; \n -- only a comment\n ; /* and another */"),
            Vec::<&str>::new()
        );
        assert_eq!(split("SELECT 1;\n-- trailing comment\n"), ["SELECT 1"]);
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(
            split("PREPARE p AS SELECT $1; SELECT 2"),
            ["PREPARE p AS SELECT $1", "SELECT 2"]
        );
    }

    #[test]
    fn parentheses_hold_semicolons() {
        assert_eq!(
            split("CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); SELECT 1"),
            [
                "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn sql_standard_routine_bodies_hold_semicolons() {
        let sql = "CREATE OR REPLACE FUNCTION {tenant}.f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT x; END;\nCREATE PROCEDURE {tenant}.p() BEGIN ATOMIC INSERT INTO {tenant}.t VALUES (1); END; SELECT 3";
        assert_eq!(
            split(sql),
            [
                "CREATE OR REPLACE FUNCTION {tenant}.f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT x; END",
                "CREATE PROCEDURE {tenant}.p() BEGIN ATOMIC INSERT INTO {tenant}.t VALUES (1); END",
                "SELECT 3",
            ]
        );
        // BEGIN outside a routine is a statement of its own.
        assert_eq!(split("BEGIN; SELECT 1; END"), ["BEGIN", "SELECT 1", "END"]);
    }

    #[test]
    fn a_checked_migration_carries_its_statements_and_the_whole_files_checksum() {
        use crate::{check_file, checksum, Part, SlotRef};
        let sql = "-- notes\nCREATE TABLE {tenant}.notes (id bigint PRIMARY KEY, body text DEFAULT ';');\n\
                   CREATE INDEX notes_body_idx ON {tenant}.notes (body);\n\
                   ALTER TABLE {tenant}.notes ADD COLUMN plan text REFERENCES {shared}.plans (code);\n";
        let m = check_file("0001_notes.sql", sql, &["shared"]).unwrap();
        assert_eq!(m.checksum, checksum(sql));
        assert_eq!(m.statements.len(), 3);
        assert_eq!(
            m.statements[1],
            [
                Part::Sql("CREATE INDEX notes_body_idx ON ".into()),
                Part::Slot(SlotRef::Tenant),
                Part::Sql(".notes (body)".into()),
            ]
        );
        assert!(m.statements[2].contains(&Part::Slot(SlotRef::Named("shared".into()))));
        // An unchecked file is split by the same rule.
        let unchecked =
            "-- tenant:unchecked\nCREATE STATISTICS {tenant}.s ON a, b FROM {tenant}.t; SELECT 1;";
        let m = check_file("0002_stats.sql", unchecked, &[]).unwrap();
        assert_eq!(m.statements.len(), 2);
        // Nothing but comments is no statement.
        let errors =
            check_file("0003_empty.sql", "-- tenant:unchecked\n-- nothing\n", &[]).unwrap_err();
        assert!(errors[0].message.contains("no SQL statement"), "{errors:?}");
    }

    #[test]
    fn an_unterminated_literal_runs_to_the_end() {
        assert_eq!(split("SELECT 'a; SELECT 2"), ["SELECT 'a; SELECT 2"]);
        assert_eq!(split("SELECT $x$ a; b"), ["SELECT $x$ a; b"]);
    }
}
