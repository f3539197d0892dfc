//! Ferrio's cross-implementation tests. The tests live in `tests/`; this library holds the helpers
//! they share for running the reference JavaScript packages installed in `node/`.
//!
//! Before running them: `cd tests/node && npm ci`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The folder holding `package.json` and the oracle scripts.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `node <script>` in [`node_dir`] with `input` on its standard input and returns its
/// standard output.
///
/// # Panics
/// With a message saying what to do when `node_modules` is missing, when `node` cannot be
/// started, or when the script fails.
pub fn run_node_script(script: &str, input: &[u8]) -> Vec<u8> {
    let dir = node_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "{} has no node_modules: run npm ci in tests/node",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node (is Node.js 20 installed?): {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // Write from another thread so that a large output cannot dead-lock against a large input.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("node runs");
    writer
        .join()
        .expect("writer thread")
        .expect("writing to node");
    assert!(
        output.status.success(),
        "node {script} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
