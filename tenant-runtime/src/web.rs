//! Per-request tenancy for axum (feature `axum`): the tenant of a request comes from a header
//! or the subdomain, through the [`Allowlist`], before any SQL can run.
//!
//! - [`TenantResolver`]: where a request names its tenant (`X-Tenant: acme`, or
//!   `acme.example.com`), and the allowlist that turns the name into a [`Tenant`].
//! - [`RequestTenant`]: an extractor giving the resolved [`Tenant`].
//! - [`TenantDb`]: an extractor giving a [`PooledDb`] for the request's tenant, checked out of
//!   the state's [`TenantPool`] only once the tenant is known.
//! - [`TenantRejection`]: what a request gets instead: malformed or missing → 400, unknown
//!   → 404, no connection in time → 503. A rejected request never reaches SQL.
//! - `impl IntoResponse for` [`Error`]: a handler can return `Result<_, tenant_runtime::Error>`
//!   and use `?`; the status of each error is [`Error::http_status`] (the table there), and
//!   the body is a short public sentence, never the error's internals.
//!
//! The resolved tenant's key is recorded into a `tenant` field of the current span when it
//! has one (e.g. a request span declared with `tenant = tracing::field::Empty`), and every
//! statement runs in a span that carries it.
//!
//! ```no_run
//! use axum::{extract::FromRef, routing::get, Router};
//! use tenant_runtime::web::{TenantDb, TenantResolver};
//! use tenant_runtime::{Allowlist, TenantPool};
//!
//! #[derive(Clone)]
//! struct AppState { pool: TenantPool, tenants: TenantResolver }
//! impl FromRef<AppState> for TenantPool {
//!     fn from_ref(state: &AppState) -> TenantPool { state.pool.clone() }
//! }
//! impl FromRef<AppState> for TenantResolver {
//!     fn from_ref(state: &AppState) -> TenantResolver { state.tenants.clone() }
//! }
//!
//! async fn health(TenantDb(db): TenantDb) -> String {
//!     format!("serving {}", db.tenant().key())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
//! let state = AppState {
//!     pool: TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.build()?,
//!     tenants: TenantResolver::header(allowlist, "x-tenant"),
//! };
//! let app: Router = Router::new().route("/health", get(health)).with_state(state);
//! # Ok(()) }
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::door::{Allowlist, Tenant};
use crate::error::Error;
use crate::pool::{PooledDb, TenantPool};

/// Where a request names its tenant.
#[derive(Debug, Clone)]
enum Source {
    Header(HeaderName),
    /// The first label of the `Host`, under this (lowercase) domain.
    Subdomain(Arc<str>),
}

/// Resolves the tenant of a request: reads the key from a header or the subdomain and looks
/// it up in the [`Allowlist`] (the one door). Put it in the router state; the extractors find
/// it with `FromRef`.
///
/// ```
/// use axum::http::Request;
/// use tenant_runtime::web::{TenantRejection, TenantResolver};
/// use tenant_runtime::Allowlist;
///
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let by_host = TenantResolver::subdomain(allowlist, "example.com");
/// let (parts, _) = Request::get("/").header("host", "acme.example.com:8080").body(())?.into_parts();
/// assert_eq!(by_host.resolve(&parts)?.schema().as_str(), "tenant_acme");
/// let (parts, _) = Request::get("/").header("host", "initech.example.com").body(())?.into_parts();
/// assert!(matches!(by_host.resolve(&parts), Err(TenantRejection::Unknown { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TenantResolver {
    allowlist: Allowlist,
    source: Source,
}

