#![doc = include_str!("../README.md")]

pub mod body;
pub mod caller;
pub mod head;
pub mod health;
pub mod logging;
pub mod one_time_secrets;
pub mod openapi;
pub mod ops;
pub mod prometheus;
pub mod routes;
pub mod state;
pub mod v1;
pub mod v3;
