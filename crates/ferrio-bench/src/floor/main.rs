//! `ferrio-floor`: the floor of the server benchmarks. It answers the very frames the
//! Socket.IO bench servers answer (the contract of `crates/ferrio-server/examples/bench.rs`)
//! with the least work a server can do for the same traffic: tokio and tungstenite, string
//! handling only (no Socket.IO library, no JSON parse: the ack id and the arguments are found
//! by scanning the text), one task per connection, and a broadcast frame built once and shared
//! by every receiver. `ferrio-bench` reports each Socket.IO server's CPU above this floor.
//!
//! 127.0.0.1:$PORT (default 3000), any path. It runs on a current-thread tokio runtime: on
//! the benchmark's loopback traffic that is the least CPU per operation (the multi-threaded
//! runtime adds the wake-ups of its workers, mostly kernel time). `FLOOR_WORKERS=N` runs it
//! on N workers of the multi-threaded runtime instead (`0`: one per core, tokio's default),
//! to see what the runtime's threads cost. `FLOOR_READ_BUFFER=N` reads each WebSocket N bytes
//! at a time instead of 4 KiB (e.g. 65536, to compare with a server that reads large messages
//! in larger reads; each connection then holds that much while it lives).
//!
//! | client sends | floor sends |
//! |---|---|
//! | WebSocket upgrade, or a polling GET without `sid` | the Engine.IO open packet `0{...}` |
//! | `40` | `40{"sid":...}` (other namespaces: `44<nsp>,{...}`) |
//! | (every 25 s) | ping `2` |
//! | `42<id>["echo",args]` | `43<id>[args]` |
//! | `45<n>-<id>["echo_bin",args]` + n binary frames | `46<n>-<id>[args]` + the same n frames |
//! | `42[<id>]["broadcast",args]` | `42["msg",args]` to every socket, then `43<id>[true]` if asked |
//! | `42<id>["join",room]` | joins `room`, `43<id>[true]` |
//! | `42[<id>]["to_room",room,args]` | `42["msg",args]` to every socket in `room`, then `43<id>[true]` if asked |
//!
//! Long-polling is the minimal kind: HTTP/1.1 keep-alive, requests read one after the other
//! on each connection (a session's requests may come on any connection), a session ends on
//! a close packet or an unanswered ping; no upgrade from polling, no binary over polling.
//! WebSocket compression is not offered; a WebSocket gets pings but no ping timeout (its
//! session ends with its connection).

mod frames;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use frames::Packet;

/// The ping interval of the open packet (the Socket.IO default).
const PING_INTERVAL: Duration = Duration::from_secs(25);

/// How long a polling session waits for the answer to a ping (the Socket.IO default).
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// The largest POST body and WebSocket message (the servers' `maxHttpBufferSize`, 1 MB).
const MAX_BODY: usize = 1_000_000;

/// The WebSocket read buffer (tungstenite's default is 128 KiB, allocated per connection;
/// larger messages grow it as they come).
const READ_BUFFER: usize = 4 * 1024;

/// The WebSocket read buffer: [`READ_BUFFER`], or `FLOOR_READ_BUFFER` bytes when set.
fn read_buffer() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("FLOOR_READ_BUFFER")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(READ_BUFFER)
    })
}

/// Frames a socket takes from its queue before flushing.
const BATCH: usize = 256;

/// Locks `m`, poisoned or not (no lock is held across a panic that matters here).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A long-polling session's outgoing packets.
#[derive(Default)]
struct Session {
    queue: Mutex<Vec<Utf8Bytes>>,
    ready: Notify,
}

impl Session {
    fn push(&self, frame: Utf8Bytes) {
        lock(&self.queue).push(frame);
        self.ready.notify_one();
    }
}

/// Where broadcasts to a connected socket go.
#[derive(Clone)]
enum Peer {
    Ws(mpsc::UnboundedSender<Message>),
    Poll(Arc<Session>),
}

impl Peer {
    fn deliver(&self, frame: &Utf8Bytes) {
        match self {
            Peer::Ws(tx) => {
                let _ = tx.send(Message::Text(frame.clone()));
            }
            Peer::Poll(session) => session.push(frame.clone()),
        }
    }
}

