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

/// How urgent a follow-up is: a PostgreSQL enum type in each tenant's schema, derived
/// through the re-export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, tenant::SqlEnum)]
#[tenant(type_name = "urgency", crate = reexport_invoicing::tenant)]
pub enum Urgency {
    /// Whenever.
    Low,
    /// Today.
    High,
}

/// A follow-up on an invoice, with an enum column.
#[derive(Debug, Clone, PartialEq, tenant::Model)]
#[tenant(table = "follow_ups", crate = reexport_invoicing::tenant)]
pub struct FollowUp {
    /// Identity key.
    #[tenant(primary_key, identity)]
    pub id: i64,
    /// How urgent.
    pub urgency: Urgency,
}

/// Follow-ups of one urgency, with a checked `query_as!` binding the enum.
pub async fn follow_ups<E: tenant::Executor>(
    db: &tenant::Db<E>,
    urgency: Urgency,
) -> tenant::Result<Vec<FollowUp>> {
    tenant::query_as!(
        crate = reexport_invoicing::tenant,
        FollowUp,
        "SELECT {FollowUp.*} FROM {FollowUp} WHERE {FollowUp.urgency} = $1 ORDER BY {FollowUp.id}",
        urgency
    )
    .fetch_all(db)
    .await
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
