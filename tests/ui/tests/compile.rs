//! Compile-time tests: each file in `cases/<area>/` is a program with one mistake (or, in
//! `cases/migrations/pass/`, none), and the committed `.stderr` next to it is the diagnostic
//! the mistake must get. The areas:
//!
//! - `derive/`: `#[derive(Model)]` and `#[derive(SqlEnum)]` attribute mistakes;
//! - `door/`: a schema only reaches a statement through an allowlisted `Tenant`;
//! - `query/`: `query!` / `query_as!` mistakes, pointed at in the SQL text;
//! - `routing/`: writes and transactions cannot reach a replica;
//! - `migrations/`: `embed_migrations!` checks each migration file while compiling, reading
//!   the fixture directories in `cases/migrations/fixtures/`.
//!
//! All areas run as one trybuild batch (one build of the cases' dependencies, one `cargo`
//! run for the failing cases). `TRYBUILD=overwrite cargo test -p tenant-ui-tests` rewrites the
//! `.stderr` files after a deliberate change of a message; review the diff.
//!
//! trybuild compiles the cases in a project of its own under the target directory, and
//! `embed_migrations!` resolves directories against that project's `Cargo.toml`; so the
//! fixtures are copied next to it first (`migration-fixtures/`), wherever the target
//! directory is.

use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn install_migration_fixtures() {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`; trybuild's project is
    // `<target dir>/tests/trybuild/<package name>`.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let project = target_dir
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    let to = project.join("migration-fixtures");
    let _ = std::fs::remove_dir_all(&to);
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases/migrations/fixtures");
    copy_dir(&from, &to);
}

#[test]
fn mistakes_are_compile_errors_that_point_at_the_mistake() {
    install_migration_fixtures();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("cases/derive/*.rs");
    cases.compile_fail("cases/door/*.rs");
    cases.compile_fail("cases/query/*.rs");
    cases.compile_fail("cases/routing/*.rs");
    cases.compile_fail("cases/migrations/*.rs");
    cases.pass("cases/migrations/pass/*.rs");
}