/// The sockets connected to `/` and the rooms.
#[derive(Default)]
struct State {
    next: AtomicU64,
    peers: RwLock<HashMap<u64, Peer>>,
    rooms: Mutex<HashMap<String, HashSet<u64>>>,
    sessions: Mutex<HashMap<String, Arc<PollSession>>>,
}

impl State {
    fn emit_all(&self, frame: Utf8Bytes) {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        for peer in peers.values() {
            peer.deliver(&frame);
        }
    }

    fn emit_room(&self, room: &str, frame: Utf8Bytes) {
        let members: Vec<u64> = match lock(&self.rooms).get(room) {
            Some(m) => m.iter().copied().collect(),
            None => return,
        };
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        for id in members {
            if let Some(peer) = peers.get(&id) {
                peer.deliver(&frame);
            }
        }
    }
}

/// A BINARY_EVENT waiting for its attachments.
struct PendingBinary {
    header: String,
    want: usize,
    got: Vec<Bytes>,
}

/// One Engine.IO session and its socket on `/`.
struct Socket {
    id: u64,
    sid: String,
    peer: Peer,
    connected: bool,
    rooms: Vec<String>,
    binary: Option<PendingBinary>,
    state: Arc<State>,
}

impl Socket {
    fn new(state: &Arc<State>, peer: Peer) -> Socket {
        let id = state.next.fetch_add(1, Ordering::Relaxed);
        Socket {
            id,
            sid: format!("floor{id:012x}"),
            peer,
            connected: false,
            rooms: Vec::new(),
            binary: None,
            state: state.clone(),
        }
    }

    /// Handles one Engine.IO text packet; this socket's answers go to `out`.
    fn on_text(&mut self, text: &str, out: &mut Vec<Message>) {
        let Some(sio) = text.strip_prefix('4') else {
            // Pongs (`3`), noops and everything else need no answer.
            return;
        };
        match frames::parse(sio) {
            Packet::Connect { nsp: "/" } => {
                if !self.connected {
                    self.connected = true;
                    self.state
                        .peers
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(self.id, self.peer.clone());
                }
                out.push(Message::text(frames::connect_reply(&format!(
                    "s{}",
                    self.sid
                ))));
            }
            Packet::Connect { nsp } => out.push(Message::text(frames::connect_error(nsp))),
            Packet::Disconnect => self.leave(),
            Packet::Event {
                attachments,
                id,
                name,
                args,
            } if self.connected => self.on_event(attachments, id, name, args, out),
            _ => {}
        }
    }

    fn on_event(
        &mut self,
        attachments: usize,
        id: Option<&str>,
        name: &str,
        args: &str,
        out: &mut Vec<Message>,
    ) {
        let ack_true = |out: &mut Vec<Message>| {
            if let Some(id) = id {
                out.push(Message::text(frames::ack(id, "true")));
            }
        };
        match (attachments, name) {
            (0, "echo") => {
                if let Some(id) = id {
                    out.push(Message::text(frames::ack(id, args)));
                }
            }
            (n, "echo_bin") => {
                let Some(id) = id else { return };
                let header = frames::binary_ack(n, id, args);
                if n == 0 {
                    out.push(Message::text(header));
                } else {
                    self.binary = Some(PendingBinary {
                        header,
                        want: n,
                        got: Vec::with_capacity(n),
                    });
                }
            }
            (0, "broadcast") => {
                self.state
                    .emit_all(Utf8Bytes::from(frames::msg_event(args)));
                ack_true(out);
            }
            (0, "join") => {
                let room = frames::split_first(args)
                    .map(|(room, _)| frames::room_name(room))
                    .unwrap_or("undefined")
                    .to_owned();
                lock(&self.state.rooms)
                    .entry(room.clone())
                    .or_default()
                    .insert(self.id);
                self.rooms.push(room);
                ack_true(out);
            }
            (0, "to_room") => {
                if let Some((room, rest)) = frames::split_first(args) {
                    self.state.emit_room(
                        frames::room_name(room),
                        Utf8Bytes::from(frames::msg_event(rest)),
                    );
                }
                ack_true(out);
            }
            _ => {}
        }
    }

