// Type declarations of the `ferrio/msgpack` entry point: the whole `ferrio` API (see ferrio.d.ts)
// plus the msgpack parser, taken by the `parser` option as socket.io-client takes
// `socket.io-msgpack-parser`.
import {
  DefaultEventsMap,
  EventsMap,
  Manager as JsonManager,
  ManagerOptions as JsonManagerOptions,
  Socket,
  SocketOptions,
} from "./ferrio";

export * from "./ferrio";

/** A parser this entry point implements (in its wasm core). */
export interface MsgpackParser {
  readonly name: "msgpack";
  readonly protocol: 5;
}

/**
 * The msgpack parser, wire-compatible with `socket.io-msgpack-parser` 3.x: every packet is one
 * binary message, binary values travel inline. The server must use the same parser.
 */
export declare const msgpackParser: MsgpackParser;

export interface ManagerOptions extends JsonManagerOptions {
  /** The parser of every packet: `msgpackParser`, or none for the default JSON parser. */
  parser?: MsgpackParser;
}

/** One connection to a server, shared by the sockets of its namespaces. */
export declare class Manager extends JsonManager {
  constructor(uri?: string, opts?: Partial<ManagerOptions>);
}

/**
 * Connects to a Socket.IO server; `{ parser: msgpackParser }` speaks the msgpack parser's format.
 * The URL's path names the namespace; sockets of the same server share one connection unless
 * `forceNew` or `multiplex: false`.
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
