//! The batched writer of `audit.registry_credential.access` events.
//!
//! Resolution is a read on the hot path, so its events are not written in its own round trip:
//! [`BatchedAccessLog::record`] queues them on a bounded channel, and one task per process
//! writes whatever is queued as one multi-row `INSERT` every [`FLUSH_INTERVAL`] or every
//! [`FLUSH_ROWS`] events, whichever comes first, and once more on graceful shutdown.
//!
//! Before a batch is written, the reveals of one credential to one actor are coalesced into one
//! event that counts them (`berth_domain::audit::coalesce_accesses`).
//!
//! Nothing is dropped silently: a full queue makes `record` wait (up to [`ENQUEUE_WAIT`]),
//! and an event that still cannot be queued, or a batch the database refuses twice, is
//! counted in `berth_audit_access_events_lost_total` and logged as an error. A crash loses at
//! most what was queued and not yet written: [`FLUSH_INTERVAL`] of resolutions, at most
//! [`QUEUE_CAPACITY`] events (docs/OPERATIONS.md).

use std::time::Duration;

use async_trait::async_trait;
use berth_domain::audit::{AccessLog, AuditEvent, coalesce_accesses};
use berth_http::logging::error_chain;
use berth_persistence::SeaOrmAuditStore;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The longest an access event waits in the queue before it is written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// A batch is written as soon as it holds this many events.
pub(crate) const FLUSH_ROWS: usize = 500;
/// Events queued at most; beyond it `record` waits for the writer.
pub(crate) const QUEUE_CAPACITY: usize = 10_000;
/// How long `record` waits for room in a full queue before counting the event lost.
const ENQUEUE_WAIT: Duration = Duration::from_secs(2);
/// A pause before the one retry of a batch the database refused.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const LOST: &str = "berth_audit_access_events_lost_total";

/// The queue's sending end: what the pull-secret service records through.
#[derive(Clone)]
pub(crate) struct BatchedAccessLog {
    queue: mpsc::Sender<AuditEvent>,
}

#[async_trait]
impl AccessLog for BatchedAccessLog {
    async fn record(&self, events: Vec<AuditEvent>) {
        for event in events {
            // Queued at once when there is room (no timer on the hot path); else waited for.
            let event = match self.queue.try_send(event) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(event)) => event,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    metrics::counter!(LOST).increment(1);
                    tracing::error!("an audit access event was lost: the writer has stopped");
                    continue;
                }
            };
            let queued = tokio::time::timeout(ENQUEUE_WAIT, self.queue.send(event)).await;
            if !matches!(queued, Ok(Ok(()))) {
                metrics::counter!(LOST).increment(1);
                tracing::error!("an audit access event was lost: the writer's queue stayed full");
            }
        }
    }
}

/// The writer task and how to stop it, flushing what is queued.
pub(crate) struct AccessLogWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AccessLogWriter {
    /// Starts the writer on the current runtime; returns the log to record through.
    pub(crate) fn start(store: SeaOrmAuditStore) -> (BatchedAccessLog, Self) {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write_forever(store, receiver, stopped));
        (BatchedAccessLog { queue }, Self { stop, task })
    }

    /// Writes what is queued and stops (graceful shutdown).
    pub(crate) async fn shut_down(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the audit access writer ended abnormally");
        }
    }
}

async fn write_forever(
    store: SeaOrmAuditStore,
    mut queue: mpsc::Receiver<AuditEvent>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(FLUSH_ROWS);
    loop {
        // Wait for the first event of a batch (or the stop), then gather for at most the
        // flush interval or until the batch is full.
        tokio::select! {
            received = queue.recv() => match received {
                Some(event) => batch.push(event),
                None => break,
            },
            _ = &mut stopped => break,
        }
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while batch.len() < FLUSH_ROWS {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(event)) => batch.push(event),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&store, &mut batch).await;
    }
    // Shutting down: whatever is still queued goes in last batches.
    queue.close();
    while let Some(event) = queue.recv().await {
        batch.push(event);
        if batch.len() >= FLUSH_ROWS {
            flush(&store, &mut batch).await;
        }
    }
    flush(&store, &mut batch).await;
}

