//! Running one job per item over N connections at once (provisioning and migrating many
//! tenants).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use futures_util::future::join_all;

use crate::exec::Client;

/// One unit of work on one connection. (A trait rather than an async closure so that the
/// futures are provably `Send` for every lifetime, and the whole run can be spawned.)
pub(crate) trait Job<T>: Sync {
    type Output: Send;
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        item: &'a T,
    ) -> impl Future<Output = Self::Output> + Send + 'a;
}

/// Runs `job` for every item, with one worker per client: each worker takes the next item
/// not yet taken, so a slow item does not hold up the others. Once `stop` is set, workers
/// take no new item (items never started stay `None`). `done` sees each result as it
/// arrives, in completion order.
pub(crate) async fn run_jobs<T: Sync, J: Job<T>>(
    clients: &mut [Client],
    items: &[T],
    stop: &AtomicBool,
    job: &J,
    done: &(dyn Fn(usize, &J::Output) + Sync),
) -> Vec<Option<J::Output>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<J::Output>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let mut workers = Vec::with_capacity(clients.len());
    for client in clients.iter_mut().take(items.len().max(1)) {
        workers.push(worker(client, items, &next, stop, job, done, &results));
    }
    join_all(workers).await;
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

async fn worker<T: Sync, J: Job<T>>(
    client: &mut Client,
    items: &[T],
    next: &AtomicUsize,
    stop: &AtomicBool,
    job: &J,
    done: &(dyn Fn(usize, &J::Output) + Sync),
    results: &Mutex<Vec<Option<J::Output>>>,
) {
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else {
            break;
        };
        let result = job.run(client, item).await;
        done(i, &result);
        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
    }
}

/// Opens `n` connections to `url` (at least one).
///
/// ```no_run
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut clients = tenant_runtime::lifecycle::connect_many("postgres://postgres@127.0.0.1/postgres", 8).await?;
/// assert_eq!(clients.len(), 8);
/// # Ok(()) }
/// ```
pub async fn connect_many(url: &str, n: usize) -> crate::Result<Vec<Client>> {
    let opened = join_all((0..n.max(1)).map(|_| Client::connect(url))).await;
    opened.into_iter().collect()
}

/// Where a run over many tenants ([`Migrator::run`](crate::Migrator::run)) gets its
/// connections: clients the caller holds (one tenant per client at a time), or a URL to open
/// `jobs` connections to for the run.
///
/// ```no_run
/// use tenant_runtime::lifecycle::Connections;
/// use tenant_runtime::Client;
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let one: Connections<'_> = (&mut client).into();                     // one at a time
/// let eight = Connections::url("postgres://postgres@127.0.0.1/postgres", 8); // opened for the run
/// # Ok(()) }
/// ```
pub struct Connections<'c>(Source<'c>);

enum Source<'c> {
    Clients(&'c mut [Client]),
    Url { url: &'c str, jobs: usize },
}

impl<'c> Connections<'c> {
    /// `jobs` connections to `url`, opened when the run starts (no more than there are
    /// tenants, at least one) and closed when it ends.
    pub fn url(url: &'c str, jobs: usize) -> Connections<'c> {
        Connections(Source::Url { url, jobs })
    }

    /// The clients to run over: those given, or `jobs` new ones for `items` items.
    pub(crate) async fn open<'s>(
        self,
        items: usize,
        opened: &'s mut Vec<Client>,
    ) -> crate::Result<&'s mut [Client]>
    where
        'c: 's,
    {
        match self.0 {
            Source::Clients(clients) => Ok(clients),
            Source::Url { url, jobs } => {
                *opened = connect_many(url, jobs.min(items).max(1)).await?;
                Ok(opened.as_mut_slice())
            }
        }
    }
}

impl<'c> From<&'c mut [Client]> for Connections<'c> {
    fn from(clients: &'c mut [Client]) -> Connections<'c> {
        Connections(Source::Clients(clients))
    }
}

impl<'c, const N: usize> From<&'c mut [Client; N]> for Connections<'c> {
    fn from(clients: &'c mut [Client; N]) -> Connections<'c> {
        Connections(Source::Clients(clients))
    }
}

impl<'c> From<&'c mut Vec<Client>> for Connections<'c> {
    fn from(clients: &'c mut Vec<Client>) -> Connections<'c> {
        Connections(Source::Clients(clients))
    }
}

impl<'c> From<&'c mut Client> for Connections<'c> {
    fn from(client: &'c mut Client) -> Connections<'c> {
        Connections(Source::Clients(std::slice::from_mut(client)))
    }
}

impl std::fmt::Debug for Connections<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Clients(clients) => write!(f, "Connections({} clients)", clients.len()),
            // The URL may carry a password: only the count is shown.
            Source::Url { jobs, .. } => write!(f, "Connections(url, {jobs} jobs)"),
        }
    }
}
