//! A per-tenant invoice service on a pool: the tenant comes from the `X-Tenant` header.
//!
//! ```sh
//! cargo run -p tenant-runtime --features axum --example web_service
//! curl -i -H 'X-Tenant: acme' -H 'content-type: application/json' \
//!      -d '{"amount_cents": 1200, "note": "first"}' http://127.0.0.1:3000/invoices
//! curl -i -H 'X-Tenant: acme' http://127.0.0.1:3000/invoices     # acme's only
//! curl -i -H 'X-Tenant: globex' http://127.0.0.1:3000/invoices   # globex's only
//! curl -i -H 'X-Tenant: initech' http://127.0.0.1:3000/invoices  # 404
//! ```
//! Uses `$DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`; listens on
//! `$ADDR`, else `127.0.0.1:3000`. Logs (with the tenant of every statement) at `debug`.

#[path = "web/app.rs"]
mod app;

use tenant_runtime::web::TenantResolver;
use tenant_runtime::{Allowlist, SchemaMap, TenantPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .init();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());

    // The one door: request keys resolve to tenants only through the allowlist.
    let allowlist = Allowlist::from_pairs([("acme", "web_acme"), ("globex", "web_globex")])?;
    let pool = TenantPool::builder(&url)?
        .max_size(8)
        .schema_map(SchemaMap::new().with("shared", "public")?)
        .build()?;
    app::provision(&pool, &allowlist).await?;

    let state = app::AppState {
        pool,
        tenants: TenantResolver::header(allowlist, "x-tenant"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(state)).await?;
    Ok(())
}
