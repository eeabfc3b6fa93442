//! The rules a `tenant` migration file must satisfy, in one place.
//!
//! Both `tenant_macros::embed_migrations!` (at compile time) and
//! `tenant_runtime::Migrations::from_dir` (at run time, feature `migrations-dir`) check
//! migration files through this crate, so a file that compiles into an application also
//! loads into the CLI, and the other way round. It has no dependency on the runtime.
//!
//! A migration directory holds files named `<version>_<name>.sql`:
//! - `version`: decimal digits, not zero, the same width in every file (`0001`, `0002`, ...)
//!   so that the order of the files is the order they apply in; versions are unique;
//! - `name`: `[a-z0-9_]+`;
//! - the SQL: one or more PostgreSQL statements, with schema placeholders `{tenant}` (the
//!   tenant's schema) and `{slot}` for each declared named slot (`{shared}`). Placeholders are
//!   recognised in SQL text and in dollar-quoted bodies, never in string literals, quoted
//!   identifiers or comments; `{{` and `}}` in SQL text are literal braces (the rule of
//!   [`lex`], shared with the query macros). With the placeholders replaced by identifiers the file must
//!   parse (sqlparser, PostgreSQL dialect), and it may not control the transaction it runs
//!   in (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `VACUUM`, `CREATE INDEX CONCURRENTLY`).
//!   A file with a line `-- tenant:unchecked` skips the parser (for SQL sqlparser does not
//!   know yet); its placeholders are still checked.
//! - the statements: a file may hold several; they are split at each `;` outside string
//!   literals, quoted identifiers, dollar quotes, comments, parentheses and SQL-standard
//!   routine bodies (psql's rule, [`statement_ranges`]), and each one is sent as a query string
//!   of its own, in order, inside the migration's transaction (Citus refuses a query string
//!   that holds a `CREATE INDEX` next to another statement). For a checked file the split
//!   must find as many statements as the parser does.
//!
//! - the down section: optional, after a line `-- down` ([`DOWN_MARKER`]); checked like the
//!   rest; the checksum covers the up SQL only.
//!
//! Hidden files (`.gitkeep`) and directories are ignored; any other file is an error. Every
//! problem of every file is reported, not only the first.
//!
//! The crate also holds the rules the macros share with the runtime, one copy each: the
//! identifier rule ([`identifier_problem`], [`schema_problem`], [`slot_name_problem`]), the
//! placeholder lexer ([`lex`]) and the types an identity column may have
//! ([`IDENTITY_TYPES`]).
//!
//! ```
//! use tenant_sql::{check_file, Part, SlotRef};
//!
//! let m = check_file("0001_create_notes.sql", "CREATE TABLE {tenant}.notes (id int);", &[])
//!     .map_err(|e| e[0].to_string())?;
//! assert_eq!((m.version, m.name.as_str()), (1, "create_notes"));
//! assert_eq!(m.parts[1], Part::Slot(SlotRef::Tenant));
//! assert_eq!(m.checksum.len(), 64);
//!
//! let errors = check_file("0002_bad.sql", "SELECT * FROM {tenat}.t", &[]).unwrap_err();
//! assert!(errors[0].to_string().contains("unknown placeholder {tenat}"));
//! # Ok::<(), String>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod lexer;
mod name;
mod placeholders;
mod split;
#[cfg(feature = "migrations")]
mod statements;
mod types;

use std::fmt;
#[cfg(feature = "migrations")]
use std::path::Path;

#[cfg(feature = "migrations")]
use sha2::{Digest, Sha256};

pub use lexer::{lex, LexError, Lexed, Lexeme};
pub use name::{
    check_identifier, check_schema_name, identifier_problem, parse_file_name, schema_problem,
    slot_name_problem, NameProblem, MAX_IDENTIFIER_LEN,
};
pub use placeholders::split_placeholders;
pub use split::statement_ranges;
pub use types::{is_identity_type, IDENTITY_TYPES};

/// The placeholder that stands for the tenant's schema.
pub const TENANT_PLACEHOLDER: &str = "tenant";

/// The marker line that skips the SQL parser for one file.
pub const UNCHECKED_MARKER: &str = "-- tenant:unchecked";

/// The line that starts a migration's optional down section: what undoes it, run by
/// `migrate --to` a version below it. On a line of its own; the rest of the file is the down
/// SQL, checked like the up SQL. The checksum covers only the up SQL above it, so a down
/// section can be added to a migration that is applied already.
pub const DOWN_MARKER: &str = "-- down";

