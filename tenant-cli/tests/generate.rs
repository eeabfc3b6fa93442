//! The stock `tenant` binary and `migrate generate`: it has no models, so it refuses (exit 2)
//! and says how to build a binary that has them; its `check` compares with the migrations.
//!
//! A binary built with models is tested end to end in `tests/tests/cli_generate.rs`.

use tenant_tests::{Cli, Run};

/// Runs the stock `tenant <args>`; `url`: DATABASE_URL, unset when `None`.
fn tenant(url: Option<&str>, args: &[&str]) -> Run {
    let mut cli = Cli::new(env!("CARGO_BIN_EXE_tenant"));
    if let Some(url) = url {
        cli = cli.env("DATABASE_URL", url);
    }
    cli.run(args)
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
        let run = tenant(
            url,
            &["migrate", "generate", "add_x", "--migrations", &migrations],
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        for needle in [
            "error: this `tenant` binary does not know the application's models",
            "src/bin/tenant.rs",
            "tenant_cli::App::new().with_models(models()).main()",
            "cargo run --bin tenant -- migrate generate NAME",
            "README section \"The migration workflow",
        ] {
            assert!(run.stderr.contains(needle), "{needle}: {run:?}");
        }
    }
    assert!(!dir.exists(), "nothing is created");
    // An invalid name is refused by the argument parser first.
    let run = tenant(None, &["migrate", "generate", "Add-X"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("invalid value 'Add-X' for '<NAME>'"),
        "{run:?}"
    );
}

#[test]
fn the_stock_binary_s_help_says_check_compares_with_the_migrations() {
    let run = tenant(None, &["--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("Check every active tenant's schema against what the migrations build"),
        "{run:?}"
    );
    let run = tenant(None, &["migrate", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("generate") && run.stdout.contains("Write the next migration file"),
        "{run:?}"
    );
}
