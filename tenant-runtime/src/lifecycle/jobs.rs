//! Running one job per item over N connections at once (provisioning and migrating many
//! tenants).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;

use crate::error::{Error, LifecycleError};
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

    /// Whether `output` failed because the connection was lost (besides the client
    /// reporting itself closed): then the item is run again on a live connection.
    fn lost_connection(&self, _output: &Self::Output) -> bool {
        false
    }
}

/// How often one item may be started: a second time after its connection died under it
/// (every job is one transaction, so a rerun does what the lost one did not commit); an
/// item whose connection dies twice keeps its failure.
pub(crate) const ATTEMPTS_PER_ITEM: usize = 2;

/// Pauses before each attempt to replace a dead connection (bounded: then the worker
/// hands its item back and stops).
const RECONNECT_BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

/// What a run shares between its workers.
struct Shared<'r, T, J: Job<T>> {
    items: &'r [T],
    next: AtomicUsize,
    /// Items handed back by a worker whose connection died: taken before new ones.
    returned: Mutex<Vec<usize>>,
    attempts: Vec<AtomicUsize>,
    /// Items taken and not yet finished or handed back.
    in_flight: AtomicUsize,
    stop: &'r AtomicBool,
    job: &'r J,
    done: &'r (dyn Fn(usize, &J::Output) + Sync),
    results: Mutex<Vec<Option<J::Output>>>,
    reconnect: Option<&'r str>,
}

/// Runs `job` for every item, with one worker per client: each worker takes the next item
/// not yet taken, so a slow item does not hold up the others. Once `stop` is set, workers
/// take no new item (items never started stay `None`). `done` sees each result as it
/// arrives, in completion order.
///
/// A worker whose connection dies (the client is closed, or the job says so) does not go on
/// failing items on it: it opens a new connection to `reconnect` (bounded retries), or, with
/// no URL or no luck, hands its item back to the other workers and stops. The item is run
/// again ([`ATTEMPTS_PER_ITEM`]). Items never started when every worker has stopped stay
/// `None` ([`not_started`] says why).
pub(crate) async fn run_jobs<T: Sync, J: Job<T>>(
    clients: &mut [Client],
    items: &[T],
    stop: &AtomicBool,
    job: &J,
    done: &(dyn Fn(usize, &J::Output) + Sync),
    reconnect: Option<&str>,
) -> Vec<Option<J::Output>> {
    let shared = Shared {
        items,
        next: AtomicUsize::new(0),
        returned: Mutex::new(Vec::new()),
        attempts: (0..items.len()).map(|_| AtomicUsize::new(0)).collect(),
        in_flight: AtomicUsize::new(0),
        stop,
        job,
        done,
        results: Mutex::new((0..items.len()).map(|_| None).collect()),
        reconnect,
    };
    let mut workers = Vec::with_capacity(clients.len());
    for client in clients.iter_mut().take(items.len().max(1)) {
        workers.push(worker(client, &shared));
    }
    join_all(workers).await;
    shared
        .results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
}

impl<T, J: Job<T>> Shared<'_, T, J> {
    /// The next item to run: one handed back, else a new one; waits while another worker
    /// may still hand one back. `None`: nothing left (or the run stopped).
    async fn take(&self) -> Option<usize> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            // Counted in flight before it leaves the queue, so a waiting worker never sees
            // "nothing in flight, nothing queued" while an item changes hands.
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if let Some(i) = lock(&self.returned).pop() {
                return Some(i);
            }
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i < self.items.len() {
                return Some(i);
            }
            if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && lock(&self.returned).is_empty()
            {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn finish(&self, i: usize, output: J::Output) {
        (self.done)(i, &output);
        lock(&self.results)[i] = Some(output);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Gives item `i` back to the other workers; its failed `output` stands until one of
    /// them runs it again (if none is left to, it is the item's result).
    fn hand_back(&self, i: usize, output: J::Output) {
        lock(&self.results)[i] = Some(output);
        lock(&self.returned).push(i);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn worker<T: Sync, J: Job<T>>(client: &mut Client, shared: &Shared<'_, T, J>) {
    while let Some(i) = shared.take().await {
        let output = shared.job.run(client, &shared.items[i]).await;
        let lost = client.is_closed() || shared.job.lost_connection(&output);
        if !lost {
            shared.finish(i, output);
            continue;
        }
        let attempts = shared.attempts[i].fetch_add(1, Ordering::SeqCst) + 1;
        tracing::warn!(item = i, attempts, "a job connection was lost");
        if attempts < ATTEMPTS_PER_ITEM {
            shared.hand_back(i, output);
        } else {
            shared.finish(i, output);
        }
        match reconnect(shared.reconnect).await {
            Some(fresh) => *client = fresh,
            // No way to replace this connection: the other workers take the items.
            None => return,
        }
    }
}

/// Why the items `run_jobs` left `None` were not started (when the run was not stopped on
/// purpose): no client was given ([`LifecycleError::NoConnection`]), or every one was lost
/// ([`LifecycleError::ConnectionsLost`], with how many items were left).
pub(crate) fn not_started<O>(clients: usize, results: &[Option<O>]) -> impl Fn() -> Error {
    let not_started = results.iter().filter(|r| r.is_none()).count();
    move || {
        Error::Lifecycle(if clients == 0 {
            LifecycleError::NoConnection
        } else {
            LifecycleError::ConnectionsLost { not_started }
        })
    }
}

/// A new connection to `url`, with bounded retries; `None` without a URL or after them.
async fn reconnect(url: Option<&str>) -> Option<Client> {
    let url = url?;
    for pause in RECONNECT_BACKOFF {
        tokio::time::sleep(pause).await;
        match Client::connect(url).await {
            Ok(client) => return Some(client),
            Err(error) => tracing::warn!(%error, "cannot replace a lost job connection yet"),
        }
    }
    None
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
/// A connection that dies during the run does not fail the tenants after it: opened from a
/// URL, it is replaced (up to 3 attempts, 0.1 s, 0.5 s and 2 s apart); a caller's client
/// cannot be, so its worker stops and the other connections take over. The tenant that was
/// running on it is run again once, on a live connection.
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

    /// The clients to run over: those given, or `jobs` new ones for `items` items; and the
    /// URL to replace a lost connection from (only for connections opened from one).
    pub(crate) async fn open<'s>(
        self,
        items: usize,
        opened: &'s mut Vec<Client>,
    ) -> crate::Result<(&'s mut [Client], Option<&'c str>)>
    where
        'c: 's,
    {
        match self.0 {
            Source::Clients(clients) => Ok((clients, None)),
            Source::Url { url, jobs } => {
                *opened = connect_many(url, jobs.min(items).max(1)).await?;
                Ok((opened.as_mut_slice(), Some(url)))
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
