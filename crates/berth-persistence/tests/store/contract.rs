//! The store contract (`berth_domain::contract`) on the sea-orm stores, over the backend
//! `BERTH_TEST_BACKEND` names: the same suite the in-memory adapters pass.

use std::sync::Arc;

use berth_domain::contract::Stores;
use berth_persistence::{SeaOrmAuditStore, SeaOrmIdempotencyStore, SeaOrmRegistryStore};

use crate::{Harness, ring};

async fn sea_orm_stores() -> (Harness, Stores) {
    let (keys, _) = ring(&["k1"], "k1");
    let harness = Harness::new(keys.clone()).await;
    let audit = SeaOrmAuditStore::new(harness.connection.clone());
    let stores = Stores {
        credentials: Arc::new(harness.credentials.clone()),
        directory: Arc::new(harness.directory.clone()),
        registries: Arc::new(SeaOrmRegistryStore::new(
            harness.connection.clone(),
            keys.clone(),
        )),
        idempotency: Arc::new(SeaOrmIdempotencyStore::new(
            harness.connection.clone(),
            keys,
        )),
        audit_events: Arc::new(audit.clone()),
        // The unbatched log: its events are readable when `record` returns.
        access_log: Arc::new(audit),
    };
    (harness, stores)
}

berth_domain::store_contract_tests!(sea_orm_stores);
