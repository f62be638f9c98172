//! `sitesync serve`: the node's HTTP server and background tasks, until stopped.

use crate::api;
use crate::config::{DataDir, Role};
use crate::credentials::Credentials;
use crate::error::NodeError;
use crate::lock::ServeLock;
use crate::node::{Node, Shared};
use crate::primary;
use crate::replay::Freshness;
use crate::running::Running;
use crate::satellite::Agent;
use crate::site::Site;
use crate::tls;
use sitesync_store::LocalFeed;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

/// Opens a node on the site in `dir` (for `serve`, and for commands that need one).
pub fn open(dir: DataDir) -> Result<Shared, NodeError> {
    open_listening(dir, None)
}

/// Opens a node that listens on `listen` instead of the address `config.toml` names
/// (`serve --listen`: another process of a primary whose state is in PostgreSQL).
pub fn open_listening(dir: DataDir, listen: Option<String>) -> Result<Shared, NodeError> {
    let mut site = Site::open(dir)?;
    if let Some(listen) = listen {
        site.config.listen = listen;
    }
    let api_token_required = !is_loopback(&site.config.listen);
    let (pushes, push_queue) = tokio::sync::mpsc::channel(1024);
    let shared = shared_state(&site)?;
    Ok(Arc::new(Node {
        site: Arc::new(site),
        changes: shared.changes,
        local_write: Notify::new(),
        api_token_required,
        stopping: AtomicBool::new(false),
        contacts: Default::default(),
        polling: Default::default(),
        pushes,
        push_queue: Mutex::new(Some(push_queue)),
        attempts: Default::default(),
        fresh: shared.fresh,
        credentials: shared.credentials,
    }))
}

/// What the processes serving one primary share: in this process's memory when its
/// state is in its data folder (one process serves it), through PostgreSQL when it is
/// there (several may): wake-ups by notification, nonces in a table, and credentials
/// read again each second, so a revoked site is refused by every process within one.
struct SharedState {
    changes: Box<dyn sitesync_store::ChangeFeed>,
    fresh: Box<dyn sitesync_store::NonceLog>,
    credentials: Box<dyn sitesync_store::CredentialCache>,
}

fn shared_state(site: &Site) -> Result<SharedState, NodeError> {
    let local = Freshness::new(crate::node::now_ms());
    match (&site.config.database, site.config.role) {
        (Some(url), Role::Primary) => Ok(SharedState {
            changes: Box::new(sitesync_postgres::PgFeed::start(url)?),
            fresh: Box::new(crate::replay::SharedNonces::new(
                local,
                sitesync_postgres::PgStore::open(url)?,
            )),
            credentials: Box::new(Credentials::fresh_for(crate::credentials::SHARED_FRESH_FOR)),
        }),
        _ => Ok(SharedState {
            changes: Box::new(LocalFeed::default()),
            fresh: Box::new(local),
            credentials: Box::new(Credentials::default()),
        }),
    }
}

/// The TLS certificate chain and key a primary serves with (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `config.toml` names (made by `init primary --self-signed`), if any.
    pub fn configured(site: &Site) -> Option<TlsFiles> {
        let (cert, key) = (
            site.config.tls_cert.as_ref()?,
            site.config.tls_key.as_ref()?,
        );
        Some(TlsFiles {
            cert: site.dir.resolve(cert),
            key: site.dir.resolve(key),
        })
    }

    /// The fingerprint of the certificate (the first of the chain).
    pub fn fingerprint(&self) -> Result<String, NodeError> {
        let chain = tls::load_certs(&self.cert)?;
        Ok(chain
            .first()
            .map(|c| tls::fingerprint(c))
            .unwrap_or_default())
    }
}

