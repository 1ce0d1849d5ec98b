//! The batched writer of `audit.registry_credential.access` events.
//!
//! Resolution is a read on the hot path, so its events are not written in its own round trip:
//! [`BatchedAccessLog::record`] appends them to a bounded buffer shared with one writer task per
//! process, which writes whatever is buffered as one multi-row `INSERT` every
//! [`FLUSH_INTERVAL`] or every [`FLUSH_ROWS`] events, whichever comes first, and once more on
//! graceful shutdown. The writer is woken only when a batch begins or fills up, never per
//! event: a wake-up crosses threads (the writer runs on the main runtime, requests on the
//! workers'), and at thousands of resolutions a second a wake per event cost more than the rest
//! of the bookkeeping.
//!
//! Before a batch is written, the reveals of one credential to one actor are coalesced into one
//! event that counts them (`berth_domain::audit::coalesce_accesses`).
//!
//! Nothing is dropped silently: a full buffer makes `record` wait (up to [`ENQUEUE_WAIT`]),
//! and an event that still cannot be buffered, or a batch the database refuses twice, is
//! counted in `berth_audit_access_events_lost_total` and logged as an error. A crash loses at
//! most what was buffered and not yet written: [`FLUSH_INTERVAL`] of resolutions, at most
//! [`QUEUE_CAPACITY`] events (docs/OPERATIONS.md).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use berth_domain::audit::{AccessLog, AuditEvent, coalesce_accesses};
use berth_http::logging::error_chain;
use berth_persistence::SeaOrmAuditStore;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// The longest an access event waits in the buffer before it is written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// A batch is written as soon as it holds this many events.
pub(crate) const FLUSH_ROWS: usize = 500;
/// Events buffered at most; beyond it `record` waits for the writer.
pub(crate) const QUEUE_CAPACITY: usize = 10_000;
/// How long `record` waits for room in a full buffer before counting the event lost.
const ENQUEUE_WAIT: Duration = Duration::from_secs(2);
/// A pause before the one retry of a batch the database refused.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const LOST: &str = "berth_audit_access_events_lost_total";

/// What the recorders and the writer share.
#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer: a batch began, filled up, or the log is closing.
    writer: Notify,
    /// Wakes recorders waiting for room: the writer took a batch.
    room: Notify,
}

#[derive(Default)]
struct Buffer {
    events: Vec<AuditEvent>,
    /// Set at shutdown, after which nothing more is taken.
    closed: bool,
}

impl Shared {
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        // Held for a push or a swap only; a panic cannot leave the vector half-changed.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes everything buffered, and tells waiting recorders there is room.
    fn take(&self) -> Vec<AuditEvent> {
        let taken = std::mem::take(&mut self.buffer().events);
        self.room.notify_waiters();
        taken
    }
}

/// What the pull-secret service records through.
#[derive(Clone)]
pub(crate) struct BatchedAccessLog {
    shared: Arc<Shared>,
}

/// What became of an event offered to the buffer.
enum Offer {
    Buffered,
    /// The buffer is full: the event is handed back (boxed: the rare case stays small).
    Full(Box<AuditEvent>),
    /// The writer has stopped.
    Closed,
}

/// Why an event could not be kept.
enum Lost {
    Full,
    Closed,
}

impl BatchedAccessLog {
    /// Buffers `event`, waking the writer when it begins or fills a batch.
    fn offer(&self, event: AuditEvent) -> Offer {
        let mut buffer = self.shared.buffer();
        if buffer.closed {
            return Offer::Closed;
        }
        if buffer.events.len() >= QUEUE_CAPACITY {
            return Offer::Full(Box::new(event));
        }
        buffer.events.push(event);
        let buffered = buffer.events.len();
        drop(buffer);
        if buffered == 1 || buffered == FLUSH_ROWS {
            self.shared.writer.notify_one();
        }
        Offer::Buffered
    }

    /// Waits (up to [`ENQUEUE_WAIT`]) for room, then buffers `event`.
    async fn offer_waiting(&self, mut event: AuditEvent) -> Result<(), Lost> {
        let deadline = tokio::time::Instant::now() + ENQUEUE_WAIT;
        loop {
            // Registered before the buffer is looked at, so a batch taken in between still
            // wakes this recorder.
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            event = match self.offer(event) {
                Offer::Buffered => return Ok(()),
                Offer::Closed => return Err(Lost::Closed),
                Offer::Full(event) => *event,
            };
            self.shared.writer.notify_one();
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(Lost::Full);
            }
        }
    }
}

