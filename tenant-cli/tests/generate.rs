//! The stock `tenant` binary and `migrate generate`: it has no models, so it refuses (exit 2)
//! and says how to build a binary that has them; its `check` compares with the migrations.
//!
//! A binary built with models is tested end to end in `tests/tests/cli_generate.rs`.

use std::process::Command;

/// Runs the stock `tenant <args>`; `url`: DATABASE_URL, unset when `None`.
fn tenant(url: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenant"));
    command.args(args).env_remove("TENANT_MIGRATIONS");
    match url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command.output().expect("the tenant binary runs");
    (
        output.status.code().expect("exited, not killed"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_stock_binary_refuses_to_generate_and_says_how_to_build_one_with_models() {
    let url = tenant_tests::database_url().await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stock-generate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let migrations = dir.display().to_string();
    // With and without a database URL: the models are missing either way.
    for url in [Some(url.as_str()), None] {
        let (code, stdout, stderr) = tenant(
            url,
            &["migrate", "generate", "add_x", "--migrations", &migrations],
        );
        assert_eq!(code, 2, "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        for needle in [
            "error: this `tenant` binary does not know the application's models",
            "src/bin/tenant.rs",
            "tenant_cli::App::new().with_models(models()).main()",
            "cargo run --bin tenant -- migrate generate NAME",
            "README section \"The migration workflow",
        ] {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
    }
    assert!(!dir.exists(), "nothing is created");
    // An invalid name is refused by the argument parser first.
    let (code, _, stderr) = tenant(None, &["migrate", "generate", "Add-X"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("invalid value 'Add-X' for '<NAME>'"),
        "{stderr}"
    );
}

#[test]
fn the_stock_binary_s_help_says_check_compares_with_the_migrations() {
    let (code, stdout, _) = tenant(None, &["--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Check every active tenant's schema against what the migrations build"),
        "{stdout}"
    );
    let (code, stdout, _) = tenant(None, &["migrate", "--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("generate") && stdout.contains("Write the next migration file"),
        "{stdout}"
    );
}
