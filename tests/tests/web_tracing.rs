//! The web service example's spans carry the tenant: the request span (recorded by the
//! extractor) and every statement's span. In a test binary of its own, with a global
//! subscriber: tracing caches per-callsite interest process-wide, so a subscriber scoped to
//! one test thread can miss events while other tests run in parallel.

#[path = "../../tenant-runtime/examples/web/app.rs"]
mod app;

use std::time::Duration;

use app::AppState;
use tenant_runtime::web::TenantResolver;
use tenant_runtime::{Allowlist, TenantPool};
use tenant_tests::{database_url, TestSchemas};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(state: AppState) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, task)
}

/// One HTTP/1.1 request; returns the status code.
async fn request(addr: std::net::SocketAddr, method: &str, tenant: &str, body: &str) -> u16 {
    let raw = format!(
        "{method} /invoices HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\nx-tenant: {tenant}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the server answered");
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Collects the `tenant` field of every span, by span name, whether given at creation or
/// recorded later.
#[derive(Clone, Default)]
struct TenantFields(std::sync::Arc<std::sync::Mutex<Vec<(&'static str, String)>>>);

struct TenantVisitor<'a>(&'a mut Option<String>);

impl tracing::field::Visit for TenantVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "tenant" {
            *self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "tenant" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for TenantFields
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut tenant = None;
        attrs.record(&mut TenantVisitor(&mut tenant));
        if let Some(tenant) = tenant {
            self.0
                .lock()
                .unwrap()
                .push((attrs.metadata().name(), tenant));
        }
    }
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut tenant = None;
        values.record(&mut TenantVisitor(&mut tenant));
        if let (Some(tenant), Some(span)) = (tenant, ctx.span(id)) {
            self.0.lock().unwrap().push((span.name(), tenant));
        }
    }
}

#[tokio::test]
async fn request_and_statement_spans_carry_the_tenant() {
    use tracing_subscriber::layer::SubscriberExt;
    let fields = TenantFields::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(fields.clone()))
        .expect("the only subscriber of this test binary");
    let schemas = TestSchemas::new("web_tracing").await;
    let allowlist = Allowlist::from_pairs([
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
    ])
    .unwrap();
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(2)
        .build()
        .unwrap();
    app::provision(&pool, &allowlist).await.unwrap();
    let (addr, server) = serve(AppState {
        pool: pool.clone(),
        tenants: TenantResolver::header(allowlist, "x-tenant"),
    })
    .await;
    fields.0.lock().unwrap().clear();

    assert_eq!(
        request(addr, "POST", "globex", r#"{"amount_cents": 5}"#).await,
        201
    );
    assert_eq!(request(addr, "GET", "acme", "").await, 200);

    let seen = fields.0.lock().unwrap().clone();
    for (span, tenant) in [
        ("request", "globex"),
        ("tenant_statement", "globex"),
        ("request", "acme"),
        ("tenant_statement", "acme"),
    ] {
        assert!(
            seen.iter().any(|(s, t)| *s == span && t == tenant),
            "no {span} span with tenant {tenant}: {seen:?}"
        );
    }
    assert!(
        seen.iter().all(|(_, t)| t == "globex" || t == "acme"),
        "{seen:?}"
    );

    server.abort();
    drop(pool);
    schemas.cleanup().await;
}
