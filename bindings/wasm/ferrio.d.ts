// Type declarations of the `ferrio` package: the socket.io-client 4.x API, with typed event maps.

/** Map of event names to listener signatures. */
export interface EventsMap {
  [event: string]: any;
}

/** The default event map: any event, any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

type Last<T extends any[]> = T extends [...infer _H, infer L] ? L : never;
type AllButLast<T extends any[]> = T extends [...infer H, infer _L] ? H : any[];
type FirstArg<T> = T extends (arg: infer A, ...rest: any[]) => any ? A : any;

/** With a timeout, the ack callback receives an error first. */
type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R
    ? Last<P> extends (...a: any[]) => any
      ? (...args: [...AllButLast<P>, (err: Error, ...res: Parameters<Last<P>>) => void]) => R
      : E[K]
    : E[K];
};

export type DisconnectReason =
  | "io server disconnect"
  | "io client disconnect"
  | "ping timeout"
  | "transport close"
  | "transport error"
  | "parse error"
  | "forced close";

/**
 * A transport's failure, as engine.io-client reports it: `message` the reason (`xhr poll error`,
 * `xhr post error`, `websocket error`), `description` the HTTP status (0: no answer, or
 * `requestTimeout` passed) or the browser's error event, `context` the response or the error.
 */
export interface TransportError extends Error {
  type: "TransportError";
  description: any;
  context: any;
}

/**
 * A `connect_error`: `message`, and the `data` the server's middleware attached. When the
 * connection itself failed it is the `TransportError` (`type`, `description`, `context`), or
 * `Error("timeout")`.
 */
export interface ConnectError extends Error {
  data?: any;
  type?: "TransportError";
  description?: any;
  context?: any;
}

export interface SocketReservedEvents {
  connect: () => void;
  connect_error: (err: ConnectError) => void;
  /** `details`: the `TransportError` after a transport error, `{ description }` otherwise (if any). */
  disconnect: (reason: DisconnectReason, details?: TransportError | { description: string }) => void;
}

/** A Socket.IO packet as socket.io-parser decodes it (the manager's `packet` event). */
export interface Packet {
  /** CONNECT 0, DISCONNECT 1, EVENT 2, ACK 3, CONNECT_ERROR 4, BINARY_EVENT 5, BINARY_ACK 6. */
  type: 0 | 1 | 2 | 3 | 4 | 5 | 6;
  nsp: string;
  /** Binary values as `ArrayBuffer`s. */
  data?: any;
  id?: number;
}

export interface ManagerReservedEvents {
  open: () => void;
  error: (err: ConnectError) => void;
  ping: () => void;
  close: (reason: string, description?: string) => void;
  reconnect_attempt: (attempt: number) => void;
  reconnect: (attempt: number) => void;
  reconnect_error: (err: ConnectError) => void;
  reconnect_failed: () => void;
  /** Every packet from the server, decoded, whatever its namespace. */
  packet: (packet: Packet) => void;
}

/** An Engine.IO packet as engine.io-parser decodes it (the engine's `packet` and `packetCreate`). */
export interface EnginePacket {
  type: "open" | "close" | "ping" | "pong" | "message" | "upgrade" | "noop" | "error";
  data?: string | ArrayBuffer;
}

export interface EngineReservedEvents {
  /** The session opened. */
  open: () => void;
  /** The handshake's values (`sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`). */
  handshake: (data: { sid: string; upgrades: string[]; pingInterval: number; pingTimeout: number; maxPayload: number }) => void;
  /** Each packet received. */
  packet: (packet: EnginePacket) => void;
  /** Each packet sent. */
  packetCreate: (packet: EnginePacket) => void;
  /** Each packet received (the session is alive). */
  heartbeat: () => void;
  ping: () => void;
  data: (data: string | ArrayBuffer) => void;
  message: (data: string | ArrayBuffer) => void;
  /** A write completed (a POST answered, or WebSocket frames handed to the browser). */
  drain: () => void;
  /** The probe succeeded: the session is about to move to this transport. */
  upgrading: (transport: { name: "websocket" }) => void;
  /** The session moved to this transport. */
  upgrade: (transport: { name: "polling" | "websocket" }) => void;
  /** The probe failed (`probe error`, `probe error: <cause>`); the session keeps polling. */
  upgradeError: (err: Error & { transport: "websocket" }) => void;
  /** Frames went to the transport: a POST sent, or a WebSocket frame written. */
  flush: () => void;
  /** The session failed to open. */
  error: (err: ConnectError) => void;
  close: (reason: string, description?: any) => void;
}

/**
 * The Engine.IO connection of a manager (`manager.engine`); a new one replaces it after each
 * close, as engine.io-client creates a new socket per connection.
 */
export declare class Engine extends Emitter<{}, EngineReservedEvents> {
  /** The session id, while open. */
  readonly id: string | undefined;
  /** The transport in use. */
  readonly transport: { name: "polling" | "websocket" | undefined };
}

