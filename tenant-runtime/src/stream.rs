//! Query results as a [`Stream`] of models, decoded one row at a time.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::Stream;
use tokio_postgres::RowStream;

use crate::error::Result;
use crate::model::Model;

/// Rows of a query decoded into `M` as they arrive, without holding the result set in
/// memory: tokio-postgres reads the next rows from the socket only when the stream is polled,
/// so a slow consumer holds back the server instead of buffering. Made by [`Model::stream`].
///
/// The stream is `Unpin` and `'static` (it owns its rows; the connection stays usable for
/// other statements, which queue behind it). Dropping it early discards the remaining rows.
///
/// ```no_run
/// use futures_util::TryStreamExt;
/// use tenant_runtime::{Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "events")]
/// struct Event { #[tenant(primary_key)] id: i64, kind: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let db = client.for_tenant(&acme);
/// let mut events = Event::stream(&db).await?;
/// while let Some(event) = events.try_next().await? {
///     println!("{} {}", event.id, event.kind);
/// }
/// # Ok(()) }
/// ```
pub struct ModelStream<M> {
    // Boxed once per query so that the stream is `Unpin` (`RowStream` is not).
    rows: Pin<Box<RowStream>>,
    _model: PhantomData<fn() -> M>,
}

impl<M: Model> ModelStream<M> {
    /// Decodes `rows`, whose columns must be `M`'s columns in order (as every template the
    /// derive or the query builder renders for `M` selects them).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelStream};
    /// # #[derive(Model)] #[tenant(table = "events")] struct Event { #[tenant(primary_key)] id: i64 }
    /// # async fn run(db: &tenant_runtime::Db<&mut Client>, template: &tenant_runtime::Template) -> Result<(), tenant_runtime::Error> {
    /// let events: ModelStream<Event> = ModelStream::new(db.query_stream(template, &[]).await?);
    /// # Ok(()) }
    /// ```
    pub fn new(rows: RowStream) -> ModelStream<M> {
        ModelStream {
            rows: Box::pin(rows),
            _model: PhantomData,
        }
    }

    /// The number of rows the statement returned, once the stream has ended (`None` before).
    pub fn rows_affected(&self) -> Option<u64> {
        self.rows.rows_affected()
    }
}

impl<M: Model> Stream for ModelStream<M> {
    type Item = Result<M>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<M>>> {
        Poll::Ready(match ready!(self.rows.as_mut().poll_next(cx)) {
            Some(Ok(row)) => Some(M::from_row(&row)),
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        })
    }
}

impl<M> std::fmt::Debug for ModelStream<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStream")
            .field("model", &std::any::type_name::<M>())
            .finish_non_exhaustive()
    }
}