/// A schema placeholder in a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRef {
    /// `{tenant}`: the schema of the tenant being migrated.
    Tenant,
    /// `{name}`: a declared named slot.
    Named(String),
}

/// A piece of a checked migration: SQL text, or a schema placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// SQL text, written as is.
    Sql(String),
    /// A schema placeholder, filled (quoted) when the migration runs.
    Slot(SlotRef),
}

/// A migration file that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMigration {
    /// The version from the file name (`0003_x.sql` → 3).
    pub version: u64,
    /// The name from the file name (`0003_add_paid.sql` → `add_paid`).
    pub name: String,
    /// The file name.
    pub file_name: String,
    /// The SQL, split at placeholders.
    pub parts: Vec<Part>,
    /// The statements of the file, in order, each split at placeholders (see
    /// [`statement_ranges`]): what runs, one query string each.
    pub statements: Vec<Vec<Part>>,
    /// Lowercase hex SHA-256 of the file content (line endings normalised to `\n`).
    pub checksum: String,
    /// Digits in the version prefix (used to check that every file uses the same width).
    pub version_width: usize,
    /// The statements of the down section (after a line [`DOWN_MARKER`]), if the file has
    /// one.
    pub down: Option<Vec<Vec<Part>>>,
}

/// What is wrong with one migration file (or with the set of files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file the problem is in.
    pub file: String,
    /// 1-based line and column, when the problem has a position.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for FileError {}

