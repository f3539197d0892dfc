//! `wasm-bindgen`: the upstream command line tool's own entry point (the `wasm-bindgen` binary
//! of `wasm-bindgen-cli`), built against this directory's pinned dependencies.

use std::{env, process};

fn main() {
    env_logger::init();
    if let Err(e) = wasm_bindgen_cli::wasm_bindgen::run_cli_with_args(env::args_os()) {
        eprintln!("error: {e:?}");
        process::exit(1);
    }
}
