//! Rows decoded one at a time as they arrive.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio_postgres::{Row, RowStream};

use crate::error::Result;

/// A stream of decoded rows (models, scalars or raw [`Row`]s) that never holds the whole
/// result in memory. Returned by the `stream` terminals of the query builder and the query
/// macros; it is `Unpin`, so `next().await` works without pinning.
///
/// ```no_run
/// use futures_util::TryStreamExt;
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "events")]
/// struct Event { #[tenant(primary_key)] id: i64, kind: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
/// let mut events = Event::query().order_by(Event::ID.asc()).stream(&db).await?;
/// while let Some(event) = events.try_next().await? {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct QueryStream<T> {
    rows: Pin<Box<RowStream>>,
    decode: fn(Row) -> Result<T>,
}

impl<T> QueryStream<T> {
    pub(crate) fn new(rows: RowStream, decode: fn(Row) -> Result<T>) -> QueryStream<T> {
        QueryStream {
            rows: Box::pin(rows),
            decode,
        }
    }

    /// The number of rows the statement affected, known once the stream has ended.
    pub fn rows_affected(&self) -> Option<u64> {
        self.rows.rows_affected()
    }
}

impl<T> Stream for QueryStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let decode = self.decode;
        match self.rows.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(row))) => Poll::Ready(Some(decode(row))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> std::fmt::Debug for QueryStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream").finish_non_exhaustive()
    }
}