#[cfg(feature = "migrations")]
/// Checks one migration file: its name, its placeholders (against `slots`, the declared
/// named slots), its SQL, and computes its checksum. Every problem found is returned.
///
/// ```
/// let m = tenant_sql::check_file(
///     "0002_plan.sql",
///     "ALTER TABLE {tenant}.invoices ADD COLUMN plan text REFERENCES {shared}.plans (code);",
///     &["shared"],
/// ).map_err(|e| e[0].to_string())?;
/// assert_eq!(m.parts.len(), 5);
///
/// // Every problem of a file, in one go: here an unknown placeholder and a syntax error.
/// let errors = tenant_sql::check_file("0003_notes.sql", "CREATE TABLE {tenat}.notes (id int,,)", &[])
///     .unwrap_err();
/// assert!(errors[0].message.contains("unknown placeholder {tenat}"));
/// assert!(errors[1].message.contains("does not parse"));
///
/// // An optional down section, checked the same way, positions counted in the file.
/// let up = "CREATE TABLE {tenant}.tags (id int);\n";
/// let m = tenant_sql::check_file("0004_tags.sql", &format!("{up}-- down\nDROP TABLE {{tenant}}.tags;\n"), &[])
///     .map_err(|e| e[0].to_string())?;
/// assert_eq!(m.down.as_ref().map(Vec::len), Some(1));
/// assert_eq!(m.checksum, tenant_sql::checksum(up)); // the up SQL only
/// let errors = tenant_sql::check_file("0005_x.sql", "SELECT 1;\n-- down\nDROP TABLE {tenat}.x;", &[])
///     .unwrap_err();
/// assert!(errors[0].to_string().starts_with("0005_x.sql:3:12: down section: unknown placeholder {tenat}"), "{}", errors[0]);
/// # Ok::<(), String>(())
/// ```
pub fn check_file(
    file_name: &str,
    content: &str,
    slots: &[&str],
) -> Result<CheckedMigration, Vec<FileError>> {
    let mut errors = Vec::new();
    let error = |position, message: String| FileError {
        file: file_name.to_owned(),
        position,
        message,
    };
    let parsed_name = parse_file_name(file_name).map_err(|m| error(None, m));
    if !file_name.ends_with(".sql") {
        // Not meant as a migration at all (notes.txt): its content is not SQL to check.
        return Err(vec![parsed_name.expect_err("no .sql suffix")]);
    }
    let (version, name, version_width) = match parsed_name {
        Ok(n) => n,
        Err(e) => {
            errors.push(e);
            (0, String::new(), 0)
        }
    };
    // The up SQL is what is above a `-- down` line; the down SQL is checked with the up part
    // blanked (newlines kept), so positions stay the file's.
    let marker = down_marker_at(content);
    let up = &content[..marker.map_or(content.len(), |(start, _)| start)];
    let (parts, statements) = check_section(up, slots, "", &mut errors, &error);
    let down = marker.map(|(_, end)| {
        let blanked: String = content[..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .chain(content[end..].chars())
            .collect();
        check_section(&blanked, slots, "down section: ", &mut errors, &error).1
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CheckedMigration {
        version,
        name,
        file_name: file_name.to_owned(),
        parts,
        statements,
        checksum: checksum(up),
        version_width,
        down,
    })
}

#[cfg(feature = "migrations")]
/// Where the line [`DOWN_MARKER`] is: the byte offset of its start and of its end.
fn down_marker_at(content: &str) -> Option<(usize, usize)> {
    let mut start = 0;
    for line in content.split_inclusive('\n') {
        if line.trim() == DOWN_MARKER {
            return Some((start, start + line.len()));
        }
        start += line.len();
    }
    None
}

#[cfg(feature = "migrations")]
/// Checks one section (the up SQL, or the down SQL with the up part blanked): placeholders,
/// the parser, the split into statements. Returns the section split at placeholders and
/// its statements; problems go to `errors`, their messages prefixed with `what`.
fn check_section(
    content: &str,
    slots: &[&str],
    what: &str,
    errors: &mut Vec<FileError>,
    error: &dyn Fn(Option<(usize, usize)>, String) -> FileError,
) -> (Vec<Part>, Vec<Vec<Part>>) {
    let before = errors.len();
    let mut push =
        |position, message: String| errors.push(error(position, format!("{what}{message}")));
    // Placeholder problems do not stop the parser: the split stands an identifier in for
    // each bad placeholder, so one build reports every problem of the file.
    let split = placeholders::split(content, slots);
    for (offset, m) in split.errors {
        push(Some(line_column(content, offset)), m);
    }
    let unchecked = content.lines().any(|l| l.trim() == UNCHECKED_MARKER);
    let (problems, parsed) = statements::check(&split.dummy, unchecked);
    for problem in problems {
        push(problem.position, problem.message);
    }
    // Each statement is sent on its own (Citus refuses several in one query string), so the
    // file is split at each `;` outside literals, quoted names, dollar quotes and comments.
    let ranges = statement_ranges(content);
    let clean = |errors: &Vec<FileError>| errors.len() == before;
    if clean(errors) {
        if let Some(parsed) = parsed.filter(|&n| n != ranges.len()) {
            errors.push(error(
                None,
                format!(
                    "{what}the SQL parser finds {parsed} statement(s) but splitting at `;` finds {}; each statement is sent on its own, so the two must agree: report this, and meanwhile add a line `{UNCHECKED_MARKER}`",
                    ranges.len()
                ),
            ));
        }
    }
    if clean(errors) && ranges.is_empty() {
        errors.push(error(
            None,
            format!("{what}the file has no SQL statement; a migration needs at least one"),
        ));
    }
    let mut statements = Vec::new();
    if clean(errors) {
        for range in ranges {
            match split_placeholders(&content[range.clone()], slots) {
                Ok((parts, _)) => statements.push(parts),
                Err(problems) => errors.extend(problems.into_iter().map(|(offset, m)| {
                    error(
                        Some(line_column(content, range.start + offset)),
                        format!("{what}{m}"),
                    )
                })),
            }
        }
    }
    (split.parts, statements)
}

/// Checks a set of migrations together: versions unique, version prefixes of one width (so
/// files sort in the order they apply). Sorts them by version.
///
/// ```
/// let a = tenant_sql::check_file("0001_a.sql", "SELECT 1", &[]).unwrap();
/// let b = tenant_sql::check_file("0001_b.sql", "SELECT 2", &[]).unwrap();
/// let errors = tenant_sql::check_set(&mut vec![a, b]).unwrap_err();
/// assert!(errors[0].message.contains("version 1 is used by 0001_a.sql and 0001_b.sql"));
/// ```
pub fn check_set(migrations: &mut [CheckedMigration]) -> Result<(), Vec<FileError>> {
    migrations.sort_by(|a, b| (a.version, &a.file_name).cmp(&(b.version, &b.file_name)));
    let mut errors = Vec::new();
    for pair in migrations.windows(2) {
        if pair[0].version == pair[1].version {
            errors.push(FileError {
                file: pair[1].file_name.clone(),
                position: None,
                message: format!(
                    "version {} is used by {} and {}; give each migration its own version",
                    pair[1].version, pair[0].file_name, pair[1].file_name
                ),
            });
        }
    }
    if let Some(first) = migrations.first() {
        for m in migrations.iter().skip(1) {
            if m.version_width != first.version_width {
                errors.push(FileError {
                    file: m.file_name.clone(),
                    position: None,
                    message: format!(
                        "its version has {} digits but {} has {}; pad every version to the same width so the files sort in the order they apply",
                        m.version_width, first.file_name, first.version_width
                    ),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks that every declared named slot is a valid slot name (see [`slot_name_problem`]:
/// not `tenant`) and declared once. Returns the first problem.
///
/// ```
/// assert!(tenant_sql::check_slots(&["shared"]).is_ok());
/// assert!(tenant_sql::check_slots(&["tenant"]).is_err());
/// assert!(tenant_sql::check_slots(&["Shared"]).is_err());
/// assert!(tenant_sql::check_slots(&["a", "a"]).is_err());
/// ```
pub fn check_slots(slots: &[&str]) -> Result<(), String> {
    for i in 0..slots.len() {
        if let Some(problem) = slot_problem(slots, i) {
            return Err(problem);
        }
    }
    Ok(())
}

/// What is wrong with `slots[index]` as a declared named slot (its name, or a second
/// declaration), as a message that names it.
///
/// ```
/// assert_eq!(tenant_sql::slot_problem(&["shared"], 0), None);
/// assert!(tenant_sql::slot_problem(&["a", "a"], 1).unwrap().contains("declared twice"));
/// ```
pub fn slot_problem(slots: &[&str], index: usize) -> Option<String> {
    let slot = slots[index];
    if let Some(problem) = slot_name_problem(slot) {
        return Some(format!("invalid slot name {slot:?}: {problem}"));
    }
    slots[..index]
        .contains(&slot)
        .then(|| format!("slot {slot:?} is declared twice; declare each named slot once"))
}

#[cfg(feature = "migrations")]
/// Reads and checks every migration file of `dir` (see the crate docs for the rules) and
/// the set they form, sorted by version. Every problem in every file is returned.
///
/// ```no_run
/// let migrations = tenant_sql::check_dir("migrations".as_ref(), &["shared"])
///     .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
/// # Ok::<(), String>(())
/// ```
pub fn check_dir(dir: &Path, slots: &[&str]) -> Result<Vec<CheckedMigration>, Vec<FileError>> {
    let dir_error = |message: String| {
        vec![FileError {
            file: dir.display().to_string(),
            position: None,
            message,
        }]
    };
    check_slots(slots).map_err(dir_error)?;
    let entries = std::fs::read_dir(dir).map_err(|e| {
        dir_error(format!(
            "cannot read the migrations directory: {e}; check the path (it is relative to the crate's Cargo.toml for the macro)"
        ))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| dir_error(format!("cannot list the directory: {e}")))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') || entry.path().is_dir() {
            continue;
        }
        files.push((file_name, entry.path()));
    }
    files.sort();
    let mut checked = Vec::new();
    let mut errors = Vec::new();
    for (file_name, path) in files {
        match std::fs::read_to_string(&path) {
            Ok(content) => match check_file(&file_name, &content, slots) {
                Ok(m) => checked.push(m),
                Err(e) => errors.extend(e),
            },
            Err(e) => errors.push(FileError {
                file: file_name,
                position: None,
                message: format!("cannot read it as UTF-8 text: {e}"),
            }),
        }
    }
    if let Err(e) = check_set(&mut checked) {
        errors.extend(e);
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

#[cfg(feature = "migrations")]
/// Lowercase hex SHA-256 of `content` with `\r\n` read as `\n` (so a checkout with other line
/// endings is not a changed migration).
///
/// ```
/// assert_eq!(tenant_sql::checksum("SELECT 1;\n"), tenant_sql::checksum("SELECT 1;\r\n"));
/// assert_ne!(tenant_sql::checksum("SELECT 1;"), tenant_sql::checksum("SELECT 2;"));
/// ```
pub fn checksum(content: &str) -> String {
    let mut hasher = Sha256::new();
    let mut rest = content;
    while let Some(i) = rest.find("\r\n") {
        hasher.update(&rest.as_bytes()[..i]);
        hasher.update(b"\n");
        rest = &rest[i + 2..];
    }
    hasher.update(rest.as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        use fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
