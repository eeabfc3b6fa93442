//! The two models the drift tests start from (`tests/migrations/drift` builds exactly these),
//! shared by `drift_check.rs` and `drift_generate.rs`.

use tenant_runtime::Model;

#[derive(Debug, Model)]
#[tenant(table = "customers")]
pub struct Customer {
    #[tenant(primary_key, identity)]
    pub id: i64,
    #[tenant(unique)]
    pub email: String,
    pub name: String,
}

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
    pub note: Option<String>,
}
