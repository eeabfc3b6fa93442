//! An application crate whose only path to tenant is `reexport_invoicing::tenant`: its own
//! model, checked queries and migrations all name the runtime with `crate = ...`.

use reexport_invoicing::tenant;
pub use reexport_invoicing::{Customer, Invoice};

/// The application's own model, derived through the re-export.
#[derive(Debug, Clone, PartialEq, tenant::Model)]
#[tenant(table = "notes", crate = reexport_invoicing::tenant)]
pub struct Note {
    /// Identity key.
    #[tenant(primary_key, identity)]
    pub id: i64,
    /// The invoice the note is about.
    #[tenant(references = Invoice)]
    pub invoice_id: i64,
    /// Free text.
    pub body: String,
}

/// The application's migrations (after the library's), embedded through the re-export.
pub static MIGRATIONS: tenant::Migrations =
    tenant::embed_migrations!("migrations", crate = reexport_invoicing::tenant);

/// Unpaid invoices of one customer, with a checked `query_as!`.
pub async fn unpaid_of<E: tenant::Executor>(
    db: &tenant::Db<E>,
    customer_id: i64,
) -> tenant::Result<Vec<Invoice>> {
    tenant::query_as!(
        crate = reexport_invoicing::tenant,
        Invoice,
        "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.customer_id} = $1 AND NOT {Invoice.paid} \
         ORDER BY {Invoice.id}",
        customer_id
    )
    .fetch_all(db)
    .await
}

/// Total of a customer's invoices, with a checked `query_scalar!`.
pub async fn total_of<E: tenant::Executor>(
    db: &tenant::Db<E>,
    customer_id: i64,
) -> tenant::Result<i64> {
    tenant::query_scalar!(
        crate = reexport_invoicing::tenant,
        "SELECT coalesce(sum({Invoice.amount_cents}), 0)::bigint FROM {Invoice} \
         WHERE {Invoice.customer_id} = $1",
        customer_id
    )
    .fetch_one(db)
    .await
}

/// Note count per invoice, with a checked `query!` (rows are `tokio_postgres::Row`s).
pub async fn notes_per_invoice<E: tenant::Executor>(
    db: &tenant::Db<E>,
) -> tenant::Result<Vec<(i64, i64)>> {
    let rows = tenant::query!(
        crate = reexport_invoicing::tenant,
        "SELECT {i.id}, count({n.id}) FROM {Invoice AS i} LEFT JOIN {Note AS n} \
         ON {n.invoice_id} = {i.id} GROUP BY {i.id} ORDER BY {i.id}"
    )
    .fetch_all(db)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
