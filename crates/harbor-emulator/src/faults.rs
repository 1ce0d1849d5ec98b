//! Fault injection: latency, a random error rate, failing the Nth call of a route, and cutting
//! the connection after the Nth call of a route did its work.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Make the `nth` call (counted from 1) of `route` (such as `POST /robots`) answer `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRule {
    pub route: String,
    pub nth: u64,
    pub status: u16,
}

/// Let the `nth` call of `route` do its work, then drop the connection without an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRule {
    pub route: String,
    pub nth: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API call.
    pub latency_ms: u64,
    /// Share of API calls (0.0 to 1.0) answered 503 before doing anything.
    pub error_rate: f64,
    pub fail: Vec<FailRule>,
    pub drop: Vec<DropRule>,
    /// Extra latency for one route, in milliseconds.
    pub route_latency_ms: HashMap<String, u64>,
}

/// The faults in force and how many calls each route has seen since they were set.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) faults: Faults,
    counts: HashMap<String, u64>,
}

/// What the faults decide for one call.
pub(crate) struct Verdict {
    pub(crate) delay_ms: u64,
    pub(crate) fail_with: Option<u16>,
    pub(crate) drop_after: bool,
}

impl FaultState {
    pub(crate) fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.counts.clear();
    }

    pub(crate) fn on_call(&mut self, route: &str) -> Verdict {
        let count = self.counts.entry(route.to_owned()).or_insert(0);
        *count += 1;
        let nth = *count;
        let faults = &self.faults;
        let mut fail_with = faults
            .fail
            .iter()
            .find(|rule| rule.route == route && rule.nth == nth)
            .map(|rule| rule.status);
        if fail_with.is_none() && faults.error_rate > 0.0 && random_unit() < faults.error_rate {
            fail_with = Some(503);
        }
        Verdict {
            delay_ms: faults.latency_ms + faults.route_latency_ms.get(route).copied().unwrap_or(0),
            fail_with,
            drop_after: faults
                .drop
                .iter()
                .any(|rule| rule.route == route && rule.nth == nth),
        }
    }
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 1.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
