//! Splits the SQL literal into text and placeholders, and resolves each placeholder to a
//! model (and column) as far as the macro can: whether the model exists and has the column
//! is rustc's to say, through the generated code.
//!
//! Grammar inside `{...}` (surrounding spaces are ignored):
//! - `Model` / `path::to::Model`: the schema-qualified table, `"schema"."table"`;
//! - `Model AS alias`: the same, aliased: `"schema"."table" AS "alias"`;
//! - `Model.column` / `alias.column`: the quoted column, `"column"` (bare, so it works in
//!   `SET` and `INSERT` lists too) / `"alias"."column"`;
//! - `Model.*` / `alias.*`: every column in decode order, qualified by the table name
//!   (`"table"."id", ...`) / by the alias (`"alias"."id", ...`).
//!
//! Where a brace is a placeholder is tenant-sql's rule ([`tenant_sql::lex`], the same for
//! migrations): braces inside string literals, dollar-quoted strings' literals, quoted
//! identifiers and comments are data; in SQL text `{{` and `}}` are a literal `{` and `}`.
//! A model starts with an uppercase letter or is a path (`models::Invoice`); a lowercase
//! single name is an alias declared in the same literal, else an error: there is no
//! placeholder for a schema.

use std::cell::Cell;
use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::{LitStr, Path};
use tenant_sql::Lexeme;

use crate::ctxt::Ctxt;
use crate::ident::identifier_problem;

pub struct Sql {
    pub segments: Vec<Segment>,
    pub placeholders: Vec<Placeholder>,
    /// The SQL with each placeholder replaced by an identifier of the same length
    /// (`_0___`), for sqlparser; offsets match the literal's.
    pub dummy: String,
}

pub enum Segment {
    Text(String),
    /// Index into `placeholders`.
    Placeholder(usize),
}

pub struct Placeholder {
    pub target: Target,
}

pub enum Target {
    /// `{Model}`, `{Model AS alias}`.
    Table { model: Path, alias: Option<String> },
    /// `{Model.column}` (`qualifier: None`) or `{alias.column}`.
    Column {
        model: Path,
        qualifier: Option<String>,
        column: String,
    },
    /// `{Model.*}` (qualified by the table) or `{alias.*}`.
    Star {
        model: Path,
        qualifier: Option<String>,
    },
}

/// The span of code generated for the placeholders of `lit`: located at the literal, so
/// rustc's errors (unknown model, unknown column, not a model) point there, but resolved at
/// the call site like any macro output, so rustc offers no "replace the literal with ..."
/// suggestions.
pub fn code_span(lit: &LitStr) -> Span {
    Span::call_site().located_at(lit.span())
}

/// The dummy identifier standing for placeholder `index` in the SQL given to sqlparser.
pub fn dummy_ident(index: usize, len: usize) -> String {
    let mut s = format!("_{index}");
    while s.len() < len {
        s.push('_');
    }
    s
}

