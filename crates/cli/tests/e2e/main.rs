//! End-to-end tests: real `sitesync` processes (a primary and satellites) on loopback,
//! each in its own temporary data folder, checked from the outside through the CLI and
//! the local HTTP API.

mod harness;

mod accounts;
mod admin;
mod api;
mod bench;
mod converge;
mod counters;
mod crash;
mod disk;
mod errors;
mod exact;
mod files;
mod hostile;
mod invariants;
mod kills;
mod licences;
mod live;
mod mail;
mod names;
mod portal;
mod postgres;
mod postgres_faults;
mod proxy;
mod restart;
mod restore;
mod routing;
mod secrets;
mod skew;
mod tls;
mod token;
mod typed;
