/**
 * The kubelet's PodResources v1 API over its unix socket: one `List` call, bounded in time (a
 * deadline, plus a watchdog of our own) and in size (maxReceiveBytes), with every failure turned
 * into a PodResourcesError whose `code` says what went wrong. A fresh channel is opened per call and
 * closed after it: a restarted kubelet re-creates its socket, and a cached channel would sit in
 * grpc-js's reconnect back-off instead of seeing the new one.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { isNvidiaGpuResource } from './device-ids.js';
import type { PodResourcesList } from './mapping.js';
import { decodeListReply } from './wire.js';

// gRPC and its proto loader are required on the first call, not when this module loads: the
// Prometheus exporter imports it (for the kubernetes option) and so does `serve`, and the two
// packages are ~190 ms of start-up and ~15 MiB of memory in every process that never asks a
// kubelet (bench/ANALYSIS.md, serve).
const requireCjs = createRequire(import.meta.url);
let grpcModule: typeof grpc | undefined;
let protoLoaderModule: typeof protoLoader | undefined;
const grpcLib = (): typeof grpc => (grpcModule ??= requireCjs('@grpc/grpc-js') as typeof grpc);
const protoLoaderLib = (): typeof protoLoader => (protoLoaderModule ??= requireCjs('@grpc/proto-loader') as typeof protoLoader);

export type PodResourcesErrorCode =
  | 'SOCKET_MISSING' // nothing at the socket path (kubelet not running, hostPath not mounted)
  | 'NOT_A_SOCKET' // something else at that path
  | 'PERMISSION_DENIED' // the process may not connect (the socket is root's: run as root or fix the mode)
  | 'TIMEOUT' // no answer within the deadline (a hung kubelet)
  | 'REPLY_TOO_LARGE' // the reply is over maxReceiveBytes
  | 'BAD_REPLY' // not a PodResources reply (garbage bytes, another protocol, a message that does not decode)
  | 'UNIMPLEMENTED' // the server does not have v1.PodResourcesLister/List (a kubelet older than 1.20?)
  | 'UNAVAILABLE' // the connection failed or broke
  | 'ERROR'; // anything else (the message has gRPC's status)

export class PodResourcesError extends Error {
  override readonly name = 'PodResourcesError';
  constructor(
    readonly code: PodResourcesErrorCode,
    message: string,
    /** gRPC's status code when the call got that far. */
    readonly grpcCode: number | null = null,
  ) {
    super(message);
  }
}

export interface ListOptions {
  /** The call's deadline (ms). */
  readonly timeoutMs: number;
  /** The largest reply accepted (bytes). */
  readonly maxReceiveBytes: number;
  /** Extended resources to keep (default: the NVIDIA GPU ones, see isNvidiaGpuResource). */
  readonly keepResource?: (resourceName: string) => boolean;
  /** Cancels the call (it then rejects with code ERROR, "cancelled"). */
  readonly signal?: AbortSignal;
}

export interface ListResult {
  /** Pods with at least one container holding a kept resource. */
  readonly list: PodResourcesList;
  /** Malformed entries dropped (names that are not Kubernetes names, …). */
  readonly ignored: number;
  /** Size of the reply (bytes). */
  readonly bytes: number;
  /** Time spent decoding it, in slices between which the event loop ran (ms). */
  readonly decodeMs: number;
}

/** The kubelet's default socket. */
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

type ListFn = (
  request: Record<string, never>,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply?: Buffer) => void,
) => grpc.ClientUnaryCall;
type ListerClient = grpc.Client & { List: ListFn };
type ListerConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ListerClient;

let definition: protoLoader.PackageDefinition | null = null;
let lister: ListerConstructor | null = null;

/** The .proto ships in the package's proto/ folder (two levels above both src/kubernetes and dist/kubernetes). */
export function protoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', '..', 'proto', 'kubelet-podresources-v1.proto');
}

function packageDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoaderLib().loadSync(protoPath(), { keepCase: false, longs: Number, enums: String, defaults: true, arrays: true });
  return definition;
}

/** The service as the .proto defines it, with protobufjs (de)serialisers: for a test server or a fake kubelet. */
export function podResourcesServiceDefinition(): grpc.ServiceDefinition {
  return packageDefinition()['v1.PodResourcesLister'] as grpc.ServiceDefinition;
}

/**
 * The client: the .proto's List method, except that the reply is handed over as raw bytes and
 * decoded by wire.ts (selective, sliced) instead of protobufjs (whole, on the event loop).
 */
function listerConstructor(): ListerConstructor {
  if (lister) return lister;
  const list = podResourcesServiceDefinition().List as grpc.MethodDefinition<object, unknown>;
  lister = grpcLib().makeGenericClientConstructor(
    { List: { ...list, responseDeserialize: (bytes: Buffer) => bytes } },
    'PodResourcesLister',
  ) as unknown as ListerConstructor;
  return lister;
}

