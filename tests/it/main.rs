//! Integration tests: the real binary, on ephemeral ports, against in-process mock Ollamas.
//! Each test asserts on what the client got and on what the upstream received.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apps;
mod auth;
mod bodies;
mod cache;
mod cluster;
mod config_cli;
mod dashboard;
mod errors;
mod failover;
mod feedback;
mod forwarding;
mod harness;
mod limits;
mod local_endpoints;
mod logs;
mod metrics;
mod profiling;
mod routing;
mod service;
mod store;
mod streaming;
mod vram;
