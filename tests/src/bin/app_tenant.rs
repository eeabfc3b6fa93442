//! An application's own `tenant` binary, built as the README's migration workflow says: the
//! CLI with the application's models. The end-to-end tests of `migrate generate` and of
//! `check` against the models (`tests/cli_generate.rs`) run it as a child process.
//!
//! Its models are the next release of the drift tests' two (which `tests/migrations/drift`
//! builds): `invoices.note` renamed to `memo` (a choice: renamed, or dropped and added?) and
//! a new table `payments`.

use std::process::ExitCode;

use tenant_runtime::{Model, ModelSet};

// `Invoice` is the release before: this one changes it (below).
#[allow(dead_code)]
#[path = "../../tests/support/drift_models.rs"]
mod drift_models;
use drift_models::Customer;

/// `invoices`, changed: `note` is now `memo`.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
pub struct Invoice {
    #[tenant(primary_key, identity)]
    pub id: i64,
    #[tenant(references = Customer)]
    pub customer_id: i64,
    #[tenant(index)]
    pub amount_cents: i64,
    #[tenant(default = "false")]
    pub paid: bool,
    pub memo: Option<String>,
}

/// New in this release.
#[derive(Debug, Model)]
#[tenant(table = "payments")]
pub struct Payment {
    #[tenant(primary_key, identity)]
    pub id: i64,
    #[tenant(references = Invoice)]
    pub invoice_id: i64,
    pub cents: i64,
}

fn main() -> ExitCode {
    tenant_cli::App::new()
        .with_models(
            ModelSet::new()
                .with::<Customer>()
                .with::<Invoice>()
                .with::<Payment>(),
        )
        .main()
}
