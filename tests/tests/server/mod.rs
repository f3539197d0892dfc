//! The server tests; see `server_e2e.rs`.

pub mod client;
mod engine_io;
mod socket_io;
mod recovery;