impl TenantResolver {
    /// Reads the tenant key from the header `name` (e.g. `"x-tenant"`).
    ///
    /// # Panics
    /// If `name` is not a valid header name: it is a constant of the program, not input.
    ///
    /// ```
    /// use tenant_runtime::{web::TenantResolver, Allowlist};
    /// let resolver = TenantResolver::header(Allowlist::new(), "x-tenant");
    /// ```
    pub fn header(allowlist: Allowlist, name: &str) -> TenantResolver {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("{name:?} is not a valid header name: {e}"));
        TenantResolver {
            allowlist,
            source: Source::Header(name),
        }
    }

    /// Reads the tenant key from the subdomain: `acme.example.com` under `example.com` is
    /// `acme`. The host must be exactly one label under `base_domain`; the label is
    /// lowercased (host names are case-insensitive), so allowlist keys should be lowercase.
    ///
    /// ```
    /// use tenant_runtime::{web::TenantResolver, Allowlist};
    /// let resolver = TenantResolver::subdomain(Allowlist::new(), "example.com");
    /// ```
    pub fn subdomain(allowlist: Allowlist, base_domain: &str) -> TenantResolver {
        TenantResolver {
            allowlist,
            source: Source::Subdomain(base_domain.trim_matches('.').to_ascii_lowercase().into()),
        }
    }

    /// The allowlist behind this resolver.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The tenant the request names, or why there is none.
    pub fn resolve(&self, parts: &Parts) -> Result<Tenant, TenantRejection> {
        let from_host;
        let key = match &self.source {
            Source::Header(name) => {
                let value = parts.headers.get(name).ok_or(TenantRejection::Missing {
                    what: "tenant header",
                })?;
                value.to_str().map_err(|_| TenantRejection::Malformed {
                    reason: "the tenant header is not visible ASCII".into(),
                })?
            }
            Source::Subdomain(base) => {
                from_host = subdomain_key(parts, base)?;
                &from_host
            }
        };
        self.allowlist.resolve(key).map_err(|e| match e {
            Error::UnknownTenant { key } => TenantRejection::Unknown { key },
            other => TenantRejection::Malformed {
                reason: other.to_string(),
            },
        })
    }
}

/// The first label of the request's host under `base`.
fn subdomain_key(parts: &Parts, base: &str) -> Result<String, TenantRejection> {
    let host = match parts.headers.get(HOST) {
        Some(value) => value.to_str().map_err(|_| TenantRejection::Malformed {
            reason: "the Host header is not visible ASCII".into(),
        })?,
        None => parts.uri.host().ok_or(TenantRejection::Missing {
            what: "Host header",
        })?,
    };
    // Drop a port; an IPv6 literal has no subdomain anyway.
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let malformed = || TenantRejection::Malformed {
        reason: format!("the host is not one label under {base}"),
    };
    if host.eq_ignore_ascii_case(base) {
        return Err(TenantRejection::Missing {
            what: "tenant subdomain",
        });
    }
    // `to_str` and `Uri::host` give ASCII only, so byte offsets are char boundaries.
    let Some(at) = host.len().checked_sub(base.len() + 1) else {
        return Err(malformed());
    };
    let (label, suffix) = host.split_at(at);
    if !(suffix.starts_with('.') && suffix[1..].eq_ignore_ascii_case(base)) {
        return Err(malformed());
    }
    if label.is_empty() || label.contains('.') {
        return Err(malformed());
    }
    // Host names are case-insensitive: `ACME.example.com` is tenant `acme`.
    Ok(label.to_ascii_lowercase())
}

fn record_tenant(tenant: &Tenant) {
    tracing::Span::current().record("tenant", tenant.key());
    tracing::debug!(tenant = tenant.key(), "request tenant resolved");
}

/// Why a request has no tenant. As a response: `Missing` and `Malformed` are 400 Bad
/// Request, `Unknown` is 404 Not Found, `Unavailable` has the status of its error
/// ([`Error::http_status`]: 503 for a pool timeout or a closed pool, else mostly 500) and a
/// body without the error's internals (those are logged).
///
/// ```
/// use axum::response::IntoResponse;
/// use tenant_runtime::web::TenantRejection;
/// let response = TenantRejection::Unknown { key: "initech".into() }.into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantRejection {
    /// The request does not name a tenant.
    #[error("no tenant: the request has no {what}")]
    Missing {
        /// What was looked for, without an article (`"tenant header"`, `"Host header"`,
        /// `"tenant subdomain"`): the message reads "the request has no tenant header".
        what: &'static str,
    },
    /// The request names a tenant in a form that cannot be a tenant key.
    #[error("malformed tenant: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// A well-formed key that is not in the allowlist.
    #[error("unknown tenant {key:?}")]
    Unknown {
        /// The key (hostile input: it is shown escaped).
        key: String,
    },
    /// The tenant is known but no connection could be had.
    #[error("tenant database unavailable: {0}")]
    Unavailable(#[source] Error),
}

