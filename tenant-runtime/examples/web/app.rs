//! The web service's application: state, routes, handlers and provisioning. Used by the
//! `web_service` example and, unchanged, by the HTTP test in `tests/tests/web.rs`.
//!
//! Every route is per tenant: the `TenantDb` extractor resolves the tenant from the request
//! (header or subdomain) through the allowlist and checks a connection out of the pool for
//! it. Unknown tenants get 404 and malformed ones 400 before any SQL runs. Handlers return
//! `tenant_runtime::Error`, which answers with its documented status (a missing invoice 404,
//! a database failure 500 with no internals in the body).

use axum::extract::{FromRef, Path, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tenant_runtime::web::{TenantDb, TenantResolver};
use tenant_runtime::{Allowlist, Model, TenantPool};
use tracing::Instrument;

/// An invoice, in each tenant's own schema.
#[derive(Debug, Clone, PartialEq, Model, Serialize, Deserialize)]
#[tenant(table = "invoices")]
pub struct Invoice {
    #[tenant(primary_key, identity)]
    pub id: i64,
    pub amount_cents: i64,
    #[tenant(default = "false")]
    pub paid: bool,
    pub note: Option<String>,
}

/// The body of `POST /invoices`.
#[derive(Debug, Deserialize)]
pub struct NewInvoice {
    pub amount_cents: i64,
    #[serde(default)]
    pub note: Option<String>,
}

/// What the handlers share: the pool, and how requests name their tenant.
#[derive(Clone)]
pub struct AppState {
    pub pool: TenantPool,
    pub tenants: TenantResolver,
}

impl FromRef<AppState> for TenantPool {
    fn from_ref(state: &AppState) -> TenantPool {
        state.pool.clone()
    }
}

impl FromRef<AppState> for TenantResolver {
    fn from_ref(state: &AppState) -> TenantResolver {
        state.tenants.clone()
    }
}

/// `GET /invoices` lists the tenant's invoices; `POST /invoices` creates one. Each request
/// runs in a span whose `tenant` field the extractor fills in.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/invoices", get(list_invoices).post(create_invoice))
        .route("/invoices/{id}", get(show_invoice))
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        tenant = tracing::field::Empty,
    );
    next.run(request).instrument(span).await
}

/// Creates every tenant's schema and tables (idempotent).
pub async fn provision(
    pool: &TenantPool,
    allowlist: &Allowlist,
) -> Result<(), tenant_runtime::Error> {
    for tenant in allowlist.tenants() {
        let db = pool.get(&tenant).await?;
        db.create_schema().await?;
        Invoice::create_table(&db).await?;
    }
    Ok(())
}

async fn list_invoices(
    TenantDb(db): TenantDb,
) -> Result<Json<Vec<Invoice>>, tenant_runtime::Error> {
    let invoices = Invoice::query()
        .order_by(Invoice::ID.asc())
        .fetch_all(&db)
        .await?;
    tracing::info!(count = invoices.len(), "listed invoices");
    Ok(Json(invoices))
}

async fn create_invoice(
    TenantDb(db): TenantDb,
    Json(new): Json<NewInvoice>,
) -> Result<(StatusCode, Json<Invoice>), tenant_runtime::Error> {
    let invoice = Invoice {
        id: 0,
        amount_cents: new.amount_cents,
        paid: false,
        note: new.note,
    }
    .insert(&db)
    .await?;
    tracing::info!(id = invoice.id, "created invoice");
    Ok((StatusCode::CREATED, Json(invoice)))
}

/// `GET /invoices/{id}`: a missing row is `Error::RowNotFound`, which answers 404.
async fn show_invoice(
    TenantDb(db): TenantDb,
    Path(id): Path<i64>,
) -> Result<Json<Invoice>, tenant_runtime::Error> {
    let invoice = Invoice::query()
        .filter(Invoice::ID.eq(id))
        .fetch_one(&db)
        .await?;
    Ok(Json(invoice))
}
