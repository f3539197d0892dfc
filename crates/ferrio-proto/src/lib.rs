#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod date;
pub mod engine;
mod fifo;
#[cfg(feature = "arbitrary")]
mod fuzzing;
mod js;
mod outputs;
pub mod rooms;
mod scan;
pub mod socket;
mod str;
mod time;
#[cfg(feature = "deflate")]
pub mod ws_deflate;

pub use crate::str::Str;
pub use crate::time::Instant;
