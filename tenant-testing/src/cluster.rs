//! A throwaway PostgreSQL cluster for fault tests.

use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a start may take until the server accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`ThrowawayCluster::wait_for_replay`] waits for a standby to catch up.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports are tried when the one found free was taken before the server bound it.
const START_ATTEMPTS: usize = 3;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL cluster of its own: `initdb` into a fresh temp dir (owned by the `postgres`
/// OS user when running as root, since `initdb` refuses to run as root), listening on
/// 127.0.0.1 on a free port, trust auth, started with `pg_ctl`; stopped and its directory
/// deleted on `Drop`.
///
/// For fault tests (killing backends, restarting the server): never do those to the
/// shared server of [`database_url`](crate::database_url).
///
/// ```no_run
/// use tenant_testing::ThrowawayCluster;
///
/// let cluster = ThrowawayCluster::start()?;      // initdb + pg_ctl start, a free port
/// let url = cluster.url();                        // postgres://postgres@127.0.0.1:<port>/postgres
/// assert!(url.contains(&cluster.port().to_string()));
/// drop(cluster);                                  // stopped, its directory removed
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ThrowawayCluster {
    /// Temp dir holding `data/`, `server.log` and the Unix socket.
    root: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    bin: PathBuf,
    /// `(uid, gid)` to run the server tools as (when we are root).
    run_as: Option<(u32, u32)>,
}

impl ThrowawayCluster {
    /// Creates and starts the cluster (blocking; a few seconds). Finds `initdb`/`pg_ctl` on
    /// `PATH` or in `/usr/lib/postgresql/*/bin`. The error says what failed and includes
    /// the tool output or the end of the server log.
    pub fn start() -> io::Result<ThrowawayCluster> {
        let cluster = ThrowawayCluster::new_dir()?;
        cluster.initdb()?;
        cluster.start_on_free_port()
    }

    /// Like [`start`](Self::start), configured as the primary of streaming replicas:
    /// `wal_level = replica`, WAL senders and slots to spare, and `host replication all
    /// 127.0.0.1/32 trust` in `pg_hba.conf`. Start standbys with
    /// [`start_standby_of`](Self::start_standby_of).
    pub fn start_primary() -> io::Result<ThrowawayCluster> {
        let cluster = ThrowawayCluster::new_dir()?;
        cluster.initdb()?;
        for line in [
            "wal_level = replica",
            "max_wal_senders = 10",
            "max_replication_slots = 10",
            "hot_standby = on",
        ] {
            cluster.append_config(line)?;
        }
        let mut hba = OpenOptions::new()
            .append(true)
            .open(cluster.data.join("pg_hba.conf"))?;
        writeln!(hba, "host replication all 127.0.0.1/32 trust")?;
        cluster.start_on_free_port()
    }

    /// A hot standby of `primary` (started with [`start_primary`](Self::start_primary)):
    /// `pg_basebackup -R` from it over loopback into a fresh directory, started on another
    /// free port (blocking; a few seconds). Returns once the standby accepts (read-only)
    /// connections; [`wait_for_replay`](Self::wait_for_replay) waits until it has replayed
    /// the primary's latest changes.
    pub fn start_standby_of(primary: &ThrowawayCluster) -> io::Result<ThrowawayCluster> {
        let cluster = ThrowawayCluster::new_dir()?;
        let data = cluster.data.clone();
        let port = primary.port.to_string();
        let out = cluster.run(cluster.tool("pg_basebackup").args([
            OsStr::new("-D"),
            data.as_os_str(),
            OsStr::new("-R"),
            OsStr::new("-X"),
            OsStr::new("stream"),
            OsStr::new("--checkpoint=fast"),
            OsStr::new("--no-sync"),
            OsStr::new("-h"),
            OsStr::new("127.0.0.1"),
            OsStr::new("-p"),
            OsStr::new(&port),
            OsStr::new("-U"),
            OsStr::new("postgres"),
        ]))?;
        if !out.status.success() {
            return Err(other(format!(
                "pg_basebackup from port {port} failed ({}):\n{}\nprimary log:\n{}",
                out.status,
                output_text(&out),
                primary.log_tail(30)
            )));
        }
        // The copied postgresql.conf carries the primary's port and socket directory;
        // `start_on_free_port` appends this cluster's, which win.
        cluster.start_on_free_port()
    }

    /// Waits (at most 30 s) until this standby is in recovery and has replayed everything
    /// `primary` committed before the call (it commits one marker transaction to know where
    /// that ends).
    pub async fn wait_for_replay(&self, primary: &ThrowawayCluster) -> io::Result<()> {
        let fail = |what: &str, e: tokio_postgres::Error| other(format!("{what}: {e}"));
        let primary_client = crate::try_connect_to(&primary.url())
            .await
            .map_err(|e| fail("connecting to the primary", e))?;
        // A durable commit that wrote WAL (a transactional logical message; a transaction that
        // wrote nothing commits asynchronously): its commit record lies after everything
        // committed before, and is flushed, so the flush position is a target the standby
        // reaches. (The insert position is not: after a WAL switch it lies past the end of
        // any record until the next one is written.)
        primary_client
            .batch_execute(
                "SET synchronous_commit = on; BEGIN; \
                 SELECT pg_logical_emit_message(true, 'tenant_tests', 'replay marker'); COMMIT",
            )
            .await
            .map_err(|e| fail("writing a marker on the primary", e))?;
        let target: String = primary_client
            .query_one("SELECT pg_current_wal_flush_lsn()::text", &[])
            .await
            .map_err(|e| fail("reading the primary's WAL position", e))?
            .get(0);
        let standby = crate::try_connect_to(&self.url())
            .await
            .map_err(|e| fail("connecting to the standby", e))?;
        let deadline = Instant::now() + REPLAY_TIMEOUT;
        loop {
            let row = standby
                .query_one(
                    "SELECT pg_is_in_recovery(), \
                     coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                    &[&target],
                )
                .await
                .map_err(|e| fail("reading the standby's replay position", e))?;
            let (in_recovery, replayed): (bool, bool) = (row.get(0), row.get(1));
            if !in_recovery {
                return Err(other("the standby is not in recovery: it is not a standby"));
            }
            if replayed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(other(format!(
                    "the standby did not replay up to {target} within {REPLAY_TIMEOUT:?}; standby log:\n{}",
                    self.log_tail(30)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A fresh, empty directory for a cluster (owned by the server user), not started.
    fn new_dir() -> io::Result<ThrowawayCluster> {
        let bin = find_bin_dir()?;
        let run_as = if is_root() {
            Some(lookup_user("postgres").ok_or_else(|| {
                other("running as root, but there is no `postgres` OS user to run initdb as")
            })?)
        } else {
            None
        };

        let base = if run_as.is_some() {
            // The server user must be able to reach it: not e.g. somewhere under /root.
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        // Short, since the Unix socket path (<root>/.s.PGSQL.<port>) is limited to 107 bytes.
        let root = base.join(format!(
            "tenant-pg-{}-{}-{:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        fs::create_dir(&root)?;
        let cluster = ThrowawayCluster {
            data: root.join("data"),
            log: root.join("server.log"),
            root,
            port: 0,
            bin,
            run_as,
        };
        // From here on, `Drop` removes the directory if anything fails.
        fs::set_permissions(&cluster.root, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = cluster.run_as {
            std::os::unix::fs::chown(&cluster.root, Some(uid), Some(gid))?;
        }
        Ok(cluster)
    }

    fn initdb(&self) -> io::Result<()> {
        let data = self.data.clone();
        let out = self.run(self.tool("initdb").args([
            OsStr::new("-D"),
            data.as_os_str(),
            OsStr::new("-U"),
            OsStr::new("postgres"),
            OsStr::new("--auth=trust"),
            OsStr::new("-E"),
            OsStr::new("UTF8"),
            OsStr::new("--locale=C"),
            OsStr::new("--no-sync"),
        ]))?;
        if !out.status.success() {
            return Err(other(format!(
                "initdb failed ({}):\n{}",
                out.status,
                output_text(&out)
            )));
        }
        Ok(())
    }

    /// Starts the server in `data` on a free port (trying again if the port was taken).
    fn start_on_free_port(mut self) -> io::Result<ThrowawayCluster> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            self.write_base_config()?;
            match self.start_again() {
                Ok(()) => return Ok(self),
                Err(e) => {
                    let port_taken = self.log_tail(50).contains("could not bind")
                        || self.log_tail(50).contains("already in use");
                    let _ = self.pg_ctl_stop("immediate");
                    last_error = Some(e);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| other("the cluster did not start")))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the server log (for assertion messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server: `pg_ctl stop -m fast` (disconnects clients, clean shutdown).
    pub fn stop(&self) -> io::Result<()> {
        self.pg_ctl_stop("fast")
    }

    /// Starts the stopped server again (same port and data) and waits until it accepts
    /// connections.
    pub fn start_again(&self) -> io::Result<()> {
        let (data, log) = (self.data.clone(), self.log.clone());
        let out = self.run(self.tool("pg_ctl").args([
            OsStr::new("-D"),
            data.as_os_str(),
            OsStr::new("-l"),
            log.as_os_str(),
            OsStr::new("-w"),
            OsStr::new("-t"),
            OsStr::new(&READY_TIMEOUT.as_secs().to_string()),
            OsStr::new("start"),
        ]))?;
        if !out.status.success() {
            return Err(self.failure("pg_ctl start", &out));
        }
        self.wait_ready()
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again), e.g. after
    /// [`append_config`](Self::append_config).
    pub fn restart(&self) -> io::Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Appends `line` to `postgresql.conf` (later lines win), e.g. `wal_level = logical`.
    /// Takes effect after [`restart`](Self::restart) (or a reload, for reloadable settings).
    pub fn append_config(&self, line: &str) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))?;
        writeln!(file, "{line}")
    }

    /// Stops the server (immediately) and deletes the directory; what `Drop` does.
    pub(crate) fn teardown(&self) {
        if self.data.join("postmaster.pid").exists() && self.pg_ctl_stop("immediate").is_err() {
            self.kill_postmaster();
        }
        let _ = fs::remove_dir_all(&self.root);
    }

    fn write_base_config(&self) -> io::Result<()> {
        let socket_dir = self.root.to_string_lossy().replace('\'', "''");
        // Appended after initdb's defaults each attempt; the last `port` line wins.
        for line in [
            "# --- ThrowawayCluster ---".to_owned(),
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!("port = {}", self.port),
            format!("unix_socket_directories = '{socket_dir}'"),
            // A throwaway cluster needs no durability against OS crashes.
            "fsync = off".to_owned(),
            "synchronous_commit = off".to_owned(),
            "full_page_writes = off".to_owned(),
        ] {
            self.append_config(&line)?;
        }
        Ok(())
    }

    fn pg_ctl_stop(&self, mode: &str) -> io::Result<()> {
        let data = self.data.clone();
        let out = self.run(self.tool("pg_ctl").args([
            OsStr::new("-D"),
            data.as_os_str(),
            OsStr::new("-m"),
            OsStr::new(mode),
            OsStr::new("-w"),
            OsStr::new("-t"),
            OsStr::new("60"),
            OsStr::new("stop"),
        ]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure(&format!("pg_ctl stop -m {mode}"), &out))
        }
    }

    /// Last resort when `pg_ctl stop` failed: SIGKILL the postmaster we started.
    fn kill_postmaster(&self) {
        let Ok(pidfile) = fs::read_to_string(self.data.join("postmaster.pid")) else {
            return;
        };
        if let Some(pid) = pidfile
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        {
            if pid > 0 {
                // SAFETY: plain syscall; the pid is our own cluster's postmaster.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    /// Polls `pg_isready -h 127.0.0.1 -p PORT` (or a TCP connect if there is no
    /// pg_isready) until the server answers.
    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let pg_isready = self.bin.join("pg_isready");
        loop {
            let ready = if pg_isready.exists() {
                Command::new(&pg_isready)
                    .args([
                        "-q",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-p",
                    ])
                    .arg(self.port.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            } else {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(other(format!(
                    "the server on port {} did not accept connections within {:?}; server log:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    self.log_tail(50)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A command for the server tool `name`, run as the server user, in the cluster's dir.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.current_dir(&self.root)
            .stdin(Stdio::null())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups too when a root process sets the uid.
            cmd.uid(uid)
                .gid(gid)
                .env("HOME", &self.root)
                .env("USER", "postgres");
        }
        cmd
    }

    fn run(&self, cmd: &mut Command) -> io::Result<Output> {
        cmd.output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {cmd:?}: {e}")))
    }

    fn failure(&self, what: &str, out: &Output) -> io::Error {
        other(format!(
            "{what} failed ({}) for the cluster in {}:\n{}\nserver log:\n{}",
            out.status,
            self.data.display(),
            output_text(out),
            self.log_tail(50)
        ))
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn other(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `(uid, gid)` of the OS user `name`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` outlives the use of `pwd`.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some((pwd.pw_uid, pwd.pw_gid))
}

/// A port that was free a moment ago (bind to port 0, read it, let go).
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The directory with `initdb` and `pg_ctl`: from `PATH` (symlinks resolved, so that
/// e.g. `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` gives the real
/// directory with `pg_isready` too), else the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> io::Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            if let Some(real) = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                if has_tools(&real) {
                    return Ok(real);
                }
            }
            if has_tools(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<f64>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some(((version * 100.0) as u32, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        other("PostgreSQL server binaries not found: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    })
}
