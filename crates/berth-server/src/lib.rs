#![doc = include_str!("../README.md")]

pub mod cli;
pub mod config;
pub mod dev;
pub mod healthcheck;
pub mod startup;
pub mod telemetry;
