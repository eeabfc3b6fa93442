//! The web service example's router, served on loopback and driven over real HTTP/1.1:
//! two tenants create and list invoices; an unknown tenant gets 404 and a malformed one 400,
//! before any connection is checked out.

#[path = "../../tenant-runtime/examples/web/app.rs"]
mod app;

use std::time::Duration;

use app::{AppState, Invoice};
use tenant_runtime::web::TenantResolver;
use tenant_runtime::{Allowlist, TenantPool};
use tenant_tests::{database_url, TestSchemas};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Server {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(state: AppState) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server { addr, task }
}

struct Response {
    status: u16,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), raw bytes for the
/// header lines so that malformed values reach the server as they are.
async fn request(server: &Server, method: &str, headers: &[(&str, &[u8])], body: &str) -> Response {
    request_at(server, method, "/invoices", headers, body).await
}

async fn request_at(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &str,
) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n").into_bytes();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.extend_from_slice(format!("host: {}\r\n", server.addr).as_bytes());
    }
    for (name, value) in headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() {
        raw.extend_from_slice(
            format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body.as_bytes());

    let exchange = async {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(&raw).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the server answered");
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "expected a content-length body: {head}"
    );
    Response {
        status,
        body: body.to_owned(),
    }
}

async fn create(server: &Server, tenant: &str, amount: i64, note: &str) -> Invoice {
    let body = format!(r#"{{"amount_cents": {amount}, "note": "{note}"}}"#);
    let r = request(server, "POST", &[("x-tenant", tenant.as_bytes())], &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

async fn list(server: &Server, headers: &[(&str, &[u8])]) -> Vec<Invoice> {
    let r = request(server, "GET", headers, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn fixture(schemas: &TestSchemas) -> Allowlist {
    Allowlist::from_pairs([
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
    ])
    .unwrap()
}

async fn pool() -> TenantPool {
    TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(4)
        .build()
        .unwrap()
}

#[tokio::test]
async fn two_tenants_create_and_list_their_own_invoices_over_http() {
    let schemas = TestSchemas::new("web_invoices").await;
    let allowlist = fixture(&schemas);
    let pool = pool().await;
    // Rejections first, on a pool that has opened no connection yet.
    let server = serve(AppState {
        pool: pool.clone(),
        tenants: TenantResolver::header(allowlist.clone(), "x-tenant"),
    })
    .await;

    let unknown = request(&server, "GET", &[("x-tenant", b"initech")], "").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("unknown tenant \"initech\""),
        "{}",
        unknown.body
    );
    let unknown_post = request(
        &server,
        "POST",
        &[("x-tenant", b"initech")],
        r#"{"amount_cents": 1}"#,
    )
    .await;
    assert_eq!(unknown_post.status, 404);
    let long = "a".repeat(300);
    for (value, why) in [
        (long.as_bytes(), "longer than 255 bytes"),
        (b"acme\xff".as_slice(), "not visible ASCII"),
    ] {
        let r = request(&server, "GET", &[("x-tenant", value)], "").await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(why), "{}", r.body);
    }
    let missing = request(&server, "GET", &[], "").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body, "no tenant: the request has no tenant header");
    assert_eq!(
        pool.status().size,
        0,
        "no rejected request checked out a connection"
    );

    app::provision(&pool, &allowlist).await.unwrap();
    let a1 = create(&server, "acme", 1200, "acme first").await;
    let g1 = create(&server, "globex", 99_900, "globex first").await;
    let a2 = create(&server, "acme", 4500, "acme second").await;
    assert_eq!(
        (a1.id, a2.id, g1.id),
        (1, 2, 1),
        "ids count per tenant schema"
    );

    let acme = list(&server, &[("x-tenant", b"acme")]).await;
    assert_eq!(acme, [a1, a2]);
    let globex = list(&server, &[("x-tenant", b"globex")]).await;
    assert_eq!(globex, [g1]);

    drop(server);
    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test]
async fn the_tenant_can_come_from_the_subdomain() {
    let schemas = TestSchemas::new("web_subdomain").await;
    let allowlist = fixture(&schemas);
    let pool = pool().await;
    app::provision(&pool, &allowlist).await.unwrap();
    let server = serve(AppState {
        pool: pool.clone(),
        tenants: TenantResolver::subdomain(allowlist, "invoices.test"),
    })
    .await;

    let created = request(
        &server,
        "POST",
        &[("host", b"acme.invoices.test:8080")],
        r#"{"amount_cents": 700}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        list(&server, &[("host", b"ACME.Invoices.test")])
            .await
            .len(),
        1
    );
    assert!(list(&server, &[("host", b"globex.invoices.test")])
        .await
        .is_empty());

    for (host, status) in [
        ("initech.invoices.test", 404),
        ("invoices.test", 400),
        ("a.acme.invoices.test", 400),
        ("acme.elsewhere.test", 400),
    ] {
        let r = request(&server, "GET", &[("host", host.as_bytes())], "").await;
        assert_eq!(r.status, status, "{host}: {}", r.body);
    }

    drop(server);
    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test]
async fn handlers_return_tenant_errors_with_their_documented_status_and_no_internals() {
    let schemas = TestSchemas::new("web_errors").await;
    let allowlist = fixture(&schemas);
    let pool = pool().await;
    let server = serve(AppState {
        pool: pool.clone(),
        tenants: TenantResolver::header(allowlist.clone(), "x-tenant"),
    })
    .await;

    // Not provisioned yet: the INSERT fails in the database (no such schema) -> 500, and the
    // body names neither the schema nor the SQL.
    let failed = request(
        &server,
        "POST",
        &[("x-tenant", b"acme")],
        r#"{"amount_cents": 1}"#,
    )
    .await;
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(failed.body, "internal server error");
    assert!(!failed.body.contains(&schemas.name("acme")));

    app::provision(&pool, &allowlist).await.unwrap();
    let created = create(&server, "acme", 1200, "first").await;
    let found = request_at(
        &server,
        "GET",
        &format!("/invoices/{}", created.id),
        &[("x-tenant", b"acme")],
        "",
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(
        serde_json::from_str::<Invoice>(&found.body).unwrap(),
        created
    );
    // The same id in the other tenant's schema does not exist: RowNotFound -> 404.
    let missing = request_at(
        &server,
        "GET",
        &format!("/invoices/{}", created.id),
        &[("x-tenant", b"globex")],
        "",
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.body, "not found");

    // A closed pool: 503.
    pool.close();
    let closed = request(&server, "GET", &[("x-tenant", b"acme")], "").await;
    assert_eq!(closed.status, 503, "{}", closed.body);

    drop(server);
    drop(pool);
    schemas.cleanup().await;
}
