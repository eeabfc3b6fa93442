//! Compile-time checks of `embed_migrations!`: one case per file in `ui/migrations/`, each
//! reading a fixture directory in `ui/migrations/fixtures/`, with the expected diagnostic in
//! the committed `.stderr`.
//!
//! trybuild compiles the cases in a project of its own under the target directory, and the
//! macro resolves directories against that project's `Cargo.toml`; so the fixtures are copied
//! next to it first (`migration-fixtures/`), wherever the target directory is.

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

fn install_fixtures() {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`; trybuild's project is
    // `<target dir>/tests/trybuild/<package name>`.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let project = target_dir
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    let to = project.join("migration-fixtures");
    let _ = std::fs::remove_dir_all(&to);
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui/migrations/fixtures");
    copy_dir(&from, &to);
}

#[test]
fn migration_files_are_checked_while_compiling() {
    install_fixtures();
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/migrations/*.rs");
    cases.pass("ui/migrations/pass/*.rs");
}
