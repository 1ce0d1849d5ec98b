#![doc = include_str!("../README.md")]

pub mod auth;
pub mod authn;
pub mod body;
pub mod cli;
pub mod config;
pub mod dev;
pub mod head;
pub mod health;
pub mod openapi;
pub mod prometheus;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod v1;
pub mod v3;