    /// Handles one binary frame: an attachment of the pending BINARY_EVENT, if any.
    fn on_binary(&mut self, data: Bytes, out: &mut Vec<Message>) {
        let Some(pending) = &mut self.binary else {
            return;
        };
        pending.got.push(data);
        if pending.got.len() == pending.want {
            if let Some(done) = self.binary.take() {
                out.push(Message::text(done.header));
                out.extend(done.got.into_iter().map(Message::Binary));
            }
        }
    }

    /// Leaves `/` and every room.
    fn leave(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.state
            .peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        let mut rooms = lock(&self.state.rooms);
        for room in self.rooms.drain(..) {
            if let Some(members) = rooms.get_mut(&room) {
                members.remove(&self.id);
                if members.is_empty() {
                    rooms.remove(&room);
                }
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.leave();
    }
}

/// A request head: method, target and the headers the floor reads.
struct Request {
    post: bool,
    target: String,
    length: usize,
    ws_key: Option<String>,
}

impl Request {
    /// The value of query parameter `name`.
    fn query(&self, name: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Reads the next request head from `stream` (bytes already read are in `buf`); `None` at
/// the end of the connection.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let post = first.next() == Some("POST");
    let target = first.next().unwrap_or("/").to_owned();
    let mut req = Request {
        post,
        target,
        length: 0,
        ws_key: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            req.length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            req.ws_key = Some(value.to_owned());
        }
    }
    Ok(Some(req))
}

/// Writes one HTTP/1.1 response with `body`.
async fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) -> io::Result<()> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    stream.write_all(&r).await
}

/// A long-polling session: its outgoing packets, its socket, and whether the last ping was
/// answered.
struct PollSession {
    out: Arc<Session>,
    socket: Mutex<Socket>,
    pong: AtomicBool,
}

/// Pings a polling session every [`PING_INTERVAL`] and ends it when a ping is not answered
/// within [`PING_TIMEOUT`] (or when the session was closed).
async fn heartbeat(state: Arc<State>, sid: String, session: Arc<PollSession>) {
    loop {
        sleep(PING_INTERVAL).await;
        if !lock(&state.sessions).contains_key(&sid) {
            return;
        }
        session.pong.store(false, Ordering::Relaxed);
        session.out.push(Utf8Bytes::from_static("2"));
        sleep(PING_TIMEOUT).await;
        if !session.pong.load(Ordering::Relaxed) {
            lock(&state.sessions).remove(&sid);
            lock(&session.socket).leave();
            return;
        }
    }
}