/** Maps a failed call to a code. Exported for tests. */
export function classifyCallError(e: { code?: number; details?: string; message?: string }, timeoutMs: number, maxReceiveBytes: number): PodResourcesError {
  const details = e.details || e.message || '';
  const code = typeof e.code === 'number' ? e.code : null;
  if (/EACCES|EPERM/.test(details)) {
    return new PodResourcesError('PERMISSION_DENIED', `permission denied connecting to the socket (${details}); the kubelet's socket is root's`, code);
  }
  const status = grpcLib().status;
  switch (code) {
    case status.DEADLINE_EXCEEDED:
      return new PodResourcesError('TIMEOUT', `no reply within ${timeoutMs} ms`, code);
    case status.RESOURCE_EXHAUSTED:
      return new PodResourcesError('REPLY_TOO_LARGE', `reply larger than ${maxReceiveBytes} bytes (${details})`, code);
    case status.UNIMPLEMENTED:
      return new PodResourcesError('UNIMPLEMENTED', `the server does not implement v1.PodResourcesLister/List (${details})`, code);
    case status.INTERNAL:
      return new PodResourcesError('BAD_REPLY', `not a PodResources reply (${details})`, code);
    case status.UNAVAILABLE:
      if (/protocol error|parse error|http2|PROTOCOL_ERROR|Bad HTTP|non-HTTP|Unexpected/i.test(details)) {
        return new PodResourcesError('BAD_REPLY', `the socket does not speak gRPC (${details})`, code);
      }
      return new PodResourcesError('UNAVAILABLE', `connection failed (${details})`, code);
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
      return new PodResourcesError('PERMISSION_DENIED', details || 'permission denied', code);
    default:
      return new PodResourcesError('ERROR', `gRPC status ${code ?? '?'}: ${details}`, code);
  }
}

/**
 * Calls List on the kubelet's socket. Resolves with the reply (pods that hold devices) or rejects
 * with a PodResourcesError; never takes longer than timeoutMs (+ a small grace for the watchdog).
 */
export async function listPodResources(socketPath: string, options: ListOptions): Promise<ListResult> {
  try {
    const st = await stat(socketPath);
    if (!st.isSocket()) throw new PodResourcesError('NOT_A_SOCKET', `${socketPath} is not a unix socket`);
  } catch (e) {
    if (e instanceof PodResourcesError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PodResourcesError('SOCKET_MISSING', `no kubelet pod-resources socket at ${socketPath} (is /var/lib/kubelet/pod-resources mounted?)`);
    }
    if (code === 'EACCES' || code === 'EPERM') throw new PodResourcesError('PERMISSION_DENIED', `cannot reach ${socketPath}: ${code}`);
    throw new PodResourcesError('ERROR', `cannot stat ${socketPath}: ${(e as Error).message}`);
  }
  const Lister = listerConstructor();
  const client = new Lister(`unix:${socketPath}`, grpcLib().credentials.createInsecure(), {
    'grpc.max_receive_message_length': options.maxReceiveBytes,
    'grpc.max_send_message_length': 1024,
    'grpc.enable_retries': 0,
    'grpc.service_config_disable_resolution': 1,
  });
  let reply: Buffer;
  try {
    reply = await new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const settle = (error: PodResourcesError | null, value?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        options.signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(value!);
      };
      // grpc-js enforces the deadline; this watchdog only guards against it not doing so.
      const watchdog = setTimeout(() => {
        call.cancel();
        settle(new PodResourcesError('TIMEOUT', `no reply within ${options.timeoutMs} ms`));
      }, options.timeoutMs + 250);
      const onAbort = () => {
        call.cancel();
        settle(new PodResourcesError('ERROR', 'cancelled'));
      };
      const call = client.List({}, { deadline: Date.now() + options.timeoutMs }, (error, value) => {
        if (error) settle(classifyCallError(error, options.timeoutMs, options.maxReceiveBytes));
        else if (!Buffer.isBuffer(value)) settle(new PodResourcesError('BAD_REPLY', 'the reply is not a message'));
        else settle(null, value);
      });
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  } finally {
    client.close();
  }
  const t0 = performance.now();
  try {
    const { list, ignored } = await decodeListReply(reply, { keep: options.keepResource ?? ((r) => isNvidiaGpuResource(r)) });
    return { list, ignored, bytes: reply.length, decodeMs: performance.now() - t0 };
  } catch (e) {
    throw new PodResourcesError('BAD_REPLY', `not a PodResources reply (${(e as Error).message})`);
  }
}