/// Writes a batch, retrying once; what still fails is counted and logged as lost.
async fn flush(store: &SeaOrmAuditStore, batch: &mut Vec<AuditEvent>) {
    if batch.is_empty() {
        return;
    }
    // One row per reader and credential per batch, its reveals counted (SPEC 7.4 records every
    // reveal; the rows are what the table can keep).
    *batch = coalesce_accesses(std::mem::take(batch));
    let mut outcome = store.insert_batch(batch).await;
    if outcome.is_err() {
        tokio::time::sleep(RETRY_PAUSE).await;
        outcome = store.insert_batch(batch).await;
    }
    if let Err(error) = outcome {
        metrics::counter!(LOST).increment(batch.len() as u64);
        tracing::error!(
            lost = batch.len(),
            error = %error_chain(&error),
            "audit access events could not be written"
        );
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use berth_domain::audit::{
        AuditActor, AuditData, AuditEventStore, AuditEventType, AuditQuery, AuditTarget,
    };
    use berth_domain::listing::PageRequest;
    use berth_domain::permissions::AuditVisibility;
    use berth_persistence::PoolSettings;
    use berth_testkit::TestDatabase;

    use super::*;

    fn access(index: usize) -> AuditEvent {
        access_by(index, "system")
    }

    fn access_by(index: usize, reader: &str) -> AuditEvent {
        AuditEvent::new(
            &berth_domain::ambient::Ambient::system(),
            AuditEventType::CredentialAccess,
            AuditActor::new(reader, "user", reader),
            AuditTarget::new(index, "registry_credential", "r.io"),
            AuditData::new(),
        )
    }

    async fn stored(store: &SeaOrmAuditStore) -> u64 {
        let query = AuditQuery {
            visibility: AuditVisibility::Everything,
            page: PageRequest::new(1, 1).unwrap(),
            ..AuditQuery::default()
        };
        store.list(&query).await.unwrap().total_results
    }

    /// A full batch is written at once, a short one within the flush interval, and what is
    /// still queued at shutdown before the writer stops: nothing recorded is lost.
    #[tokio::test]
    async fn queued_events_are_written_in_batches_and_at_shutdown() {
        let db = TestDatabase::new().await;
        let connection = berth_persistence::connect(db.url(), &PoolSettings::default())
            .await
            .unwrap();
        berth_persistence::migrate(&connection).await.unwrap();
        let store = SeaOrmAuditStore::new(connection);
        let (log, writer) = AccessLogWriter::start(store.clone());

        log.record((0..FLUSH_ROWS + 1).map(access).collect()).await;
        tokio::time::sleep(FLUSH_INTERVAL * 8).await;
        assert_eq!(stored(&store).await, (FLUSH_ROWS + 1) as u64);

        log.record((0..1_200).map(access).collect()).await;
        writer.shut_down().await;
        assert_eq!(stored(&store).await, (FLUSH_ROWS + 1 + 1_200) as u64);
    }

    /// A thousand reveals of one credential to one reader within a flush interval are one row
    /// that counts them; another reader's are another row.
    #[tokio::test]
    async fn the_reveals_of_one_batch_are_coalesced_per_reader_and_credential() {
        let db = TestDatabase::new().await;
        let connection = berth_persistence::connect(db.url(), &PoolSettings::default())
            .await
            .unwrap();
        berth_persistence::migrate(&connection).await.unwrap();
        let store = SeaOrmAuditStore::new(connection);
        let (log, writer) = AccessLogWriter::start(store.clone());
        log.record(
            (0..400)
                .map(|_| access_by(7, "deployer"))
                .chain((0..3).map(|_| access_by(7, "auditor")))
                .collect(),
        )
        .await;
        writer.shut_down().await;
        assert_eq!(stored(&store).await, 2);
        let query = AuditQuery {
            visibility: AuditVisibility::Everything,
            page: PageRequest::new(1, 10).unwrap(),
            ..AuditQuery::default()
        };
        let mut counts: Vec<(String, String)> = store
            .list(&query)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|event| {
                let reveals = event
                    .data
                    .entries()
                    .find(|(key, _)| key.as_str() == "reveals")
                    .map(|(_, value)| format!("{value:?}"))
                    .unwrap_or_default();
                (event.actor.guid, reveals)
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("auditor".to_owned(), "Integer(3)".to_owned()),
                ("deployer".to_owned(), "Integer(400)".to_owned()),
            ]
        );
    }
}