export interface ManagerOptions {
  /** Path of the endpoint (`/socket.io`). */
  path?: string;
  /** Transports in order of preference (`["polling", "websocket"]`). */
  transports?: ("polling" | "websocket")[];
  /** Probe the upgrades the server offers (true). */
  upgrade?: boolean;
  /** Open with WebSocket if the previous connection ended up on it (false). */
  rememberUpgrade?: boolean;
  /** If the first transport fails to open, try the next ones (false). */
  tryAllTransports?: boolean;
  /** Binary as base64 text (false). */
  forceBase64?: boolean;
  /** Extra query parameters of every request. */
  query?: Record<string, string> | string;
  /** `path` ends with a slash (`/socket.io/`, true) or not (`/socket.io`, false). */
  addTrailingSlash?: boolean;
  /** Cache-busting parameter: unset, polling requests only; true, WebSocket ones too; false, none. */
  timestampRequests?: boolean;
  /** Name of the cache-busting parameter (`t`). */
  timestampParam?: string;
  /** WebSocket subprotocols (`new WebSocket(url, protocols)`). */
  protocols?: string | string[];
  /** Close the connection when the page is about to unload (false). */
  closeOnBeforeunload?: boolean;
  /** A polling request not answered in this many ms fails with a transport error (none). */
  requestTimeout?: number;
  /** Options of one transport, over the others: `{ polling: { extraHeaders } }`,
   * `{ websocket: { protocols } }`. */
  transportOptions?: {
    polling?: { extraHeaders?: Record<string, string>; withCredentials?: boolean; requestTimeout?: number };
    websocket?: { protocols?: string | string[] };
  };
  /** Reconnect after losing the connection (true). */
  reconnection?: boolean;
  reconnectionAttempts?: number;
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  randomizationFactor?: number;
  /** Time the connection has to open (20 000 ms; false: none). */
  timeout?: number | false;
  /** Headers of the polling requests (WebSocket cannot carry them in a browser). */
  extraHeaders?: Record<string, string>;
  /** Send cookies with cross-origin polling requests. */
  withCredentials?: boolean;
  /** A new connection instead of sharing the cached one. */
  forceNew?: boolean;
  /** Share connections between sockets of the same server (true). */
  multiplex?: boolean;
}

export interface SocketOptions {
  /** The CONNECT payload, or a function asked for it on every connection. */
  auth?: { [key: string]: any } | ((cb: (data: object) => void) => void);
  /** Reliable delivery attempts per emit (0). */
  retries?: number;
  /** Default ack timeout of emits, in ms. */
  ackTimeout?: number;
  /** Connect at once (true). */
  autoConnect?: boolean;
}

declare class Emitter<ListenEvents extends EventsMap, ReservedEvents extends EventsMap = {}> {
  on<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev: Ev, listener: (ListenEvents & ReservedEvents)[Ev]): this;
  once<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev: Ev, listener: (ListenEvents & ReservedEvents)[Ev]): this;
  off<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev?: Ev, listener?: (ListenEvents & ReservedEvents)[Ev]): this;
  removeListener<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev?: Ev, listener?: (ListenEvents & ReservedEvents)[Ev]): this;
  removeAllListeners<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev?: Ev): this;
  listeners<Ev extends EventNames<ListenEvents & ReservedEvents>>(ev: Ev): (ListenEvents & ReservedEvents)[Ev][];
  hasListeners(ev: string): boolean;
}

/** One connection to a server, shared by the sockets of its namespaces. */
export declare class Manager extends Emitter<{}, ManagerReservedEvents> {
  constructor(uri?: string, opts?: Partial<ManagerOptions>);
  /** The options it was created with. `query` is read again when each session starts (a
   * `reconnect_attempt` listener may replace it); the others are fixed once it exists. */
  opts: Partial<ManagerOptions>;
  /** The Engine.IO connection (replaced after each close). */
  readonly engine: Engine;
  socket(nsp: string, opts?: Partial<SocketOptions>): Socket;
  reconnection(): boolean;
  reconnection(v: boolean): this;
  /** The reconnection options it was created with (fixed once it exists). */
  reconnectionAttempts(): number;
  reconnectionDelay(): number;
  reconnectionDelayMax(): number;
  randomizationFactor(): number;
  timeout(): number | false;
  /** Opens the connection if it is closed; `fn` is called once it opens, or with the error. */
  open(fn?: (err?: Error) => void): this;
  connect(fn?: (err?: Error) => void): this;
  /** Closes the connection without reconnecting; its sockets get `disconnect` ("forced close"). */
  close(): this;
  disconnect(): this;
}

/** A socket of one namespace. */
export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
> extends Emitter<ListenEvents, SocketReservedEvents> {
  readonly io: Manager;
  /** The namespace. */
  readonly nsp: string;
  /** The id the server gave, while connected. */
  id: string | undefined;
  /** Whether the last connection recovered the previous session. */
  recovered: boolean;
  /** The CONNECT payload, read at every connection: a change applies to the next one. */
  auth: SocketOptions["auth"];
  readonly connected: boolean;
  readonly disconnected: boolean;
  readonly active: boolean;
  connect(): this;
  open(): this;
  disconnect(): this;
  close(): this;
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): this;
  emitWithAck<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: AllButLast<EventParams<EmitEvents, Ev>>
  ): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  send(...args: any[]): this;
  /** The next emit waits `timeout` ms for its ack; the callback then receives an error first. */
  timeout(timeout: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>>;
  readonly volatile: this;
  compress(compress: boolean): this;
  onAny(listener: (event: string, ...args: any[]) => void): this;
  prependAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  listenersAny(): ((event: string, ...args: any[]) => void)[];
  /** Listens to every event this socket sends, when it is sent (buffered emits: on connect). */
  onAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
  prependAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
  offAnyOutgoing(listener?: (event: string, ...args: any[]) => void): this;
  listenersAnyOutgoing(): ((event: string, ...args: any[]) => void)[];
}

/**
 * Connects to a Socket.IO server. The URL's path names the namespace (`io("https://host/admin")`);
 * sockets of the same server share one connection unless `forceNew` or `multiplex: false`.
 */
export declare function io<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
>(uri?: string, opts?: Partial<ManagerOptions & SocketOptions>): Socket<ListenEvents, EmitEvents>;
export declare function io<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
>(opts: Partial<ManagerOptions & SocketOptions>): Socket<ListenEvents, EmitEvents>;
export { io as connect };
export default io;
/** The Socket.IO protocol revision. */
export declare const protocol: number;
