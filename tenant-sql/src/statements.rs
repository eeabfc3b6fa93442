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

/// Checks the SQL; returns how many statements the parser found (`None` for an unchecked
/// file, which the parser does not read).
pub(crate) fn check(sql: &str, unchecked: bool) -> Result<Option<usize>, Problem> {
    if unchecked {
        return if sql.trim().is_empty() {
            Err(problem(
                "the file is empty; a migration needs at least one statement",
            ))
        } else {
            Ok(None)
        };
    }
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| {
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
    })?;
    if statements.is_empty() {
        return Err(problem(
            "the file has no SQL statement; a migration needs at least one",
        ));
    }
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
            return Err(problem(format!(
                "{what} cannot be in a migration: each tenant's migrations run in one transaction that the runner opens and commits; remove it (run non-transactional maintenance separately)"
            )));
        }
    }
    Ok(Some(statements.len()))
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
        assert!(check(sql, false).is_ok());
    }

    #[test]
    fn syntax_error_has_a_position() {
        let p = check(
            "SELECT 1;\nCREATE TABLE _tenant_.t (id bigint PRIMARY KEY,,);",
            false,
        )
        .expect_err("a syntax error");
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
            assert!(check(sql, false).is_err(), "{sql}");
        }
    }

    #[test]
    fn unchecked_files_skip_the_parser_but_not_emptiness() {
        assert!(check("CREATE STATISTICS whatever strange syntax", true).is_ok());
        assert!(check("  \n", true).is_err());
    }
}