/// Serves one TCP connection: a WebSocket, or polling requests (of any session).
async fn connection(state: Arc<State>, mut stream: TcpStream) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    // The session this connection served last: most clients keep to one connection.
    let mut last: Option<(String, Arc<PollSession>)> = None;
    while let Some(req) = read_head(&mut stream, &mut buf).await? {
        if let Some(key) = &req.ws_key {
            if req.query("sid").is_some() {
                return respond(&mut stream, "400 Bad Request", b"no upgrade here").await;
            }
            let accept = derive_accept_key(key.as_bytes());
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            let config = WebSocketConfig::default()
                .read_buffer_size(read_buffer())
                .max_message_size(Some(MAX_BODY + 1024));
            let ws = WebSocketStream::from_partially_read(
                stream,
                std::mem::take(&mut buf),
                Role::Server,
                Some(config),
            )
            .await;
            return websocket(state, ws).await;
        }
        let body = if req.post {
            if req.length > MAX_BODY {
                return respond(&mut stream, "413 Payload Too Large", b"too large").await;
            }
            while buf.len() < req.length {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
            buf.drain(..req.length).collect::<Vec<u8>>()
        } else {
            Vec::new()
        };
        let Some(sid) = req.query("sid") else {
            if req.post {
                respond(&mut stream, "400 Bad Request", b"no session").await?;
                continue;
            }
            let out = Arc::new(Session::default());
            let socket = Socket::new(&state, Peer::Poll(out.clone()));
            let sid = socket.sid.clone();
            let open = frames::open_packet(&sid, true);
            let session = Arc::new(PollSession {
                out,
                socket: Mutex::new(socket),
                pong: AtomicBool::new(true),
            });
            lock(&state.sessions).insert(sid.clone(), session.clone());
            tokio::spawn(heartbeat(state.clone(), sid.clone(), session.clone()));
            last = Some((sid, session));
            respond(&mut stream, "200 OK", open.as_bytes()).await?;
            continue;
        };
        let session = match &last {
            Some((s, session)) if s == sid => Some(session.clone()),
            _ => lock(&state.sessions).get(sid).cloned(),
        };
        let Some(session) = session else {
            respond(
                &mut stream,
                "400 Bad Request",
                br#"{"code":1,"message":"Session ID unknown"}"#,
            )
            .await?;
            continue;
        };
        if last.as_ref().is_none_or(|(s, _)| s != sid) {
            last = Some((sid.to_owned(), session.clone()));
        }
        if req.post {
            let mut out = Vec::new();
            {
                let mut socket = lock(&session.socket);
                for record in body.split(|b| *b == 0x1e) {
                    match record {
                        b"3" => session.pong.store(true, Ordering::Relaxed),
                        b"1" => {
                            lock(&state.sessions).remove(sid);
                            socket.leave();
                        }
                        _ => socket.on_text(&String::from_utf8_lossy(record), &mut out),
                    }
                }
            }
            for m in out {
                if let Message::Text(t) = m {
                    session.out.push(t);
                }
            }
            respond(&mut stream, "200 OK", b"ok").await?;
        } else {
            let frames = loop {
                let frames = std::mem::take(&mut *lock(&session.out.queue));
                if !frames.is_empty() {
                    break frames;
                }
                tokio::select! {
                    _ = session.out.ready.notified() => {}
                    n = stream.read_buf(&mut buf) => {
                        if n? == 0 {
                            return Ok(());
                        }
                    }
                }
            };
            let mut payload = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                if i > 0 {
                    payload.push(0x1e);
                }
                payload.extend_from_slice(f.as_bytes());
            }
            respond(&mut stream, "200 OK", &payload).await?;
        }
    }
    Ok(())
}

/// Serves one WebSocket session: the frames it reads, the broadcasts queued for it, pings.
async fn websocket(state: Arc<State>, mut ws: WebSocketStream<TcpStream>) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut socket = Socket::new(&state, Peer::Ws(tx));
    let open = frames::open_packet(&socket.sid, false);
    ws.send(Message::text(open))
        .await
        .map_err(io::Error::other)?;
    // One timer for the connection, reset after each ping.
    let ping = sleep_until(Instant::now() + PING_INTERVAL);
    tokio::pin!(ping);
    let mut out: Vec<Message> = Vec::new();
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => socket.on_text(t.as_str(), &mut out),
                Some(Ok(Message::Binary(b))) => socket.on_binary(b, &mut out),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            Some(m) = rx.recv() => {
                out.push(m);
                while out.len() < BATCH {
                    match rx.try_recv() {
                        Ok(m) => out.push(m),
                        Err(_) => break,
                    }
                }
            }
            _ = &mut ping => {
                ping.as_mut().reset(Instant::now() + PING_INTERVAL);
                out.push(Message::text("2"));
            }
        }
        if !out.is_empty() {
            for m in out.drain(..) {
                ws.feed(m).await.map_err(io::Error::other)?;
            }
            ws.flush().await.map_err(io::Error::other)?;
        }
    }
    drop(socket);
    Ok(())
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let workers: usize = std::env::var("FLOOR_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else if workers == 0 {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(port))
}

/// Accepts connections on 127.0.0.1:`port` until the process is stopped.
async fn serve(port: u16) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("floor server listening on http://127.0.0.1:{port}");
    let state = Arc::new(State::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or an aborted connection: go on accepting.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(connection(state.clone(), stream));
    }
}
