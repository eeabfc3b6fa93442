//! The library's errors in an operator's words.
//!
//! `tenant_runtime`'s messages speak to a programmer (`Allowlist`, `Provisioner::install`,
//! "this build"); an operator at the `tenant` prompt knows tenants, the registry and the
//! commands. Errors whose library message uses library words are reworded here; the others
//! keep the library's message, which already names the values it refuses escaped (`{:?}`).

use tenant_runtime::error::ArchiveError;
use tenant_runtime::error::{AllowlistError, LifecycleError, MigrateError};
use tenant_runtime::lifecycle::Outcome;
use tenant_runtime::Error;

/// The message the CLI prints for `error`.
pub fn operator_message(error: &Error) -> String {
    match error {
        Error::UnknownTenant { key } => format!(
            "unknown tenant {key:?}: the registry has no active tenant with this key; \
             see `tenant tenants list`, or create it with `tenant tenants create`"
        ),
        Error::Allowlist(AllowlistError::DuplicateTenant { what, value }) => format!(
            "two tenants in the registry have the {what} {value:?}; each tenant needs its own \
             key and its own schema: fix the registry rows"
        ),
        Error::Allowlist(AllowlistError::Full { max }) => format!(
            "the registry has more than {max} active tenants, more than one run of this \
             command can hold; split the registry"
        ),
        Error::Lifecycle(LifecycleError::RegistryNotInstalled { schema }) => format!(
            "the tenant registry {schema:?}.\"tenants\" does not exist; create it with \
             `tenant tenants init`, or name the registry's schema with --registry \
             (or TENANT_REGISTRY)"
        ),
        Error::Lifecycle(LifecycleError::TenantConflict {
            key,
            registered,
            requested,
        }) => format!(
            "tenant {key:?} is registered with schema {registered:?}, not {requested:?}; \
             create it with its registered schema, or drop and purge it first \
             (`tenant tenants drop`, `tenant tenants purge`)"
        ),
        Error::Lifecycle(LifecycleError::TenantRetired { key, renamed_to }) => format!(
            "tenant {key:?} is retired (its schema is renamed to {renamed_to:?}); bring it \
             back with `tenant tenants restore`, or purge it before creating the key again"
        ),
        Error::Migrate(m) => migrate_message(m),
        Error::Archive(a) => archive_message(a),
        other => other.to_string(),
    }
}

fn migrate_message(error: &MigrateError) -> String {
    match error {
        MigrateError::UnknownApplied {
            schema,
            version,
            name,
        } => format!(
            "schema {schema:?} has migration {version} ({name}) applied, which the migrations \
             directory does not contain; point --migrations at a directory that includes it"
        ),
        MigrateError::ChecksumMismatch {
            schema,
            version,
            name,
            applied,
            embedded,
        } => format!(
            "migration {version} ({name}) was applied to schema {schema:?} with checksum \
             {applied}, but its file now has checksum {embedded}; applied migrations must not \
             change: restore the file and put the change in a new migration"
        ),
        MigrateError::Failed {
            tenant,
            schema,
            version,
            name,
            source,
        } => format!(
            "migration {version} ({name}) failed in schema {schema:?} (tenant {tenant:?}); \
             nothing of this run was applied to that tenant: {}",
            operator_message(source)
        ),
        other => other.to_string(),
    }
}

fn archive_message(error: &ArchiveError) -> String {
    match error {
        ArchiveError::SnapshotFailed {
            key,
            schema,
            dir,
            source,
        } => format!(
            "tenant {key:?}: the snapshot of schema {schema:?} could not be written to {:?}, so \
             the schema was not dropped (the tenant stays retired); fix --snapshot-dir (or \
             TENANT_SNAPSHOT_DIR), or purge without a snapshot with --no-snapshot: {}",
            dir.display().to_string(),
            operator_message(source)
        ),
        ArchiveError::UnsupportedFormat { found, supported } => format!(
            "the archive is in format version {found}, and this `tenant` reads version \
             {supported}; import it with a `tenant` that reads version {found}"
        ),
        other => other.to_string(),
    }
}

/// A migration outcome as `tenant migrate` prints it.
pub fn outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed(e) => format!("FAILED: {}", operator_message(e)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenant_runtime::error::Duplicated;

    /// Words an operator of the CLI never met: they belong to the library's API.
    const LIBRARY_WORDS: [&str; 4] = ["allowlist", "Provisioner", "this build", "::"];

    #[test]
    fn reworded_errors_use_no_library_words() {
        let errors = [
            Error::UnknownTenant { key: "acme".into() },
            Error::Allowlist(AllowlistError::DuplicateTenant {
                what: Duplicated::Schema,
                value: "tenant_acme".into(),
            }),
            Error::Allowlist(AllowlistError::Full { max: 3 }),
            Error::Lifecycle(LifecycleError::RegistryNotInstalled {
                schema: "tenant_registry".into(),
            }),
            Error::Lifecycle(LifecycleError::TenantConflict {
                key: "acme".into(),
                registered: "a".into(),
                requested: "b".into(),
            }),
            Error::Lifecycle(LifecycleError::TenantRetired {
                key: "acme".into(),
                renamed_to: "a_deleted_20260421".into(),
            }),
            Error::Migrate(Box::new(MigrateError::UnknownApplied {
                schema: "a".into(),
                version: 4,
                name: "x".into(),
            })),
            Error::Migrate(Box::new(MigrateError::ChecksumMismatch {
                schema: "a".into(),
                version: 1,
                name: "x".into(),
                applied: "1".into(),
                embedded: "2".into(),
            })),
            Error::Migrate(Box::new(MigrateError::Failed {
                tenant: "acme".into(),
                schema: "a".into(),
                version: 1,
                name: "x".into(),
                source: Box::new(Error::Migrate(Box::new(MigrateError::UnknownApplied {
                    schema: "a".into(),
                    version: 4,
                    name: "x".into(),
                }))),
            })),
            Error::from(ArchiveError::SnapshotFailed {
                key: "acme".into(),
                schema: "a_deleted_20260421".into(),
                dir: "/backups".into(),
                source: Box::new(Error::UnknownTenant { key: "acme".into() }),
            }),
            Error::from(ArchiveError::UnsupportedFormat {
                found: 2,
                supported: 1,
            }),
        ];
        for e in &errors {
            let message = operator_message(e);
            for word in LIBRARY_WORDS {
                assert!(
                    !message.to_lowercase().contains(&word.to_lowercase()),
                    "{word:?} in {message:?}"
                );
            }
        }
    }

    #[test]
    fn keys_in_messages_are_escaped() {
        let message = operator_message(&Error::UnknownTenant {
            key: "\x1b[31m\n".into(),
        });
        assert!(message.contains(r#""\u{1b}[31m\n""#), "{message}");
        assert!(!message.contains('\x1b'), "{message}");
    }
}
