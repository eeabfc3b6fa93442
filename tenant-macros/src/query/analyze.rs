//! Checks the SQL with sqlparser (PostgreSQL dialect) and ties parameters to columns.
//!
//! The SQL given to sqlparser is the literal with every placeholder replaced by an
//! identifier of the same length (`{Invoice.paid}` → `_2____________`), so positions in its
//! errors are positions in the literal.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use proc_macro2::Span;
use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, ObjectName, ObjectNamePart, SelectItem, SetExpr,
    Statement, Value, ValueWithSpan,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use super::placeholder::{dummy_index, Placeholder, Sql, Target};
use crate::ctxt::Ctxt;

pub struct Analysis {
    /// The highest `$n` (0 without parameters).
    pub max_param: usize,
    /// Parameter `$n` → the placeholder (a column) it is compared with or assigned to.
    pub ties: BTreeMap<usize, usize>,
}

/// Checks `sql`; every problem goes to `cx`, at `span` (the literal). `None` when the
/// statement could not be read at all.
pub fn analyze(
    sql: &Sql,
    args: usize,
    scalar: bool,
    macro_name: &str,
    cx: &Ctxt,
    span: Span,
) -> Option<Analysis> {
    let dialect = PostgreSqlDialect {};
    let error = |message: String| cx.error_at(span, message);

    // Parameters: from the tokens, so `'$1'` in a string literal is not one.
    let tokens = match Tokenizer::new(&dialect, &sql.dummy).tokenize() {
        Ok(tokens) => tokens,
        Err(e) => {
            error(syntax_error(&e.to_string()));
            return None;
        }
    };
    let mut params = BTreeSet::new();
    for token in &tokens {
        if let Token::Placeholder(p) = token {
            match p.strip_prefix('$').map(str::parse::<usize>) {
                Some(Ok(0)) => error("`$0` is not a parameter: parameters are numbered from `$1`".into()),
                Some(Ok(n)) => {
                    params.insert(n);
                }
                _ => error(format!(
                    "`{p}` is not a PostgreSQL parameter: write `$1`, `$2`, ... for the arguments after the SQL"
                )),
            }
        }
    }

    let statements = match Parser::parse_sql(&dialect, &sql.dummy) {
        Ok(statements) => statements,
        Err(e) => {
            let msg = match e {
                ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
                ParserError::RecursionLimitExceeded => "the SQL nests too deeply".into(),
            };
            error(syntax_error(&msg));
            return None;
        }
    };
    match statements.len() {
        1 => {}
        0 => {
            error("the SQL is empty: write one statement".into());
            return None;
        }
        n => {
            error(format!(
                "the SQL has {n} statements; a query runs exactly one (prepared statements cannot hold more): call the macro once per statement, in a transaction if they belong together"
            ));
            return None;
        }
    }
    let statement = &statements[0];

    let max = params.last().copied().unwrap_or(0);
    if let Some(gap) = (1..max).find(|n| !params.contains(n)) {
        error(format!(
            "`${gap}` is never used but `${max}` is: PostgreSQL cannot infer the type of an unused parameter; number the parameters `$1` to `${}` without gaps",
            params.len()
        ));
    }
    if args < max {
        let missing: Vec<String> = (args + 1..=max).map(|n| format!("`${n}`")).collect();
        error(format!(
            "the SQL uses {max} parameter{} but {args} argument{} given: add argument{} for {}",
            plural(max),
            if args == 1 { " was" } else { "s were" },
            plural(max - args),
            missing.join(", ")
        ));
    }

    if scalar {
        if let Some(n) = output_columns(statement, &sql.placeholders) {
            if n != 1 {
                error(format!(
                    "`{macro_name}` reads one column, but this statement returns {}: select exactly one value, or use `query!`/`query_as!`",
                    if n == usize::MAX { "every column of a table".to_owned() } else { n.to_string() }
                ));
            }
        }
    }

    let mut ties = BTreeMap::new();
    tie_statement(statement, &sql.placeholders, &mut ties);
    Some(Analysis {
        max_param: max,
        ties,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `Expected: ..., found: ... at Line: 1, Column: 8` → a message that says where.
fn syntax_error(msg: &str) -> String {
    match msg.rsplit_once(" at Line: ") {
        Some((what, at)) => match at.split_once(", Column: ") {
            Some((line, column)) => {
                format!("SQL syntax error at line {line}, column {column} of the query: {what}")
            }
            None => format!("SQL syntax error: {msg}"),
        },
        None => format!("SQL syntax error: {msg}"),
    }
}

/// The placeholder a column expression stands for, if it is a column placeholder.
fn column_of(expr: &Expr, placeholders: &[Placeholder]) -> Option<usize> {
    let ident = match expr {
        Expr::Identifier(ident) => ident,
        // `t.{Model.col}`
        Expr::CompoundIdentifier(idents) => idents.last()?,
        Expr::Nested(inner) => return column_of(inner, placeholders),
        _ => return None,
    };
    column_placeholder(&ident.value, placeholders)
}

fn column_placeholder(ident: &str, placeholders: &[Placeholder]) -> Option<usize> {
    let index = dummy_index(ident)?;
    matches!(placeholders.get(index)?.target, Target::Column { .. }).then_some(index)
}

fn object_column(name: &ObjectName, placeholders: &[Placeholder]) -> Option<usize> {
    match name.0.last()? {
        ObjectNamePart::Identifier(ident) => column_placeholder(&ident.value, placeholders),
        _ => None,
    }
}

/// The parameter number of `$n`.
fn param_of(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) => p.strip_prefix('$')?.parse().ok(),
        Expr::Nested(inner) => param_of(inner),
        _ => None,
    }
}

fn tie(ties: &mut BTreeMap<usize, usize>, column: Option<usize>, param: Option<usize>) {
    if let (Some(column), Some(param)) = (column, param) {
        ties.entry(param).or_insert(column);
    }
}

/// Ties `$n` to the column it is compared with, assigned to or inserted into.
fn tie_statement(
    statement: &Statement,
    placeholders: &[Placeholder],
    ties: &mut BTreeMap<usize, usize>,
) {
    match statement {
        Statement::Update(update) => {
            for assignment in &update.assignments {
                if let AssignmentTarget::ColumnName(name) = &assignment.target {
                    tie(
                        ties,
                        object_column(name, placeholders),
                        param_of(&assignment.value),
                    );
                }
            }
        }
        Statement::Insert(insert) => {
            if let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|q| &*q.body) {
                for row in &values.rows {
                    for (name, value) in insert.columns.iter().zip(&row.content) {
                        tie(ties, object_column(name, placeholders), param_of(value));
                    }
                }
            }
        }
        _ => {}
    }
    let _ = sqlparser::ast::visit_expressions(statement, |expr| {
        let col = |e: &Expr| column_of(e, placeholders);
        match expr {
            Expr::BinaryOp { left, op, right } if is_comparison(op) => {
                tie(ties, col(left), param_of(right));
                tie(ties, col(right), param_of(left));
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                tie(ties, col(a), param_of(b));
                tie(ties, col(b), param_of(a));
            }
            Expr::InList { expr, list, .. } => {
                for item in list {
                    tie(ties, col(expr), param_of(item));
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                tie(ties, col(expr), param_of(low));
                tie(ties, col(expr), param_of(high));
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

/// How many columns a statement returns, when the macro can tell (`usize::MAX` for a
/// `*` or a `{Model.*}`); `None` when it cannot (set operations, `VALUES`, ...).
fn output_columns(statement: &Statement, placeholders: &[Placeholder]) -> Option<usize> {
    let items = match statement {
        Statement::Query(query) => match &*query.body {
            SetExpr::Select(select) => &select.projection,
            _ => return None,
        },
        Statement::Insert(insert) => insert.returning.as_ref()?,
        Statement::Update(update) => update.returning.as_ref()?,
        Statement::Delete(delete) => delete.returning.as_ref()?,
        _ => return None,
    };
    let star = items.iter().any(|item| match item {
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => true,
        SelectItem::UnnamedExpr(Expr::Identifier(ident)) => dummy_index(&ident.value)
            .and_then(|i| placeholders.get(i))
            .is_some_and(|p| matches!(p.target, Target::Star { .. })),
        _ => false,
    });
    Some(if star { usize::MAX } else { items.len() })
}

#[cfg(test)]
mod tests {
    use syn::LitStr;

    use super::*;
    use crate::query::placeholder::scan;

    fn scan_ok(sql: &str) -> Sql {
        let cx = Ctxt::new();
        let scanned = scan(&LitStr::new(sql, Span::call_site()), &cx);
        cx.check().expect("scans");
        scanned.expect("scans")
    }

    fn run(sql: &str, args: usize, scalar: bool) -> Result<Analysis, Vec<String>> {
        let scanned = scan_ok(sql);
        let cx = Ctxt::new();
        let analysis = analyze(
            &scanned,
            args,
            scalar,
            "query_scalar!",
            &cx,
            Span::call_site(),
        );
        match (analysis, cx.check()) {
            (Some(a), Ok(())) => Ok(a),
            (_, Err(e)) => Err(e.into_iter().map(|e| e.to_string()).collect()),
            (None, Ok(())) => panic!("analysis failed without an error"),
        }
    }

    /// `$n` → the column name it is tied to.
    fn ties(sql: &str, args: usize) -> Vec<(usize, String)> {
        let scanned = scan_ok(sql);
        let analysis = run(sql, args, false).unwrap();
        analysis
            .ties
            .iter()
            .map(|(n, i)| match &scanned.placeholders[*i].target {
                Target::Column { column, .. } => (*n, column.clone()),
                _ => panic!("tied to a non-column"),
            })
            .collect()
    }

    #[test]
    fn parameters_are_tied_to_the_columns_they_meet() {
        assert_eq!(
            ties(
                "SELECT {I.*} FROM {I} WHERE {I.a} = $1 AND $2 < {I.b} AND ({I.c}) IN ($3, $4) \
                 AND {I.d} BETWEEN $5 AND $6 AND t.{I.e} IS DISTINCT FROM $7 AND {I.f} = $8 + 1",
                8
            ),
            [
                (1, "a".into()),
                (2, "b".into()),
                (3, "c".into()),
                (4, "c".into()),
                (5, "d".into()),
                (6, "d".into()),
                (7, "e".into()),
            ]
        );
        assert_eq!(
            ties(
                "UPDATE {I} SET {I.a} = $1, {I.b} = lower($2) WHERE {I.id} = $3",
                3
            ),
            [(1, "a".into()), (3, "id".into())]
        );
        assert_eq!(
            ties(
                "INSERT INTO {I} ({I.a}, {I.b}) VALUES ($1, $2), ($3, now())",
                3
            ),
            [(1, "a".into()), (2, "b".into()), (3, "a".into())]
        );
        // A parameter inside a string literal is text, not a parameter.
        assert_eq!(run("SELECT '$1' FROM {I}", 0, false).unwrap().max_param, 0);
    }

    #[test]
    fn statement_problems_are_reported() {
        for (sql, args, scalar, needle) in [
            ("SELCT 1", 0, false, "SQL syntax error at line 1, column 1"),
            ("SELECT 1 FROM {I} WHERE", 0, false, "SQL syntax error"),
            ("SELECT 'unterminated", 0, false, "SQL syntax error"),
            ("", 0, false, "empty"),
            ("SELECT 1; SELECT 2", 0, false, "2 statements"),
            ("SELECT $1, $3", 3, false, "`$2` is never used"),
            ("SELECT $1, $2", 1, false, "add argument for `$2`"),
            ("SELECT $0", 0, false, "`$0`"),
            ("SELECT {I.a}, {I.b} FROM {I}", 0, true, "returns 2"),
            ("SELECT * FROM {I}", 0, true, "every column"),
            ("SELECT {I.*} FROM {I}", 0, true, "every column"),
        ] {
            let errors = run(sql, args, scalar)
                .err()
                .unwrap_or_else(|| panic!("{sql} passed"));
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{sql}: expected {needle:?} in {errors:?}"
            );
        }
        assert!(run("SELECT count(*) FROM {I}", 0, true).is_ok());
        assert!(run("SELECT $1::int, $2", 2, false).is_ok());
    }
}
