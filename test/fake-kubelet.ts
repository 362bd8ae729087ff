/**
 * A stand-in for the kubelet's PodResources API in tests: a gRPC server implementing
 * v1.PodResourcesLister/List on a unix socket in a temp dir, and misbehaving variants (a server
 * that never answers, one that answers with bytes that are not a PodResources message, a socket
 * that speaks no HTTP/2 at all). It runs in the test's process; a `gpu-telemetry serve` child
 * connects to its socket like to the kubelet's.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { podResourcesServiceDefinition } from '../src/kubernetes/podresources.js';

export interface ReplyPod {
  name: string;
  namespace: string;
  containers: { name: string; devices: { resourceName: string; deviceIds: string[] }[] }[];
}

export type Behaviour =
  | { kind: 'reply'; pods: ReplyPod[] | (() => ReplyPod[]) }
  /** The gRPC handler never calls back. */
  | { kind: 'hang' }
  /** A gRPC reply of these exact bytes (pre-encoded, or not a ListPodResourcesResponse at all). */
  | { kind: 'raw'; bytes: Buffer }
  /** A gRPC error status. */
  | { kind: 'status'; code: grpc.status; details: string }
  /** A plain socket that accepts and never writes (no HTTP/2 at all). */
  | { kind: 'silent-socket' }
  /** A plain socket that writes garbage and closes. */
  | { kind: 'garbage-socket' };

export interface FakeKubelet {
  readonly socket: string;
  readonly calls: () => number;
  setBehaviour(b: Behaviour): void;
  close(): Promise<void>;
}

export function tempSocketPath(prefix = 'gt-kubelet-'): string {
  // unix socket paths are limited to 107 bytes: keep it short
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), prefix)), 'kubelet.sock');
}

/** A GPU pod: one container holding these device ids. */
export function gpuPod(name: string, ids: string[], opts: { namespace?: string; container?: string; resource?: string } = {}): ReplyPod {
  return {
    name,
    namespace: opts.namespace ?? 'ml',
    containers: [{ name: opts.container ?? 'main', devices: [{ resourceName: opts.resource ?? 'nvidia.com/gpu', deviceIds: ids }] }],
  };
}

export async function startFakeKubelet(behaviour: Behaviour, socket = tempSocketPath()): Promise<FakeKubelet> {
  let current = behaviour;
  let calls = 0;
  if (current.kind === 'silent-socket' || current.kind === 'garbage-socket') {
    const mode = current.kind;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      calls++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      if (mode === 'garbage-socket') {
        s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff\xfe garbage \x01\x02\x03'.repeat(8), 'latin1'));
        s.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    return {
      socket,
      calls: () => calls,
      setBehaviour: () => {
        throw new Error('a raw socket cannot change behaviour');
      },
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
  }
  const server = new grpc.Server();
  const listDef = (podResourcesServiceDefinition() as Record<string, grpc.MethodDefinition<unknown, unknown>>).List;
  // Messages are encoded by protobufjs from the .proto; a Buffer goes out as it is.
  const service: grpc.ServiceDefinition = {
    List: { ...listDef, responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : listDef.responseSerialize(v)) },
  };
  const handler = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    calls++;
    const b = current;
    switch (b.kind) {
      case 'reply':
        cb(null, { podResources: typeof b.pods === 'function' ? b.pods() : b.pods });
        return;
      case 'hang':
        return; // never answers
      case 'raw':
        cb(null, b.bytes);
        return;
      case 'status':
        cb({ code: b.code, details: b.details } as grpc.ServiceError);
        return;
      default:
        cb({ code: grpc.status.INTERNAL, details: 'unexpected behaviour' } as grpc.ServiceError);
    }
  };
  server.addService(service, { List: handler });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return {
    socket,
    calls: () => calls,
    setBehaviour: (b) => {
      current = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 200).unref();
      }),
  };
}

/** The bytes protobufjs (from the shipped .proto) encodes for this reply. */
export function encodeReply(pods: ReplyPod[]): Buffer {
  const listDef = (podResourcesServiceDefinition() as Record<string, grpc.MethodDefinition<unknown, unknown>>).List;
  return listDef.responseSerialize({ podResources: pods });
}

/** Bytes that are not a ListPodResourcesResponse: field 1 with a length far past the end. */
export const GARBAGE_MESSAGE = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
