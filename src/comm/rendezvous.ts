// A small TCP key-value store for bootstrapping NCCL where no MPI and no shared memory connect
// the ranks, as torchrun's MASTER_ADDR:MASTER_PORT store does: rank 0 listens, every rank
// (rank 0 too, over loopback) connects, says who it is, and sets or waits for small byte values.
// It carries NCCL's 128-byte unique id and arrival marks, never tensors: plait's data plane is
// NCCL or MPI. node:net only.
//
// Wire format, both directions: frames of [u32 length][u8 code][payload]. A request's payload
// is [u32 key length][key (UTF-8)][value]; a reply's is the value, or a UTF-8 message for an
// error. One request at a time per connection, so replies need no ids.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { checkOptions } from "../core/options.ts";
import { CommError } from "./errors.ts";
import { checkTimeoutMs } from "./validate.ts";

const OP = { hello: 1, set: 2, get: 3, check: 4, add: 5 } as const;
const OK = 0;
const FAIL = 1;
/** A get's reply when its key was not set within the wait the request carried. */
const EXPIRED = 2;
/** How much later than the store's own reply the client gives up on a connection. */
const SLACK_MS = 5000;
/** Values and keys are small: a frame over this is a protocol error (another program on the port). */
const MAX_FRAME = 1 << 20;
/** A hello carries this tag first, so a connection from anything else is refused quickly. */
const MAGIC = 0x706c6169; // "plai"
const RETRY_MS = [50, 100, 200, 400, 800, 1000];
export const DEFAULT_RENDEZVOUS_TIMEOUT_MS = 300_000;

const STORE_OPTIONS = ["host", "port", "rank", "worldSize", "timeoutMs", "listenHost"] as const;

export interface TcpStoreOptions {
  /** Where rank 0 listens and the others connect (MASTER_ADDR). */
  host: string;
  /** The port (MASTER_PORT); 0 lets rank 0 pick a free one (then read `store.port`). */
  port: number;
  rank: number;
  worldSize: number;
  /** How long connecting and every wait may take, in ms (5 minutes unless set). */
  timeoutMs?: number;
  /** The address rank 0 binds: `host` when it is a loopback address, else every interface. */
  listenHost?: string;
}

/**
 * One rank's handle on the rendezvous store. Rank 0 runs the store in its own process and keeps
 * it until `close()`; the others connect with retries until the deadline. Every failure is an
 * Error (CommError where a rank is to blame) that names the address, the rank and what was
 * expected: rank 0 absent, a world size that disagrees with rank 0's, a rank already taken, a
 * port in use, a value that never came.
 */
export class TcpStore {
  readonly rank: number;
  readonly worldSize: number;
  readonly host: string;
  /** The port rank 0 listens on (the chosen one when asked for port 0). */
  readonly port: number;
  readonly timeoutMs: number;
  private readonly client: Client;
  private readonly server: StoreServer | undefined;

  private constructor(o: Required<Omit<TcpStoreOptions, "listenHost">>, client: Client, server?: StoreServer) {
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.host = o.host;
    this.port = o.port;
    this.timeoutMs = o.timeoutMs;
    this.client = client;
    this.server = server;
  }

