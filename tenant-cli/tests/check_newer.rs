//! `tenant check` on a tenant that a newer build migrated: the versions this build does not
//! know are printed (text and JSON) and make the run exit 1.

use std::process::Command;

use tenant_tests::{database_url, TestSchemas};

/// Migrations that build customers and invoices (shared with the library's drift tests).
const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/migrations/drift");

/// Runs `tenant <args>` with the test database and `registry`; returns (exit code, stdout).
fn tenant(url: &str, registry: &str, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TENANT_REGISTRY", registry)
        .env("TENANT_MIGRATIONS", MIGRATIONS)
        .output()
        .expect("the tenant binary runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let code = output.status.code().expect("exited, not killed");
    (
        code,
        format!(
            "{stdout}{}",
            if stderr.is_empty() {
                String::new()
            } else {
                format!("\n[stderr]\n{stderr}")
            }
        ),
    )
}

#[tokio::test]
async fn check_reports_versions_applied_by_a_newer_build() {
    let schemas = TestSchemas::new("cli_check_newer").await;
    let url = database_url().await;
    let registry = schemas.name("registry");
    for key in ["acme", "globex"] {
        let (code, out) = tenant(
            &url,
            &registry,
            &["tenants", "create", key, &schemas.name(key)],
        );
        assert_eq!(code, 0, "{out}");
    }
    tenant_tests::connect_to(&url)
        .await
        .batch_execute(&format!(
            "INSERT INTO \"{}\"._tenant_migrations (version, name, checksum) \
             VALUES (7, 'from_the_future', 'x'), (8, 'further', 'y')",
            schemas.name("globex")
        ))
        .await
        .unwrap();

    let (code, out) = tenant(&url, &registry, &["check", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["summary"]["ahead"], 1, "{json}");
    assert_eq!(json["summary"]["clean"], 1, "{json}");
    for t in json["tenants"].as_array().unwrap() {
        let unknown = if t["key"] == "globex" {
            serde_json::json!([7, 8])
        } else {
            serde_json::json!([])
        };
        assert_eq!(t["unknown_applied"], unknown, "{t}");
    }

    let (code, out) = tenant(&url, &registry, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "globex ({}): version 8, applied by a newer build: 7, 8",
            schemas.name("globex")
        )),
        "{out}"
    );
    assert!(!out.contains("acme ("), "{out}");
    assert!(out.contains("1 ahead"), "{out}");
    schemas.cleanup().await;
}
