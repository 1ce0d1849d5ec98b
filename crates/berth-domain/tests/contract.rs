//! The store contract on the in-memory adapters.

use berth_domain::contract::Stores;
use berth_domain::memory::MemoryDatabase;

async fn memory_stores() -> ((), Stores) {
    ((), Stores::memory(&MemoryDatabase::new()))
}

berth_domain::store_contract_tests!(memory_stores);