impl IntoResponse for TenantRejection {
    fn into_response(self) -> Response {
        let status = match &self {
            TenantRejection::Missing { .. } | TenantRejection::Malformed { .. } => {
                StatusCode::BAD_REQUEST
            }
            TenantRejection::Unknown { .. } => StatusCode::NOT_FOUND,
            TenantRejection::Unavailable(error) => error.http_status(),
        };
        if let TenantRejection::Unavailable(error) = &self {
            tracing::error!(%error, "no database connection for the request");
            // The cause is in the log; the client learns only the kind of failure.
            let body = format!("tenant database unavailable: {}", error.public_message());
            return (status, body).into_response();
        }
        (status, self.to_string()).into_response()
    }
}

/// Extracts the request's [`Tenant`] with the state's [`TenantResolver`].
///
/// ```
/// use tenant_runtime::web::RequestTenant;
/// async fn handler(RequestTenant(tenant): RequestTenant) -> String {
///     format!("hello, {}", tenant.key())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RequestTenant(pub Tenant);

impl<S> FromRequestParts<S> for RequestTenant
where
    TenantResolver: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = TenantRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TenantRejection> {
        let tenant = TenantResolver::from_ref(state).resolve(parts)?;
        record_tenant(&tenant);
        Ok(RequestTenant(tenant))
    }
}

/// Extracts a [`PooledDb`] for the request's tenant: the tenant is resolved first, and only a
/// known tenant checks a connection out of the state's [`TenantPool`]. The connection goes
/// back to the pool when the handler returns.
///
/// ```
/// use tenant_runtime::web::TenantDb;
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// async fn count(TenantDb(db): TenantDb) -> Result<String, String> {
///     Invoice::query().count(&db).await.map(|n| n.to_string()).map_err(|e| e.to_string())
/// }
/// ```
#[derive(Debug)]
pub struct TenantDb(pub PooledDb);

impl Deref for TenantDb {
    type Target = PooledDb;
    fn deref(&self) -> &PooledDb {
        &self.0
    }
}

impl DerefMut for TenantDb {
    fn deref_mut(&mut self) -> &mut PooledDb {
        &mut self.0
    }
}

impl<S> FromRequestParts<S> for TenantDb
where
    TenantResolver: FromRef<S>,
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = TenantRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TenantRejection> {
        let tenant = TenantResolver::from_ref(state).resolve(parts)?;
        record_tenant(&tenant);
        let pool = TenantPool::from_ref(state);
        let db = pool
            .get(&tenant)
            .await
            .map_err(TenantRejection::Unavailable)?;
        Ok(TenantDb(db))
    }
}

/// What an [`Error`] returned by a handler answers. The status is [`Error::http_status`];
/// the body is [`Error::public_message`] as plain text, so a client learns what kind of
/// failure it was and nothing about the database. A 5xx is logged with the whole error
/// (`tracing::error!`), so the cause is in the server's log, not in the response.
///
/// The response carries the error in its extensions as an [`ErrorReport`], so a middleware
/// can answer differently (see [`ErrorReport`]).
///
/// ```
/// use axum::response::IntoResponse;
/// use tenant_runtime::Error;
///
/// let response = Error::RowNotFound.into_response();
/// assert_eq!(response.status(), 404);
/// let response = Error::PoolClosed.into_response();
/// assert_eq!(response.status(), 503);
/// ```
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.http_status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, self.public_message()).into_response();
        response
            .extensions_mut()
            .insert(ErrorReport(Arc::new(self)));
        response
    }
}

/// The [`Error`] behind a response made by `Error::into_response`, in the response's
/// extensions. This is the way to change how errors answer: a middleware
/// (`axum::middleware::map_response`) finds it and builds another response; everything
/// else keeps the default mapping. (A handler can also return its own error type; the
/// orphan rule forbids a second `IntoResponse for Error`.)
///
/// ```
/// use axum::{middleware::map_response, response::{IntoResponse, Response}, routing::get, Router};
/// use axum::http::StatusCode;
/// use tenant_runtime::{web::ErrorReport, Error};
///
/// /// Answer every error as JSON, and a missing row as 410 Gone.
/// async fn errors_as_json(response: Response) -> Response {
///     let Some(ErrorReport(error)) = response.extensions().get::<ErrorReport>().cloned() else {
///         return response;
///     };
///     let status = match &*error {
///         Error::RowNotFound => StatusCode::GONE,
///         other => other.http_status(),
///     };
///     let body = format!(r#"{{"error": {:?}}}"#, error.public_message());
///     (status, [("content-type", "application/json")], body).into_response()
/// }
///
/// async fn handler() -> Result<String, Error> { Err(Error::RowNotFound) }
///
/// let app: Router = Router::new().route("/", get(handler)).layer(map_response(errors_as_json));
/// ```
#[derive(Debug, Clone)]
pub struct ErrorReport(pub Arc<Error>);

