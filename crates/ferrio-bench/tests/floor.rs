//! The floor server (`ferrio-floor`) answers the real `socket.io-client` as the bench servers
//! do: acked echo, binary echo, rooms and broadcasts, over WebSocket and long-polling.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The started floor server, killed when dropped.
struct Floor(Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn floor_answers_the_real_client_like_the_bench_servers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let modules = root.join("tests/node/node_modules");
    assert!(
        modules.join("socket.io-client").is_dir(),
        "run `npm ci` in tests/node first"
    );
    let port = free_port();
    let mut floor = Floor(
        Command::new(env!("CARGO_BIN_EXE_ferrio-floor"))
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(floor.0.try_wait().unwrap().is_none(), "the floor exited");
        assert!(Instant::now() < deadline, "the floor did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("node")
        .arg(root.join("crates/ferrio-bench/tests/floor-client.js"))
        .arg(format!("http://127.0.0.1:{port}"))
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"websocket echo {"text":"hi","list":[1,"]"]}"#,
            "websocket echo_bin true [1,2,3]",
            "websocket join true",
            "websocket to_room true",
            "websocket broadcast true",
            r#"websocket received [[{"x":1}],["all"]]"#,
            r#"polling echo {"text":"hi","list":[1,"]"]}"#,
            "polling join true",
            "polling to_room true",
            "polling broadcast true",
            r#"polling received [[{"x":1}],["all"]]"#,
        ]
    );
    drop(floor);
}