  /** Starts the store (rank 0) or connects to it (every other rank), and says hello. */
  static async connect(opts: TcpStoreOptions): Promise<TcpStore> {
    const name = "TcpStore.connect()";
    const o = checkOptions(name, opts, STORE_OPTIONS);
    if (typeof o.host !== "string" || o.host === "") {
      throw new TypeError(`plait: ${name}: option host must be a host name or address, got ${JSON.stringify(o.host)}`);
    }
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
      throw new RangeError(
        `plait: ${name}: option port must be an integer in [0, 65535], got ${JSON.stringify(o.port)}`,
      );
    }
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) {
      throw new RangeError(
        `plait: ${name}: option worldSize must be a positive integer, got ${JSON.stringify(o.worldSize)}`,
      );
    }
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
      throw new RangeError(
        `plait: ${name}: option rank must be an integer in [0, ${o.worldSize - 1}], got ${JSON.stringify(o.rank)}`,
      );
    }
    const timeoutMs = o.timeoutMs === undefined ? DEFAULT_RENDEZVOUS_TIMEOUT_MS : checkTimeoutMs(name, o.timeoutMs);
    const deadline = Date.now() + timeoutMs;
    let server: StoreServer | undefined;
    let port = o.port;
    if (o.rank === 0) {
      server = await StoreServer.listen(o.listenHost ?? listenAddress(o.host), o.port, o.worldSize, o.host);
      port = server.port;
    }
    const where = `${o.host}:${port}`;
    let client: Client;
    try {
      client = await Client.connect(o.host, port, o.rank, deadline, timeoutMs);
      const hello = Buffer.alloc(12);
      hello.writeUInt32LE(MAGIC, 0);
      hello.writeUInt32LE(o.rank, 4);
      hello.writeUInt32LE(o.worldSize, 8);
      await client.request(OP.hello, "", hello, deadline, `rank ${o.rank}'s hello to the store at ${where}`);
    } catch (e) {
      await server?.close(0);
      throw e;
    }
    return new TcpStore({ host: o.host, port, rank: o.rank, worldSize: o.worldSize, timeoutMs }, client, server);
  }

  /** Sets `key` to `value` (bytes or a string), waking every rank waiting for it. */
  async set(key: string, value: Uint8Array | string): Promise<void> {
    const bytes = typeof value === "string" ? Buffer.from(value) : value;
    await this.client.request(OP.set, checkKey("set", key), bytes, this.deadline(), `set("${key}")`);
  }

  /** The value of `key`, waiting until some rank sets it (at most `timeoutMs`). */
  async get(key: string, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    const ms = checkOptions("TcpStore.get()", opts, ["timeoutMs"]).timeoutMs ?? this.timeoutMs;
    const timeoutMs = checkTimeoutMs("TcpStore.get()", ms);
    const deadline = Date.now() + timeoutMs;
    const at = `${this.host}:${this.port}`;
    const wait = Buffer.alloc(4);
    wait.writeUInt32LE(timeoutMs);
    return this.client.request(OP.get, checkKey("get", key), wait, deadline + SLACK_MS, `get("${key}")`, () => {
      return new CommError(
        `plait: rendezvous: rank ${this.rank} waited ${timeoutMs} ms for key "${key}" in the store at ${at}, and no rank set it`,
        "timeout",
        -1,
      );
    });
  }

  /** The value of `key` if it is set now, else undefined: never waits for it. */
  async tryGet(key: string): Promise<Uint8Array | undefined> {
    const reply = await this.client.request(OP.check, checkKey("tryGet", key), new Uint8Array(0), this.deadline(), "");
    return reply.length === 0 ? undefined : reply.subarray(1);
  }

  /** Adds `delta` to the integer counter `key` (0 when unset) and returns the new value. */
  async add(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) {
      throw new TypeError(`plait: TcpStore.add(): argument delta must be a safe integer, got ${JSON.stringify(delta)}`);
    }
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(delta));
    const reply = await this.client.request(OP.add, checkKey("add", key), b, this.deadline(), `add("${key}")`);
    return Number(Buffer.from(reply).readBigInt64LE(0));
  }

  /**
   * Every rank marks `name` and waits until all have: a barrier over the store. A timeout names
   * the ranks that never came, as a CommError whose failedRank is the first of them.
   */
  async arrive(name: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const ms = checkOptions("TcpStore.arrive()", opts, ["timeoutMs"]).timeoutMs ?? this.timeoutMs;
    const timeoutMs = checkTimeoutMs("TcpStore.arrive()", ms);
    const deadline = Date.now() + timeoutMs;
    await this.set(`${name}/${this.rank}`, "1");
    for (let r = 0; r < this.worldSize; r++) {
      const left = deadline - Date.now();
      try {
        if (left <= 0) throw new Error("deadline");
        await this.get(`${name}/${r}`, { timeoutMs: left });
      } catch (e) {
        if (!(e instanceof CommError) && (e as Error).message !== "deadline") throw e;
        const missing: number[] = [];
        for (let s = 0; s < this.worldSize; s++) if ((await this.tryGet(`${name}/${s}`)) === undefined) missing.push(s);
        const refused = this.refused.length > 0 ? `; the store refused: ${this.refused.join("; ")}` : "";
        throw new CommError(
          `plait: rendezvous "${name}": rank${missing.length > 1 ? "s" : ""} ${missing.join(", ")} of ${this.worldSize} did not arrive at the store at ${this.host}:${this.port}: rank ${this.rank} timed out after ${timeoutMs} ms${refused}`,
          "timeout",
          missing[0] ?? -1,
        );
      }
    }
  }

  /**
   * Closes this rank's connection. On rank 0 it then waits (at most `graceMs`, 10 s unless set)
   * for the other ranks to close theirs before it stops the store, so a peer still reading its
   * last reply is not cut off; peers still connected after that fail their next request.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const { graceMs = 10_000 } = checkOptions("TcpStore.close()", opts, ["graceMs"]);
    this.client.close();
    await this.server?.close(graceMs);
  }

  /** On rank 0: the hellos the store refused (a wrong world size, a rank taken twice), in order. */
  get refused(): readonly string[] {
    return this.server?.refusals ?? [];
  }

  private deadline(): number {
    return Date.now() + this.timeoutMs;
  }
}