/// The placeholder index a dummy identifier stands for.
pub fn dummy_index(ident: &str) -> Option<usize> {
    let digits = ident.strip_prefix('_')?.trim_end_matches('_');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A raw placeholder before aliases are known.
enum Raw {
    Table {
        head: String,
        alias: Option<String>,
    },
    Member {
        head: String,
        member: Option<String>,
    },
}

const GRAMMAR: &str = "placeholders are `{Model}`, `{Model AS alias}`, `{Model.column}`, `{alias.column}`, `{Model.*}` and `{alias.*}`; in SQL text write `{{` and `}}` for literal braces (inside string literals, quoted identifiers and comments, braces are data)";

/// Splits the literal, and reads and resolves its placeholders; every problem goes to `cx`
/// (spanned at the literal). `None` when there was any.
pub fn scan(lit: &LitStr, cx: &Ctxt) -> Option<Sql> {
    let span = lit.span();
    let code_span = code_span(lit);
    let failed = Cell::new(false);
    let err = |msg: String| {
        failed.set(true);
        cx.error_at(span, msg);
    };
    let value = lit.value();

    // Pass 1: braces, by tenant-sql's lexer (the one rule, shared with migrations).
    let lexed = tenant_sql::lex(&value);
    for e in &lexed.errors {
        let what = match e.brace {
            '{' => "a placeholder is closed by `}` before any other brace",
            _ => "no placeholder is open",
        };
        err(format!(
            "unmatched `{}` at byte {} of the SQL: {what}; {GRAMMAR}",
            e.brace, e.at
        ));
    }
    let mut text = String::new();
    let mut dummy = String::with_capacity(value.len());
    // `Ok(text)` or `Err(placeholder content)`.
    let mut raw_segments: Vec<Result<String, String>> = Vec::new();
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
            Lexeme::Placeholder { content, .. } => {
                if !text.is_empty() {
                    raw_segments.push(Ok(std::mem::take(&mut text)));
                }
                let index = raw_segments.iter().filter(|s| s.is_err()).count();
                dummy.push_str(&dummy_ident(index, content.len() + 2));
                raw_segments.push(Err(content.to_owned()));
            }
        }
    }
    if !text.is_empty() {
        raw_segments.push(Ok(text));
    }
    if failed.get() {
        return None;
    }

    // Pass 2: read each placeholder.
    let mut raws = Vec::new();
    for seg in &raw_segments {
        if let Err(content) = seg {
            match read(content) {
                Ok(raw) => raws.push(Some(raw)),
                Err(msg) => {
                    err(msg);
                    raws.push(None);
                }
            }
        }
    }

    // Pass 3: aliases, declared anywhere in the literal (the select list comes before FROM).
    let mut aliases: BTreeMap<String, Path> = BTreeMap::new();
    for raw in raws.iter().flatten() {
        if let Raw::Table {
            head,
            alias: Some(alias),
        } = raw
        {
            if let Some(problem) = identifier_problem(alias) {
                err(format!(
                    "invalid alias `{alias}` in `{{{head} AS {alias}}}`: {problem}"
                ));
                continue;
            }
            let Some(model) = model_path(head, code_span, &err) else {
                continue;
            };
            if aliases.insert(alias.clone(), model).is_some() {
                err(format!(
                    "alias `{alias}` is declared twice; give each table its own alias"
                ));
            }
        }
    }

    // Pass 4: resolve.
    let mut placeholders = Vec::new();
    for raw in raws.into_iter().flatten() {
        let target = match raw {
            Raw::Table { head, alias } => {
                if aliases.contains_key(&head) {
                    err(format!(
                        "`{{{head}}}` is an alias, not a table: declare it once as `{{Model AS {head}}}` and use it for columns, `{{{head}.column}}` or `{{{head}.*}}`"
                    ));
                    continue;
                }
                let model = match &alias {
                    // Resolved (or reported) with the aliases.
                    Some(alias) => match aliases.get(alias) {
                        Some(model) => model.clone(),
                        None => continue,
                    },
                    None => match model_path(&head, code_span, &err) {
                        Some(model) => model,
                        None => continue,
                    },
                };
                Target::Table { model, alias }
            }
            Raw::Member { head, member } => {
                let (model, qualifier) = match aliases.get(&head) {
                    Some(model) => (model.clone(), Some(head)),
                    None => match model_path(&head, code_span, &err) {
                        Some(model) => (model, None),
                        None => continue,
                    },
                };
                match member {
                    Some(column) => Target::Column {
                        model,
                        qualifier,
                        column,
                    },
                    None => Target::Star { model, qualifier },
                }
            }
        };
        placeholders.push(Placeholder { target });
    }
    if failed.get() {
        return None;
    }

    let mut index = 0;
    let segments = raw_segments
        .into_iter()
        .map(|seg| match seg {
            Ok(text) => Segment::Text(text),
            Err(_) => {
                index += 1;
                Segment::Placeholder(index - 1)
            }
        })
        .collect();
    Some(Sql {
        segments,
        placeholders,
        dummy,
    })
}

