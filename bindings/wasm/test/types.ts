// Type tests of ferrio.d.ts and msgpack.d.ts, checked by `tsc` in test/run.sh (never run): typed event maps as in
// socket.io-client, acks, timeouts, options and the Manager. Each `@ts-expect-error` line must be
// an error, so the declarations are shown to refuse what they should.
import { io, Manager, Socket } from "../ferrio";
import { io as msgpackIo, Manager as MsgpackManager, msgpackParser } from "../msgpack";

interface ServerToClientEvents {
  chat: (from: string, text: string) => void;
  ask: (question: string, answer: (reply: number) => void) => void;
}

interface ClientToServerEvents {
  say: (text: string) => void;
  add: (a: number, b: number, done: (sum: number) => void) => void;
}

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("https://example.com/chat", {
  transports: ["websocket", "polling"],
  auth: { token: "t" },
  reconnectionDelay: 500,
  ackTimeout: 1000,
  retries: 2,
});

socket.on("chat", (from, text) => {
  const f: string = from;
  const t: string = text;
  void [f, t];
});
socket.on("ask", (_question, answer) => answer(42));
// @ts-expect-error the answer takes a number
socket.on("ask", (_question, answer) => answer("no"));
socket.on("connect_error", (err) => console.log(err.message, err.data));
socket.on("disconnect", (reason) => {
  const r: "io server disconnect" | "io client disconnect" | "ping timeout" | "transport close" | "transport error" | "parse error" | "forced close" = reason;
  void r;
});

socket.emit("say", "hello");
// @ts-expect-error `say` takes a string
socket.emit("say", 1);
// @ts-expect-error unknown event
socket.emit("shout", "hello");
socket.emit("add", 1, 2, (sum) => {
  const n: number = sum;
  void n;
});
const sum: Promise<number> = socket.emitWithAck("add", 1, 2);
socket.timeout(500).emit("add", 1, 2, (err, total) => {
  const e: Error = err;
  const n: number = total;
  void [e, n];
});
void sum;

socket.onAny((event, ...args) => console.log(event, args));
socket.onAnyOutgoing((event) => console.log(event));
socket.volatile.compress(false).emit("say", "maybe");
const connected: boolean = socket.connected && socket.active && !socket.recovered;
void connected;

const manager = new Manager("https://example.com", { reconnectionAttempts: 3, forceBase64: true });
manager.on("reconnect_attempt", (attempt) => {
  const n: number = attempt;
  void n;
  // The query of the attempt about to start (read when each session starts).
  manager.opts.query = { token: "fresh" };
});
manager.open((err) => console.log(err?.message)).reconnection(false);
const delay: number = manager.reconnectionDelay();
void delay;
manager.socket("/admin").emit("anything", 1, "two");
manager.close();

// The other client options, the `packet` event, the engine and its events, errors.
const tuned = new Manager("https://example.com", {
  addTrailingSlash: false,
  timestampRequests: true,
  timestampParam: "ts",
  protocols: ["v1"],
  closeOnBeforeunload: true,
  requestTimeout: 5000,
  transportOptions: { polling: { extraHeaders: { "x-a": "b" } }, websocket: { protocols: "v2" } },
});
tuned.on("packet", (p) => {
  const t: number = p.type;
  const nsp: string = p.nsp;
  void [t, nsp, p.data, p.id];
});
tuned.on("error", (err) => console.log(err.message, err.description, err.type === "TransportError"));
tuned.engine.on("upgrade", (transport) => console.log(transport.name));
tuned.engine.on("upgrading", (transport) => console.log(transport.name));
tuned.engine.on("flush", () => console.log("flushed"));
tuned.engine.on("packetCreate", (p) => console.log(p.type, p.data));
tuned.engine.on("close", (reason) => console.log(reason));
const engineId: string | undefined = tuned.engine.id;
const transportName: string | undefined = tuned.engine.transport.name;
void [engineId, transportName];
// @ts-expect-error a transport name is a string
const badName: number = tuned.engine.transport.name;
void badName;
// @ts-expect-error timestampRequests is a boolean
new Manager("https://example.com", { timestampRequests: "yes" });
socket.on("disconnect", (_reason, details) => {
  if (details && "type" in details) console.log(details.description, details.context);
});

// The `ferrio/msgpack` entry point: the same API, with the `parser` option.
const packed: Socket<ServerToClientEvents, ClientToServerEvents> = msgpackIo("https://example.com/chat", {
  parser: msgpackParser,
  auth: { token: "t" },
});
packed.emit("add", 1, 2, (total) => {
  const n: number = total;
  void n;
});
const packedManager = new MsgpackManager("https://example.com", { parser: msgpackParser, reconnection: false });
packedManager.socket("/").emit("bytes", new Uint8Array([1]));
const parserName: "msgpack" = msgpackParser.name;
void parserName;
// @ts-expect-error the parser is `msgpackParser`, not a name
msgpackIo("https://example.com", { parser: "msgpack" });
// @ts-expect-error the default entry point has no parser option
io("https://example.com", { parser: msgpackParser });
