//! The satellites that run in this process: each a real satellite with its own data
//! folder, its writes committed to its database and outbox as the local API commits
//! them, and the node's own sync agent ([`Agent`], driving the sans-IO session in its
//! live push and pull lanes) carrying them to the primary and pulling the others'.
//!
//! The agent reaches the primary through [`Counted`], the HTTP client behind the
//! transport seam, which counts what the pulls brought for the figures.

use super::writes::{Notes, Write, note_all};
use super::{BATCH, PUSH_EVERY, paced};
use crate::BenchError;
use crate::harness::Cluster;
use sitesync_core::{OrgId, SiteId, StoreId};
use sitesync_node::client::Client;
use sitesync_node::init::{SatelliteOptions, init_satellite};
use sitesync_node::satellite::Agent;
use sitesync_node::tls::Trust;
use sitesync_node::transport::{Started, Transport};
use sitesync_node::{DataDir, NodeError, Shared, now_ms};
use sitesync_protocol::{
    EnrolRequest, EnrolResponse, PullQuery, PullResponse, PushRequest, PushResponse,
};
use sitesync_sim::Rng;
use sitesync_store::LocalWrite;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::task::JoinHandle;

/// What the agents' pulls received.
#[derive(Clone, Default)]
pub(crate) struct Pulls {
    pub(crate) records: Arc<AtomicU64>,
    pub(crate) failed: Arc<AtomicU64>,
}

impl Pulls {
    fn count(&self, answer: &Result<PullResponse, NodeError>) {
        match answer {
            Ok(page) => self
                .records
                .fetch_add(page.records.len() as u64, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The HTTP client, counting what the pulls brought.
#[derive(Clone)]
pub(crate) struct Counted {
    client: Client,
    pulls: Pulls,
}

impl Transport for Counted {
    async fn push(&self, request: &PushRequest) -> Result<PushResponse, NodeError> {
        self.client.push(request).await
    }

    async fn pull(&self, query: &PullQuery) -> Result<PullResponse, NodeError> {
        let answer = self.client.pull(query).await;
        self.pulls.count(&answer);
        answer
    }

    async fn start_pull(&self, query: &PullQuery) -> Result<Started, NodeError> {
        let started = Transport::start_pull(&self.client, query).await;
        let started = match started {
            Ok(started) => started,
            Err(e) => {
                self.pulls.failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let (pulls, page) = (self.pulls.clone(), started.page);
        Ok(Started {
            next: started.next,
            page: Box::pin(async move {
                let answer = page.await;
                pulls.count(&answer);
                answer
            }),
        })
    }

    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, NodeError> {
        self.client.enrol(request).await
    }

    fn traffic(&self) -> (u64, u64) {
        self.client.traffic()
    }
}

/// A satellite in this process, its agent running.
pub(crate) struct Satellite {
    /// Its name as a writer.
    pub(crate) name: String,
    pub(crate) site: SiteId,
    pub(crate) org: OrgId,
    /// The store it holds besides the organisation-wide records.
    pub(crate) store: StoreId,
    pub(crate) node: Shared,
    agent: JoinHandle<()>,
}

impl Satellite {
    /// Enrols satellite `name` holding `store` in a new data folder under `root` (as
    /// `sitesync init satellite` does) and starts its agent.
    pub(crate) async fn start(
        cluster: &Cluster,
        root: &Path,
        name: String,
        (store, store_name): (StoreId, &str),
        pulls: Pulls,
    ) -> Result<Satellite, BenchError> {
        let dir = DataDir::new(root.join(&name));
        let options = SatelliteOptions {
            primary_url: cluster.url.clone(),
            sync_key: cluster.sync_key.clone(),
            site_id: None,
            name: Some(name.clone()),
            stores: vec![store_name.to_string()],
            all_stores: false,
            listen: "127.0.0.1:0".into(),
            auth_code: None,
            ca: None,
            tls_fingerprint: None,
        };
        let enrolled = init_satellite(&dir, options).await?;
        let secret = dir
            .read_secret(&dir.site_key_path())
            .map_err(NodeError::from)?;
        let (site, org) = (enrolled.site_id, enrolled.organisation.map(|o| o.id));
        let org =
            org.ok_or_else(|| BenchError::Failed("enrolled without an organisation".into()))?;
        let client = Client::new(&cluster.url, &Trust::System)?.with_credential(site, &secret);
        let node = sitesync_node::serve::open(dir)?;
        let agent = Agent::with_transport(node.clone(), Counted { client, pulls });
        let agent = tokio::spawn(Arc::new(agent).run());
        Ok(Satellite {
            name,
            site,
            org,
            store,
            node,
            agent,
        })
    }

    /// Its database file.
    pub(crate) fn db_path(&self) -> std::path::PathBuf {
        self.node.site.dir.db_path()
    }

    /// Commits batches of writes until `deadline` at a steady pace from `first`, each
    /// batch in one transaction with its outbox entries, then wakes the agent's pusher,
    /// as a local write does.
    pub(crate) async fn write_until(
        &self,
        notes: Notes,
        first: Instant,
        deadline: Instant,
    ) -> Result<(), BenchError> {
        let mut pace = paced(first, PUSH_EVERY);
        let mut rng = Rng::new(u64::from(self.site) * 7_919);
        let mut n = 0;
        while pace.tick().await.into_std() < deadline {
            let first = n + 1;
            let writes: Vec<Write> = (first..first + BATCH)
                .map(|seq| Write::pick(&mut rng, &self.name, seq, self.store))
                .collect();
            let batch = writes
                .iter()
                .map(|w| {
                    let put = LocalWrite::Put {
                        store: w.store,
                        fields: w.fields.clone(),
                    };
                    (w.collection.to_string(), w.id.clone(), put)
                })
                .collect();
            let (node, org, site) = (self.node.clone(), self.org, self.site);
            tokio::task::spawn_blocking(move || -> Result<_, BenchError> {
                let storage = node.site.satellite().map_err(NodeError::from)?;
                Ok(storage.write_local_batch(org, batch, site, now_ms(), true)?)
            })
            .await
            .map_err(super::failed)??;
            self.node.notify_changed();
            note_all(&notes, &self.name, &writes, first);
            n += BATCH;
        }
        Ok(())
    }

    /// Stops its agent.
    pub(crate) fn stop(&self) {
        self.node.stop();
        self.agent.abort();
    }
}

impl Drop for Satellite {
    fn drop(&mut self) {
        self.stop();
    }
}
