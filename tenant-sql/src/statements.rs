//! Parsing a migration's SQL (placeholders already replaced by identifiers) and refusing
//! statements that cannot run inside the transaction a migration runs in.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

pub(crate) struct Problem {
    pub position: Option<(usize, usize)>,
    pub message: String,
}

fn problem(message: impl Into<String>) -> Problem {
    Problem {
        position: None,
        message: message.into(),
    }
}

/// Every problem of `sql` (a syntax error: the parser stops at the first; or each statement
/// that may not be in a migration), and how many statements the parser found (`None` for an
/// unchecked file, which the parser does not read, or SQL that does not parse).
pub(crate) fn check(sql: &str, unchecked: bool) -> (Vec<Problem>, Option<usize>) {
    if unchecked {
        return if sql.trim().is_empty() {
            (
                vec![problem(
                    "the file is empty; a migration needs at least one statement",
                )],
                None,
            )
        } else {
            (Vec::new(), None)
        };
    }
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| {
        let text = e.to_string();
        let text = text.strip_prefix("sql parser error: ").unwrap_or(&text);
        let (message, position) = split_position(text);
        Problem {
            position,
            message: format!(
                "the SQL does not parse (PostgreSQL dialect): {message}; fix the statement, or add a line `{}` if it is valid PostgreSQL that the parser does not know",
                crate::UNCHECKED_MARKER
            ),
        }
    }) {
        Ok(statements) => statements,
        Err(problem) => return (vec![problem], None),
    };
    if statements.is_empty() {
        return (
            vec![problem(
                "the file has no SQL statement; a migration needs at least one",
            )],
            Some(0),
        );
    }
    let mut problems = Vec::new();
    for statement in &statements {
        let refused = match statement {
            Statement::StartTransaction { .. } => Some("BEGIN/START TRANSACTION"),
            Statement::Commit { .. } => Some("COMMIT"),
            Statement::Rollback { .. } => Some("ROLLBACK"),
            Statement::Savepoint { .. } | Statement::ReleaseSavepoint { .. } => Some("SAVEPOINT"),
            Statement::Vacuum(_) => Some("VACUUM"),
            Statement::CreateIndex(index) if index.concurrently => {
                Some("CREATE INDEX CONCURRENTLY")
            }
            _ => None,
        };
        if let Some(what) = refused {
            problems.push(problem(format!(
                "{what} cannot be in a migration: each tenant's migrations run in one transaction that the runner opens and commits; remove it (run non-transactional maintenance separately)"
            )));
        }
    }
    (problems, Some(statements.len()))
}

/// Splits sqlparser's trailing ` at Line: L, Column: C` off a message.
fn split_position(text: &str) -> (&str, Option<(usize, usize)>) {
    let Some(at) = text.rfind(" at Line: ") else {
        return (text, None);
    };
    let rest = &text[at + " at Line: ".len()..];
    let mut numbers = rest.split(", Column: ");
    let line = numbers.next().and_then(|l| l.trim().parse().ok());
    let column = numbers.next().and_then(|c| c.trim().parse().ok());
    match (line, column) {
        (Some(l), Some(c)) => (&text[..at], Some((l, c))),
        _ => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_statement_ddl_parses() {
        let sql = "CREATE TABLE _tenant_.t (id bigint PRIMARY KEY, note text);\nALTER TABLE _tenant_.t ADD COLUMN paid boolean NOT NULL DEFAULT false;\nCREATE INDEX t_paid_idx ON _tenant_.t (paid);";
        assert!(check(sql, false).0.is_empty());
    }

    #[test]
    fn syntax_error_has_a_position() {
        let (problems, _) = check(
            "SELECT 1;\nCREATE TABLE _tenant_.t (id bigint PRIMARY KEY,,);",
            false,
        );
        let [p] = &problems[..] else {
            panic!("one syntax error expected");
        };
        assert_eq!(p.position.map(|(l, _)| l), Some(2));
        assert!(p.message.contains("does not parse"), "{}", p.message);
    }

    #[test]
    fn transaction_control_is_refused() {
        for sql in [
            "BEGIN; SELECT 1",
            "SELECT 1; COMMIT",
            "CREATE INDEX CONCURRENTLY i ON _tenant_.t (a)",
        ] {
            assert_eq!(check(sql, false).0.len(), 1, "{sql}");
        }
        // Each refused statement is its own problem.
        assert_eq!(check("BEGIN; SELECT 1; COMMIT", false).0.len(), 2);
    }

    #[test]
    fn unchecked_files_skip_the_parser_but_not_emptiness() {
        assert!(check("CREATE STATISTICS whatever strange syntax", true)
            .0
            .is_empty());
        assert_eq!(check("  \n", true).0.len(), 1);
    }
}