/// Reads `content` (between the braces) without resolving names.
fn read(content: &str) -> Result<Raw, String> {
    let words: Vec<&str> = content.split_whitespace().collect();
    let shown = format!("{{{content}}}");
    match words.as_slice() {
        [] => Err(format!("empty placeholder `{shown}`: {GRAMMAR}")),
        [target] => Ok(match target.rsplit_once('.') {
            None => Raw::Table {
                head: (*target).to_owned(),
                alias: None,
            },
            Some((head, "*")) => Raw::Member {
                head: head.to_owned(),
                member: None,
            },
            Some((head, column)) => {
                if !is_column_name(column) {
                    return Err(format!(
                        "`{shown}`: `{column}` is not a column name; {GRAMMAR}"
                    ));
                }
                Raw::Member {
                    head: head.to_owned(),
                    member: Some(column.to_owned()),
                }
            }
        }),
        [target, kw, alias] if kw.eq_ignore_ascii_case("as") => {
            if target.contains('.') {
                return Err(format!(
                    "`{shown}`: only a table can be aliased, as `{{Model AS alias}}`; columns are aliased in SQL, after the placeholder: `{{Model.column}} AS name`"
                ));
            }
            Ok(Raw::Table {
                head: (*target).to_owned(),
                alias: Some((*alias).to_owned()),
            })
        }
        _ => Err(free_text(&shown)),
    }
}

fn free_text(shown: &str) -> String {
    format!(
        "`{shown}` is not a placeholder: {GRAMMAR}. There is no placeholder for a schema or any other text: a table's schema comes from its model's slot, filled from the tenant and the `SchemaMap`"
    )
}

/// An identifier that is also a valid Rust identifier once uppercased (so not `_`).
fn is_column_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars().any(|c| c.is_ascii_alphanumeric())
}

/// `head` as the path of a model type, spanned at the literal; a problem goes to `err`.
fn model_path(head: &str, code_span: Span, err: &impl Fn(String)) -> Option<Path> {
    let shown = format!("{{{head}}}");
    let path: Path = match syn::parse_str(head) {
        Ok(path) => path,
        Err(_) => {
            err(free_text(&shown));
            return None;
        }
    };
    if let Some(ident) = path.get_ident() {
        if ident == "Self" {
            err("name the model instead of `Self` (the SQL becomes a `static`, which cannot refer to `Self`)".into());
            return None;
        }
        let lowercase = ident
            .to_string()
            .starts_with(|c: char| !c.is_ascii_uppercase());
        if lowercase {
            err(free_text(&shown));
            return None;
        }
    }
    Some(respan(path, code_span))
}