/**
 * The store named by torchrun's variables: MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (each
 * required, named when missing or malformed).
 */
export async function storeFromEnv(
  env: Record<string, string | undefined>,
  opts: { timeoutMs?: number } = {},
): Promise<TcpStore> {
  const need = (v: string) => {
    const value = env[v];
    if (value === undefined || value.trim() === "") {
      throw new Error(
        `plait: rendezvous: ${v} is not set; the TCP rendezvous needs MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (torchrun sets them)`,
      );
    }
    return value.trim();
  };
  const int = (v: string) => {
    const s = need(v);
    if (!/^\d+$/.test(s))
      throw new Error(`plait: rendezvous: ${v} must be a non-negative integer, got ${JSON.stringify(s)}`);
    return Number(s);
  };
  return TcpStore.connect({
    host: need("MASTER_ADDR"),
    port: int("MASTER_PORT"),
    rank: int("RANK"),
    worldSize: int("WORLD_SIZE"),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
}

function checkKey(op: string, key: unknown): string {
  if (typeof key !== "string" || key === "" || Buffer.byteLength(key) > 4096) {
    throw new TypeError(
      `plait: TcpStore.${op}(): argument key must be a non-empty string of at most 4096 bytes, got ${JSON.stringify(key)}`,
    );
  }
  return key;
}

/** Loopback names are bound as given (nothing else can reach them); any other name binds every interface. */
function listenAddress(host: string): string | undefined {
  return host === "localhost" || host === "::1" || host.startsWith("127.") ? host : undefined;
}

// ---- framing ----

function frame(code: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32LE(1 + payload.length, 0);
  b[4] = code;
  b.set(payload, 5);
  return b;
}

function request(op: number, key: string, value: Uint8Array): Buffer {
  const k = Buffer.from(key);
  const p = Buffer.alloc(4 + k.length + value.length);
  p.writeUInt32LE(k.length, 0);
  p.set(k, 4);
  p.set(value, 4 + k.length);
  return frame(op, p);
}

/** Splits a byte stream into frames; calls `bad` once on a frame that cannot be one of ours. */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(
    private readonly onFrame: (code: number, payload: Buffer) => void,
    private readonly bad: (why: string) => void,
  ) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (len < 1 || len > MAX_FRAME) {
        this.bad(`a frame of ${len} bytes (at most ${MAX_FRAME}): not plait's rendezvous protocol`);
        this.buf = Buffer.alloc(0);
        return;
      }
      if (this.buf.length < 4 + len) return;
      const code = this.buf[4];
      const payload = this.buf.subarray(5, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      this.onFrame(code, payload);
    }
  }
}

// ---- client ----