#[async_trait]
impl AccessLog for BatchedAccessLog {
    async fn record(&self, events: Vec<AuditEvent>) {
        for event in events {
            // Buffered at once when there is room (no timer on the hot path); else waited for.
            let kept = match self.offer(event) {
                Offer::Buffered => continue,
                Offer::Full(event) => self.offer_waiting(*event).await,
                Offer::Closed => Err(Lost::Closed),
            };
            match kept {
                Ok(()) => {}
                Err(Lost::Closed) => {
                    metrics::counter!(LOST).increment(1);
                    tracing::error!("an audit access event was lost: the writer has stopped");
                }
                Err(Lost::Full) => {
                    metrics::counter!(LOST).increment(1);
                    tracing::error!(
                        "an audit access event was lost: the writer's buffer stayed full"
                    );
                }
            }
        }
    }
}

/// The writer task and how to stop it, flushing what is buffered.
pub(crate) struct AccessLogWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AccessLogWriter {
    /// Starts the writer on the current runtime; returns the log to record through.
    pub(crate) fn start(store: SeaOrmAuditStore) -> (BatchedAccessLog, Self) {
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write_forever(store, shared.clone(), stopped));
        (BatchedAccessLog { shared }, Self { stop, task })
    }

    /// Writes what is buffered and stops (graceful shutdown).
    pub(crate) async fn shut_down(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the audit access writer ended abnormally");
        }
    }
}

async fn write_forever(
    store: SeaOrmAuditStore,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut stopping = false;
    while !stopping {
        // Wait for the first event of a batch (or the stop), then gather for at most the
        // flush interval or until the batch is full.
        tokio::select! {
            () = shared.writer.notified() => {}
            _ = &mut stopped => stopping = true,
        }
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while !stopping && shared.buffer().events.len() < FLUSH_ROWS {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                () = shared.writer.notified() => {}
                _ = &mut stopped => stopping = true,
            }
        }
        flush(&store, shared.take()).await;
    }
    // Shutting down: nothing more is taken, and what is still buffered is written.
    shared.buffer().closed = true;
    flush(&store, shared.take()).await;
}

/// Writes a batch, retrying once; what still fails is counted and logged as lost.
async fn flush(store: &SeaOrmAuditStore, batch: Vec<AuditEvent>) {
    if batch.is_empty() {
        return;
    }
    // One row per reader and credential per batch, its reveals counted (SPEC 7.4 records every
    // reveal; the rows are what the table can keep).
    let batch = coalesce_accesses(batch);
    // At most FLUSH_ROWS rows a statement: a slow database can let the buffer grow past it, and
    // a statement has a bounded number of parameters.
    for rows in batch.chunks(FLUSH_ROWS) {
        let mut outcome = store.insert_batch(rows).await;
        if outcome.is_err() {
            tokio::time::sleep(RETRY_PAUSE).await;
            outcome = store.insert_batch(rows).await;
        }
        if let Err(error) = outcome {
            metrics::counter!(LOST).increment(rows.len() as u64);
            tracing::error!(
                lost = rows.len(),
                error = %error_chain(&error),
                "audit access events could not be written"
            );
        }
    }
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

    /// An audit store on a fresh, migrated database (kept alive by the returned handle).
    async fn migrated_store() -> (TestDatabase, SeaOrmAuditStore) {
        let db = TestDatabase::new().await;
        let connection = berth_persistence::connect(db.url(), &PoolSettings::default())
            .await
            .unwrap();
        berth_persistence::migrate(&connection).await.unwrap();
        (db, SeaOrmAuditStore::new(connection))
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
        let (_db, store) = migrated_store().await;
        let (log, writer) = AccessLogWriter::start(store.clone());

        log.record((0..FLUSH_ROWS + 1).map(access).collect()).await;
        tokio::time::sleep(FLUSH_INTERVAL * 8).await;
        assert_eq!(stored(&store).await, (FLUSH_ROWS + 1) as u64);

        log.record((0..1_200).map(access).collect()).await;
        writer.shut_down().await;
        assert_eq!(stored(&store).await, (FLUSH_ROWS + 1 + 1_200) as u64);
    }

    /// More events at once than the buffer holds: `record` waits for the writer to make room,
    /// batches larger than a statement's worth are split, and every event is written.
    #[tokio::test]
    async fn a_full_buffer_makes_recording_wait_and_loses_nothing() {
        let (_db, store) = migrated_store().await;
        let (log, writer) = AccessLogWriter::start(store.clone());
        let total = QUEUE_CAPACITY * 2 + 7;
        let recorders = (0..4).map(|part| {
            let log = log.clone();
            tokio::spawn(async move {
                log.record((part..total).step_by(4).map(access).collect())
                    .await;
            })
        });
        for recorder in recorders {
            recorder.await.unwrap();
        }
        writer.shut_down().await;
        assert_eq!(stored(&store).await, total as u64);
    }

    /// A thousand reveals of one credential to one reader within a flush interval are one row
    /// that counts them; another reader's are another row.
    #[tokio::test]
    async fn the_reveals_of_one_batch_are_coalesced_per_reader_and_credential() {
        let (_db, store) = migrated_store().await;
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