fn respan(path: Path, span: Span) -> Path {
    fn tokens(ts: TokenStream, span: Span) -> TokenStream {
        ts.into_iter()
            .map(|mut tt| {
                if let TokenTree::Group(g) = &tt {
                    let mut group =
                        proc_macro2::Group::new(g.delimiter(), tokens(g.stream(), span));
                    group.set_span(span);
                    tt = TokenTree::Group(group);
                } else {
                    tt.set_span(span);
                }
                tt
            })
            .collect()
    }
    let ts = tokens(quote::ToTokens::into_token_stream(path.clone()), span);
    syn::parse2(ts).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_str(sql: &str) -> Result<Sql, Vec<String>> {
        let lit = LitStr::new(sql, Span::call_site());
        let cx = Ctxt::new();
        let scanned = scan(&lit, &cx);
        match (scanned, cx.check()) {
            (Some(sql), Ok(())) => Ok(sql),
            (_, Err(errors)) => Err(errors.into_iter().map(|e| e.to_string()).collect()),
            (None, Ok(())) => panic!("scan failed without an error"),
        }
    }

    fn path(p: &Path) -> String {
        quote::quote!(#p).to_string().replace(' ', "")
    }

    #[test]
    fn placeholders_are_replaced_by_identifiers_of_the_same_length() {
        let sql = "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.paid} = $1 AND '{' <> '}'";
        let scanned = scan_str(sql).unwrap();
        assert_eq!(scanned.dummy.len(), sql.len());
        assert_eq!(
            scanned.dummy,
            "SELECT _0_________ FROM _1_______ WHERE _2____________ = $1 AND '{' <> '}'"
        );
        let texts: Vec<&str> = scanned
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Text(t) => Some(t.as_str()),
                Segment::Placeholder(_) => None,
            })
            .collect();
        assert_eq!(
            texts,
            ["SELECT ", " FROM ", " WHERE ", " = $1 AND '{' <> '}'"]
        );
        assert!(matches!(
            scanned.placeholders[0].target,
            Target::Star {
                qualifier: None,
                ..
            }
        ));
        assert!(matches!(
            scanned.placeholders[1].target,
            Target::Table { alias: None, .. }
        ));
        match &scanned.placeholders[2].target {
            Target::Column {
                model,
                qualifier: None,
                column,
            } => {
                assert_eq!(path(model), "Invoice");
                assert_eq!(column, "paid");
            }
            _ => panic!("expected a column"),
        }
        assert_eq!(dummy_index("_2____________"), Some(2));

        // Doubled braces in SQL text are one brace each (the dummy keeps the length).
        let scanned = scan_str("SELECT {{ {Invoice.id} }}").unwrap();
        assert_eq!(scanned.dummy, "SELECT {  _0__________ } ");
        assert_eq!(dummy_index("_"), None);
        assert_eq!(dummy_index("_x1"), None);
    }

    #[test]
    fn aliases_resolve_to_their_model_wherever_they_are_declared() {
        let scanned =
            scan_str("SELECT {i.*}, {p.code} FROM {models::Invoice AS i} JOIN {Plan as p} ON true")
                .unwrap();
        match &scanned.placeholders[0].target {
            Target::Star {
                model,
                qualifier: Some(q),
            } => assert_eq!((path(model).as_str(), q.as_str()), ("models::Invoice", "i")),
            _ => panic!("expected an aliased star"),
        }
        match &scanned.placeholders[1].target {
            Target::Column {
                model,
                qualifier: Some(q),
                column,
            } => assert_eq!(
                (path(model).as_str(), q.as_str(), column.as_str()),
                ("Plan", "p", "code")
            ),
            _ => panic!("expected an aliased column"),
        }
        assert!(matches!(
            &scanned.placeholders[3].target,
            Target::Table { alias: Some(a), .. } if a == "p"
        ));
    }

    #[test]
    fn braces_in_literals_identifiers_comments_and_their_dollar_bodies_are_data() {
        let sql = "SELECT '{1,2}'::int[], E'\\'{x}', \"{y}\", $$ '{z}' $$ /* {w} */ FROM {Invoice} -- {v}";
        let scanned = scan_str(sql).unwrap();
        assert_eq!(scanned.placeholders.len(), 1);
        let texts: Vec<&str> = scanned
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Text(t) => Some(t.as_str()),
                Segment::Placeholder(_) => None,
            })
            .collect();
        assert_eq!(
            texts,
            [
                "SELECT '{1,2}'::int[], E'\\'{x}', \"{y}\", $$ '{z}' $$ /* {w} */ FROM ",
                " -- {v}"
            ]
        );
    }

    #[test]
    fn bad_placeholders_are_reported() {
        for (sql, needle) in [
            ("SELECT {Invoice.id FROM {Invoice}", "unmatched `{`"),
            ("SELECT {Invoice.id", "unmatched `{`"),
            ("SELECT 1 }", "unmatched `}`"),
            (
                "SELECT 1 } FROM {Invoice}",
                "unmatched `}` at byte 9 of the SQL",
            ),
            ("SELECT $$ {x} $$", "is not a placeholder"),
            ("SELECT {} FROM t", "empty placeholder"),
            ("SELECT 1 FROM {schema}.t", "no placeholder for a schema"),
            ("SELECT 1 FROM {tenant schema}.t", "is not a placeholder"),
            ("SELECT {Invoice.paid at} FROM t", "is not a placeholder"),
            ("SELECT {Invoice.1x} FROM t", "is not a column name"),
            ("SELECT {Invoice._} FROM t", "is not a column name"),
            ("SELECT 1 FROM {Self}", "instead of `Self`"),
            (
                "SELECT {Invoice.id AS x} FROM t",
                "only a table can be aliased",
            ),
            (
                "SELECT 1 FROM {i}, {Invoice AS i}",
                "is an alias, not a table",
            ),
            ("SELECT 1 FROM {A AS x}, {B AS x}", "declared twice"),
            ("SELECT 1 FROM {A AS Bad}", "invalid alias"),
        ] {
            let errors = scan_str(sql)
                .err()
                .unwrap_or_else(|| panic!("{sql} scanned"));
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{sql}: expected {needle:?} in {errors:?}"
            );
        }
    }
}