class Client {
  private pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void; expire: () => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly where: string,
    private readonly rank: number,
  ) {
    const framer = new Framer(
      (code, payload) => {
        const p = this.pending;
        this.pending = undefined;
        if (!p) return;
        if (code === OK) p.resolve(payload);
        else if (code === EXPIRED) p.expire();
        else p.reject(new Error(payload.toString("utf8")));
      },
      (why) => this.fail(new Error(`plait: rendezvous: the store at ${where} sent ${why}`)),
    );
    socket.on("data", (c) => framer.push(c));
    socket.on("error", (e) =>
      this.fail(
        new Error(`plait: rendezvous: rank ${rank}'s connection to the store at ${where} failed: ${e.message}`),
      ),
    );
    socket.on("close", () =>
      this.fail(
        new Error(
          `plait: rendezvous: the store at ${where} (run by rank 0) closed rank ${rank}'s connection: rank 0 ended or closed its store`,
        ),
      ),
    );
  }

  /** Connects, retrying refused or unreachable connections until the deadline. */
  static async connect(host: string, port: number, rank: number, deadline: number, timeoutMs: number): Promise<Client> {
    const where = `${host}:${port}`;
    let last = "";
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await open(host, port, deadline);
        socket.setNoDelay(true);
        return new Client(socket, where, rank);
      } catch (e) {
        last = (e as Error).message;
      }
      const wait = Math.min(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)], deadline - Date.now());
      if (wait <= 0) break;
      await new Promise((r) => setTimeout(r, wait));
    }
    throw new CommError(
      `plait: rendezvous: rank ${rank} found no store at ${where} within ${timeoutMs} ms (rank 0 starts it there: is rank 0 running, and are MASTER_ADDR and MASTER_PORT the same on every rank?); last error: ${last}`,
      "timeout",
      0,
    );
  }

  /** Sends one request and resolves with the reply's payload; one at a time per connection. */
  request(
    op: number,
    key: string,
    value: Uint8Array,
    deadline: number,
    what: string,
    onTimeout?: () => Error,
  ): Promise<Buffer> {
    const run = () =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.closed) {
          reject(this.closed);
          return;
        }
        const timer = setTimeout(
          () => {
            this.pending = undefined;
            const e = new CommError(
              `plait: rendezvous: ${what} at the store at ${this.where} got no answer in time: rank 0's store hangs or the network dropped`,
              "timeout",
              0,
            );
            // the reply may still come: this connection can no longer tell whose it is
            this.fail(e);
            reject(e);
          },
          Math.max(0, deadline - Date.now()),
        );
        this.pending = {
          resolve: (b) => {
            clearTimeout(timer);
            resolve(b);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
          expire: () => {
            clearTimeout(timer);
            reject(onTimeout?.() ?? new CommError(`plait: rendezvous: ${what} timed out`, "timeout", -1));
          },
        };
        this.socket.write(request(op, key, value));
      });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  close(): void {
    this.closed ??= new Error(`plait: rendezvous: rank ${this.rank}'s store connection is closed`);
    this.socket.destroy();
  }

  private fail(e: Error): void {
    this.closed ??= e;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(this.closed);
    this.socket.destroy();
  }
}

function open(host: string, port: number, deadline: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(
      () => {
        socket.destroy();
        reject(new Error("connect timed out"));
      },
      Math.max(1, Math.min(5000, deadline - Date.now())),
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code ?? e.message));
    });
  });
}

// ---- server (rank 0) ----

