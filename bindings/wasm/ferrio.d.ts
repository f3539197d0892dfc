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

/** A `connect_error`: `message`, and the `data` the server's middleware attached. */
export interface ConnectError extends Error {
  data?: any;
}

export interface SocketReservedEvents {
  connect: () => void;
  connect_error: (err: ConnectError) => void;
  disconnect: (reason: DisconnectReason, description?: { description: string }) => void;
}

export interface ManagerReservedEvents {
  open: () => void;
  error: (err: string) => void;
  ping: () => void;
  close: (reason: string) => void;
  reconnect_attempt: (attempt: number) => void;
  reconnect: (attempt: number) => void;
  reconnect_error: (err: string) => void;
  reconnect_failed: () => void;
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