impl Error {
    /// The HTTP status this error answers with when a handler returns it (feature `axum`):
    ///
    /// | error | status | why |
    /// |---|---|---|
    /// | `InvalidTenantKey` | 400 Bad Request | the request named a tenant in a form no key can have |
    /// | `UnknownTenant` | 404 Not Found | no such tenant, as for [`TenantRejection::Unknown`] |
    /// | `RowNotFound` | 404 Not Found | `fetch_one` of a row that is not there (e.g. `/invoices/7`) |
    /// | `Db` with SQLSTATE `23505` (unique violation) | 409 Conflict | the row already exists |
    /// | `Db` with SQLSTATE `40001` / `40P01` (serialization failure, deadlock) | 503 Service Unavailable | retry the request |
    /// | `PoolTimeout`, `PoolClosed`, `TenantPoolsBusy`, `NoReplicaAvailable` | 503 Service Unavailable | no connection in time: retry later |
    /// | everything else | 500 Internal Server Error | a bug or a misconfiguration of the server |
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use tenant_runtime::Error;
    /// assert_eq!(Error::UnknownTenant { key: "initech".into() }.http_status(), StatusCode::NOT_FOUND);
    /// assert_eq!(Error::TooManyRows.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn http_status(&self) -> StatusCode {
        use tokio_postgres::error::SqlState;
        match self {
            Error::InvalidTenantKey { .. } => StatusCode::BAD_REQUEST,
            Error::UnknownTenant { .. } | Error::RowNotFound => StatusCode::NOT_FOUND,
            Error::PoolTimeout { .. }
            | Error::PoolClosed
            | Error::TenantPoolsBusy { .. }
            | Error::NoReplicaAvailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Db(e) => match e.code() {
                Some(code) if *code == SqlState::UNIQUE_VIOLATION => StatusCode::CONFLICT,
                Some(code)
                    if *code == SqlState::T_R_SERIALIZATION_FAILURE
                        || *code == SqlState::T_R_DEADLOCK_DETECTED =>
                {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body of this error's response: one sentence for the client, naming the kind of
    /// failure and nothing internal (no SQL, schema, or database message). A malformed or
    /// unknown tenant key is not echoed either: it is the client's own input.
    ///
    /// ```
    /// use tenant_runtime::Error;
    /// assert_eq!(Error::RowNotFound.public_message(), "not found");
    /// assert_eq!(Error::TooManyRows.public_message(), "internal server error");
    /// ```
    pub fn public_message(&self) -> &'static str {
        match self.http_status() {
            StatusCode::BAD_REQUEST => "malformed tenant key",
            StatusCode::NOT_FOUND if matches!(self, Error::UnknownTenant { .. }) => {
                "unknown tenant"
            }
            StatusCode::NOT_FOUND => "not found",
            StatusCode::CONFLICT => "conflict: the row already exists",
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable: retry later",
            _ => "internal server error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(host: Option<&str>) -> Parts {
        let mut request = Request::get("/");
        if let Some(host) = host {
            request = request.header("host", host);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_missing_tenant_is_said_in_plain_words() {
        let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")]).unwrap();
        let by_header = TenantResolver::header(allowlist.clone(), "x-tenant");
        let by_host = TenantResolver::subdomain(allowlist, "example.com");
        let said = |r: Result<Tenant, TenantRejection>| r.unwrap_err().to_string();
        assert_eq!(
            said(by_header.resolve(&parts(None))),
            "no tenant: the request has no tenant header"
        );
        assert_eq!(
            said(by_host.resolve(&parts(Some("example.com")))),
            "no tenant: the request has no tenant subdomain"
        );
        assert_eq!(
            said(by_host.resolve(&parts(None))),
            "no tenant: the request has no Host header"
        );
    }
}