class StoreServer {
  private readonly values = new Map<string, Buffer>();
  private readonly waiters = new Map<string, Set<(v: Buffer) => void>>();
  private readonly ranks = new Map<number, Socket>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly worldSize: number,
  ) {
    server.on("connection", (s) => this.accept(s));
  }

  static listen(host: string | undefined, port: number, worldSize: number, shown: string): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", (e: NodeJS.ErrnoException) => {
        const why =
          e.code === "EADDRINUSE"
            ? `port ${port} is in use (EADDRINUSE): another job's store or another program holds it; pick another MASTER_PORT`
            : e.code === "EADDRNOTAVAIL"
              ? `${host} is not an address of this machine (EADDRNOTAVAIL): MASTER_ADDR must name rank 0's machine`
              : `${e.code ?? ""} ${e.message}`.trim();
        reject(new Error(`plait: rendezvous: rank 0 cannot start the store at ${shown}:${port}: ${why}`));
      });
      server.listen({ host, port, exclusive: true }, () => {
        const address = server.address();
        const actual = typeof address === "object" && address ? address.port : port;
        server.removeAllListeners("error");
        resolve(new StoreServer(server, actual, worldSize));
      });
    });
  }

  readonly refusals: string[] = [];

  /** Stops accepting, waits up to graceMs for the ranks' connections to close, then drops the rest. */
  async close(graceMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const until = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.sockets) s.destroy();
    await stopped;
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    let rank = -1;
    const reply = (code: number, payload: Uint8Array) => {
      if (!socket.destroyed) socket.write(frame(code, payload));
    };
    const refuse = (why: string) => {
      reply(FAIL, Buffer.from(why));
      socket.end();
    };
    const framer = new Framer(
      (op, payload) => {
        const klen = payload.length >= 4 ? payload.readUInt32LE(0) : -1;
        if (klen < 0 || 4 + klen > payload.length) return refuse("plait: rendezvous: a malformed request");
        const key = payload.subarray(4, 4 + klen).toString("utf8");
        const value = payload.subarray(4 + klen);
        if (op !== OP.hello && rank < 0) return refuse("plait: rendezvous: a request before hello");
        switch (op) {
          case OP.hello: {
            const err = this.hello(value);
            if (typeof err === "string") {
              this.refusals.push(err.replace(/^plait: rendezvous: /, ""));
              return refuse(err);
            }
            rank = err;
            this.ranks.set(rank, socket);
            return reply(OK, new Uint8Array(0));
          }
          case OP.set:
            this.put(key, Buffer.from(value));
            return reply(OK, new Uint8Array(0));
          case OP.get: {
            const v = this.values.get(key);
            if (v) return reply(OK, v);
            const set = this.waiters.get(key) ?? new Set<(v: Buffer) => void>();
            this.waiters.set(key, set);
            const timer = setTimeout(
              () => {
                set.delete(wake);
                reply(EXPIRED, new Uint8Array(0));
              },
              value.length === 4 ? value.readUInt32LE(0) : 0,
            );
            const wake = (w: Buffer) => {
              clearTimeout(timer);
              reply(OK, w);
            };
            set.add(wake);
            socket.once("close", () => {
              clearTimeout(timer);
              set.delete(wake);
            });
            return;
          }
          case OP.check: {
            const v = this.values.get(key);
            return reply(OK, v ? Buffer.concat([Buffer.from([1]), v]) : new Uint8Array(0));
          }
          case OP.add: {
            const old = this.values.get(key);
            const n = (old && old.length === 8 ? old.readBigInt64LE(0) : 0n) + Buffer.from(value).readBigInt64LE(0);
            const b = Buffer.alloc(8);
            b.writeBigInt64LE(n);
            this.put(key, b);
            return reply(OK, b);
          }
          default:
            return refuse(`plait: rendezvous: unknown request ${op}`);
        }
      },
      () => socket.destroy(),
    );
    socket.on("data", (c) => framer.push(c));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (rank >= 0 && this.ranks.get(rank) === socket) this.ranks.delete(rank);
    });
  }

  /** The rank a hello names, or why it is refused. */
  private hello(v: Buffer): number | string {
    if (v.length !== 12 || v.readUInt32LE(0) !== MAGIC) return "plait: rendezvous: not a plait rendezvous hello";
    const rank = v.readUInt32LE(4);
    const world = v.readUInt32LE(8);
    if (world !== this.worldSize) {
      return `plait: rendezvous: rank ${rank} says the world has ${world} ranks, but rank 0 (the store) says ${this.worldSize}: start every rank with the same WORLD_SIZE`;
    }
    if (rank >= this.worldSize)
      return `plait: rendezvous: rank ${rank} is out of range for a world of ${this.worldSize}`;
    if (this.ranks.has(rank)) {
      return `plait: rendezvous: rank ${rank} is already connected to the store: two processes were given RANK=${rank}`;
    }
    return rank;
  }

  private put(key: string, value: Buffer): void {
    this.values.set(key, value);
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    for (const wake of set) wake(value);
  }
}