/// Serves until `shutdown` completes: the sync API on the primary (over TLS when
/// `tls` is given), the local API on every site, and on a satellite the live sync
/// agent. `ready` receives the address actually bound (useful with port 0).
pub async fn serve(
    node: Shared,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), NodeError> {
    // The certificate `init primary --self-signed` made: sites pin it, so the portal's
    // enrolment command names its fingerprint.
    let pin = match (&tls, TlsFiles::configured(&node.site)) {
        (Some(files), Some(made)) if files.cert == made.cert => Some(files.fingerprint()?),
        _ => None,
    };
    let tls = match tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            &files.cert,
            &files.key,
        )?)),
        None => None,
    };
    // After the TLS files are read, so a wrong one is said first. A primary whose
    // state is in PostgreSQL may be served by several processes, from one folder too.
    let _lock = match node.site.config.database {
        Some(_) => None,
        None => Some(ServeLock::take(&node.site.dir)?),
    };
    let listen = node.site.config.listen.clone();
    let listener = bind(&listen)
        .await
        .map_err(|e| NodeError::Internal(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Internal(e.to_string()))?;
    let running = serde_json::to_vec(&Running {
        pid: std::process::id(),
        addr,
    })
    .unwrap_or_default();
    crate::config::write_private(&node.site.dir.serve_path(), &running)?;
    let mut app = api::routes(node.clone());
    if node.site.is_primary() {
        app = app.merge(primary::routes());
    } else {
        app = app.route("/sync/v1/{*path}", axum::routing::any(not_a_primary));
    }
    let mut app = app.with_state(node.clone());
    if node.site.is_primary() {
        // The cloud account's portal, at the root of the primary's address.
        let woken = node.clone();
        let changed = Arc::new(move || {
            woken.credentials.forget_all();
            woken.notify_changed();
        });
        let https = tls.is_some();
        app = app.merge(sitesync_portal::routes(
            node.site.clone(),
            (https, pin),
            changed,
        ));
    }
    let (agent, contacts) = match node.site.config.role {
        Role::Satellite => {
            let agent = Arc::new(Agent::new(node.clone())?);
            let org = node.site.config.org_id.unwrap_or_default();
            let files = crate::files::lane(node.clone(), agent.client().clone(), org);
            (Some(tokio::spawn(agent.run())), Some(tokio::spawn(files)))
        }
        Role::Primary => {
            let queue = node
                .push_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(queue) = queue {
                tokio::spawn(crate::commit::run(node.clone(), queue));
            }
            tokio::spawn(crate::files::sweeper(node.clone()));
            (
                None,
                Some(tokio::spawn(crate::node::flush_contacts(node.clone()))),
            )
        }
    };
    tracing::info!(%addr, role = ?node.site.config.role, site = node.site.config.site_id, "serving");
    ready(addr);
    let stopper = node.clone();
    run_server(listener, app, tls, async move {
        shutdown.await;
        tracing::info!("stopping");
        stopper.stop();
    })
    .await;
    if let Some(agent) = agent {
        agent.abort();
    }
    if let Some(contacts) = contacts {
        // The primary's sees `stopping` and writes what it holds one last time; a
        // satellite's file lane stops between chunks (a chunk is written whole or not).
        match node.site.config.role {
            Role::Primary => {
                let _ = contacts.await;
            }
            Role::Satellite => contacts.abort(),
        }
    }
    // Another process serving the same folder may have written it since.
    if Running::read(&node.site.dir).is_some_and(|r| r.pid == std::process::id()) {
        let _ = std::fs::remove_file(node.site.dir.serve_path());
    }
    Ok(())
}

/// What a satellite answers on the sync API's paths: someone gave its address as the
/// primary's (to `init satellite --primary`, or `settings set primary-url`).
async fn not_a_primary(axum::extract::State(node): axum::extract::State<Shared>) -> NodeError {
    let config = &node.site.config;
    NodeError::NotFound(format!(
        "this address is a satellite (site {} of {:?}), not a primary: give the primary's address",
        config.site_id,
        config.org_name.clone().unwrap_or_default()
    ))
}

/// How long a client may take to send a request's headers (and, between requests on
/// a kept-alive connection, to start the next one) before its connection is closed: a
/// client that trickles bytes to hold connections open is cut off.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1 connections until `shutdown` completes, then lets each finish what it
/// is answering. Like `axum::serve`, with [`HEADER_TIMEOUT`], no Nagle delay (answers
/// are small and latency matters more than packet count), the peer's address for
/// handlers that count failed attempts, and TLS when `tls` is given.
async fn run_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            peer,
            stopped: stopped.clone(),
        };
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(tls) => connection.serve_tls(stream, tls).await,
                None => connection.serve(stream).await,
            }
        });
        // Reap finished connections as we go, so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// One accepted connection.
struct Connection {
    app: axum::Router,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
}

/// The first byte of a TLS handshake.
const TLS_HANDSHAKE: u8 = 0x16;

impl Connection {
    /// Serves over TLS, or plain HTTP from this machine (the CLI's nudges and local
    /// scripts); plain HTTP from elsewhere gets a short answer saying to use https.
    async fn serve_tls(self, stream: TcpStream, tls: TlsAcceptor) {
        let mut first = [0u8; 1];
        match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
                match tokio::time::timeout(HEADER_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => self.serve(stream).await,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
            Ok(Ok(1)) if self.peer.ip().is_loopback() => self.serve(stream).await,
            Ok(Ok(1)) => {
                tracing::debug!(peer = %self.peer, "plain HTTP refused: this primary serves TLS");
                let mut stream = stream;
                let body = r#"{"code":"tls_required","error":"this primary serves TLS: use an https:// URL"}"#;
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, answer.as_bytes()).await;
            }
            _ => {}
        }
    }

    /// Serves HTTP/1 on `io` until the client leaves or the server stops.
    async fn serve<IO>(self, io: IO)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            peer,
            mut stopped,
        } = self;
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request)
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = stopped.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Connections that may wait to be accepted: thousands of satellites reconnect at once
/// after a primary restarts (the usual default of 1,024 would refuse some of them).
const BACKLOG: u32 = 8_192;

/// Listens on `listen` (an address or `host:port`) with a deep accept queue.
async fn bind(listen: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(listen)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Whether an address to listen on is loopback only.
pub fn is_loopback(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen.starts_with("localhost:"),
    }
}
