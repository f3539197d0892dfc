//! The server tests; see `server_e2e.rs`.

mod api;
mod app;
pub mod client;
mod compress_flag;
mod deflate;
mod eio3;
mod engine_api;
mod engine_io;
mod middleware;
mod node_client;
mod options;
mod recovery;
mod socket_io;
mod ws_close;
