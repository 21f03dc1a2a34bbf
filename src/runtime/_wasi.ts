// WASI preview 1, worker side: every call that reaches outside the plugin is
// a keycard host call (decided by Cedar and audited on the main thread), and
// a denial or anything unsupported is an errno the plugin sees, never a trap.
//   stdout/stderr writes -> log.write   clocks -> clock.now
//   random -> random.get                environ -> env.get per configured variable
//   args -> empty                       proc_exit -> ends the call with its code
// Preopened directories (fd 3, 4, ...) are data-root paths; opening a file
// reads it through fs.read into an fd buffer, writes flush through fs.write
// on close: every file operation is decided and audited like any fs.* call.

/** Every function of `wasi_snapshot_preview1`. */
export const WASI_FUNCTIONS: ReadonlySet<string> = new Set([
  "args_get",
  "args_sizes_get",
  "environ_get",
  "environ_sizes_get",
  "clock_res_get",
  "clock_time_get",
  "fd_advise",
  "fd_allocate",
  "fd_close",
  "fd_datasync",
  "fd_fdstat_get",
  "fd_fdstat_set_flags",
  "fd_fdstat_set_rights",
  "fd_filestat_get",
  "fd_filestat_set_size",
  "fd_filestat_set_times",
  "fd_pread",
  "fd_prestat_get",
  "fd_prestat_dir_name",
  "fd_pwrite",
  "fd_read",
  "fd_readdir",
  "fd_renumber",
  "fd_seek",
  "fd_sync",
  "fd_tell",
  "fd_write",
  "path_create_directory",
  "path_filestat_get",
  "path_filestat_set_times",
  "path_link",
  "path_open",
  "path_readlink",
  "path_remove_directory",
  "path_rename",
  "path_symlink",
  "path_unlink_file",
  "poll_oneoff",
  "proc_exit",
  "proc_raise",
  "sched_yield",
  "random_get",
  "sock_accept",
  "sock_recv",
  "sock_send",
  "sock_shutdown",
]); // deno-fmt-ignore

const ERRNO = {
  success: 0,
  acces: 2,
  badf: 8,
  exist: 20,
  inval: 28,
  io: 29,
  isdir: 31,
  noent: 44,
  nosys: 52,
  notdir: 54,
  notcapable: 76,
} as const;

const OFLAGS = { creat: 1, directory: 2, excl: 4, trunc: 8 } as const;
const RIGHT_FD_WRITE = 1n << 6n;

interface OpenDir {
  kind: "dir";
  path: string;
}

interface OpenFile {
  kind?: "file";
  path: string;
  data: Uint8Array;
  size: number;
  position: number;
  writable: boolean;
  dirty: boolean;
}

/** Thrown by `proc_exit`: ends the call with its code. */
export class WasiExit extends Error {
  /** The exit code; 0 is success with the output so far. */
  readonly code: number;
  /** @param code The plugin's exit code. */
  constructor(code: number) {
    super(`The plugin exited with code ${code}`);
    this.name = "WasiExit";
    this.code = code;
  }
}

/** What the WASI functions need from the worker. */
export interface WasiHost {
  /** The instance's linear memory (available once instantiated). */
  memory(): WebAssembly.Memory | undefined;
  /**
   * Calls a keycard host function by import name, with optional raw bytes
   * after the JSON; the response's first byte is the status (0 ok).
   */
  call(name: string, request: unknown, body?: Uint8Array): Uint8Array | undefined;
  /** Preopened directories, as data-root paths; they become fds 3, 4, ... */
  preopens: readonly string[];
  /** The plugin's configured variable names (its environment). */
  variables: readonly string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Builds the WASI imports a module asks for. Unsupported ones answer ENOSYS.
 * @param names The `wasi_snapshot_preview1` function names the module imports.
 */
export function wasiImports(names: readonly string[], host: WasiHost): Record<string, CallableFunction> {
  // Start code runs only once the worker holds the memory (see _worker.ts):
  // no memory here means the module exports none.
  const memory = (): WebAssembly.Memory => {
    const found = host.memory();
    if (!found) throw new TypeError('Cannot serve a WASI call: the plugin exports no linear memory named "memory"');
    return found;
  };
  const view = () => new DataView(memory().buffer);
  const bytes = () => new Uint8Array(memory().buffer);
  const ok = (response: Uint8Array | undefined) => response !== undefined && response[0] === 0;
  const payload = (response: Uint8Array) => response.subarray(1);

  /** The environment: each configured variable the plugin may read (one env.get decision each). */
  const environment = (): Uint8Array[] =>
    host.variables.flatMap((name) => {
      const response = host.call("keycard_env_get", { name });
      return ok(response) ? [encoder.encode(`${name}=${decoder.decode(payload(response!))}\0`)] : [];
    });

  const files = new Map<number, OpenFile>();
  const dirs = new Map<number, OpenDir>();
  /** The directory behind an fd: a preopen or a directory opened with O_DIRECTORY. */
  const dirOf = (fd: number): string | undefined => host.preopens[fd - 3] ?? dirs.get(fd)?.path;
  let nextFd = 3 + host.preopens.length;
  /** A host call's status as an errno. */
  const errnoOf = (response: Uint8Array | undefined): number => {
    if (response === undefined) return ERRNO.acces;
    if (response[0] === 0) return ERRNO.success;
    const { code } = JSON.parse(decoder.decode(response.subarray(1))) as { code: string };
    return code === "denied"
      ? ERRNO.acces
      : code === "not_found"
      ? ERRNO.noent
      : code === "invalid"
      ? ERRNO.inval
      : ERRNO.io;
  };

  const table: Record<string, CallableFunction> = {
    args_sizes_get: (argc: number, size: number) => {
      view().setUint32(argc, 0, true);
      view().setUint32(size, 0, true);
      return ERRNO.success;
    },
    args_get: () => ERRNO.success,
    environ_sizes_get: (count: number, size: number) => {
      const entries = environment();
      view().setUint32(count, entries.length, true);
      view().setUint32(size, entries.reduce((sum, e) => sum + e.length, 0), true);
      return ERRNO.success;
    },
    environ_get: (pointers: number, buffer: number) => {
      let at = buffer;
      environment().forEach((entry, i) => {
        view().setUint32(pointers + i * 4, at, true);
        bytes().set(entry, at);
        at += entry.length;
      });
      return ERRNO.success;
    },
    clock_res_get: (_id: number, out: number) => {
      view().setBigUint64(out, 1_000_000n, true);
      return ERRNO.success;
    },
    clock_time_get: (id: number, _precision: bigint, out: number) => {
      const response = host.call("keycard_clock_now", {});
      if (!ok(response)) return ERRNO.acces;
      const ns = id === 0
        ? BigInt((JSON.parse(decoder.decode(payload(response!))) as { unixMs: number }).unixMs) * 1_000_000n
        : BigInt(Math.round(performance.now() * 1_000_000));
      view().setBigUint64(out, ns, true);
      return ERRNO.success;
    },
    random_get: (buffer: number, length: number) => {
      for (let done = 0; done < length;) {
        const n = Math.min(4096, length - done);
        const response = host.call("keycard_random_get", { bytes: n });
        if (!ok(response)) return ERRNO.acces;
        bytes().set(payload(response!).subarray(0, n), buffer + done);
        done += n;
      }
      return ERRNO.success;
    },
    fd_write: (fd: number, iovs: number, count: number, written: number) => {
      const file = files.get(fd);
      if (fd !== 1 && fd !== 2 && !file) return ERRNO.badf;
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < count; i++) {
        const base = view().getUint32(iovs + i * 8, true);
        const length = view().getUint32(iovs + i * 8 + 4, true);
        parts.push(bytes().slice(base, base + length));
        total += length;
      }
      if (file) {
        if (!file.writable) return ERRNO.badf;
        const end = file.position + total;
        if (end > file.data.length) {
          const grown = new Uint8Array(Math.max(end, file.data.length * 2));
          grown.set(file.data.subarray(0, file.size));
          file.data = grown;
        }
        file.data.set(concat(parts, total), file.position);
        file.position = end;
        file.size = Math.max(file.size, end);
        file.dirty = true;
        view().setUint32(written, total, true);
        return ERRNO.success;
      }
      const message = decoder.decode(concat(parts, total)).replace(/\n$/, "");
      const response = host.call("keycard_log_write", { level: fd === 1 ? "info" : "error", message });
      if (!ok(response)) return ERRNO.acces;
      view().setUint32(written, total, true);
      return ERRNO.success;
    },
    fd_fdstat_get: (fd: number, out: number) => {
      const preopen = dirOf(fd) !== undefined;
      if (fd > 2 && !files.has(fd) && !preopen) return ERRNO.badf;
      const v = view();
      if (fd > 2) {
        v.setUint8(out, preopen ? 3 : 4); // directory or regular file
        v.setUint16(out + 2, 0, true);
        v.setBigUint64(out + 8, 0xffff_ffffn, true);
        v.setBigUint64(out + 16, 0xffff_ffffn, true);
        return ERRNO.success;
      }
      v.setUint8(out, 2); // character device
      v.setUint16(out + 2, 0, true);
      v.setBigUint64(out + 8, fd === 0 ? 0n : 1n << 6n, true); // fd_write for stdout/stderr
      v.setBigUint64(out + 16, 0n, true);
      return ERRNO.success;
    },
    fd_prestat_get: (fd: number, out: number) => {
      const dir = host.preopens[fd - 3];
      if (dir === undefined) return ERRNO.badf; // ends wasi-libc's scan of the preopens
      view().setUint8(out, 0); // a directory
      view().setUint32(out + 4, encoder.encode(dir).length, true);
      return ERRNO.success;
    },
    fd_prestat_dir_name: (fd: number, out: number, length: number) => {
      const dir = host.preopens[fd - 3];
      if (dir === undefined) return ERRNO.badf;
      bytes().set(encoder.encode(dir).subarray(0, length), out);
      return ERRNO.success;
    },
    path_open: (
      dirfd: number,
      _dirflags: number,
      pathPtr: number,
      pathLength: number,
      oflags: number,
      rights: bigint,
      _inherited: bigint,
      _fdflags: number,
      out: number,
    ) => {
      const dir = dirOf(dirfd);
      if (dir === undefined) return files.has(dirfd) ? ERRNO.notdir : ERRNO.badf;
      const relative = decoder.decode(bytes().slice(pathPtr, pathPtr + pathLength));
      const path = `${dir.replace(/\/$/, "")}/${relative}`;
      if (oflags & OFLAGS.directory) {
        const error = errnoOf(host.call("keycard_fs_list", { path }));
        if (error !== ERRNO.success) return error;
        const fd = nextFd++;
        dirs.set(fd, { kind: "dir", path });
        view().setUint32(out, fd, true);
        return ERRNO.success;
      }
      const writable = (BigInt(rights) & RIGHT_FD_WRITE) !== 0n;
      let data = new Uint8Array();
      if (!(writable && oflags & OFLAGS.trunc)) {
        const response = host.call("keycard_fs_read", { path });
        const error = errnoOf(response);
        if (error === ERRNO.success) {
          if (oflags & OFLAGS.excl) return ERRNO.exist;
          data = payload(response!).slice();
        } else if (!(oflags & OFLAGS.creat) || (error !== ERRNO.noent && !(writable && error === ERRNO.acces))) {
          return error;
        }
      }
      const fd = nextFd++;
      files.set(fd, {
        path,
        data,
        size: data.length,
        position: 0,
        writable,
        dirty: writable && (oflags & OFLAGS.creat) !== 0,
      });
      view().setUint32(out, fd, true);
      return ERRNO.success;
    },
    fd_read: (fd: number, iovs: number, count: number, read: number) => {
      const file = files.get(fd);
      if (!file) return ERRNO.badf;
      let total = 0;
      for (let i = 0; i < count; i++) {
        const base = view().getUint32(iovs + i * 8, true);
        const length = view().getUint32(iovs + i * 8 + 4, true);
        const chunk = file.data.subarray(file.position, Math.min(file.size, file.position + length));
        bytes().set(chunk, base);
        file.position += chunk.length;
        total += chunk.length;
        if (chunk.length < length) break;
      }
      view().setUint32(read, total, true);
      return ERRNO.success;
    },
    fd_seek: (fd: number, offset: bigint, whence: number, out: number) => {
      const file = files.get(fd);
      if (!file) return fd <= 2 ? ERRNO.inval : ERRNO.badf;
      const base = whence === 0 ? 0 : whence === 1 ? file.position : file.size;
      const next = base + Number(offset);
      if (next < 0) return ERRNO.inval;
      file.position = next;
      view().setBigUint64(out, BigInt(next), true);
      return ERRNO.success;
    },
    fd_tell: (fd: number, out: number) => {
      const file = files.get(fd);
      if (!file) return ERRNO.badf;
      view().setBigUint64(out, BigInt(file.position), true);
      return ERRNO.success;
    },
    fd_filestat_get: (fd: number, out: number) => {
      const file = files.get(fd);
      if (!file && fd > 2) return ERRNO.badf;
      const v = view();
      for (let i = 0; i < 64; i += 8) v.setBigUint64(out + i, 0n, true);
      v.setUint8(out + 16, file ? 4 : 2); // regular file, or a character device for stdio
      v.setBigUint64(out + 24, 1n, true);
      v.setBigUint64(out + 32, BigInt(file?.size ?? 0), true);
      return ERRNO.success;
    },
    fd_close: (fd: number) => {
      if (fd <= 2 || host.preopens[fd - 3] !== undefined) return ERRNO.success;
      if (dirs.delete(fd)) return ERRNO.success;
      const file = files.get(fd);
      if (!file) return ERRNO.badf;
      files.delete(fd);
      if (!file.dirty) return ERRNO.success;
      return errnoOf(host.call("keycard_fs_write", { path: file.path }, file.data.subarray(0, file.size)));
    },
    fd_readdir: (fd: number, buffer: number, length: number, cookie: bigint, used: number) => {
      const dir = dirOf(fd);
      if (dir === undefined) return ERRNO.badf;
      const response = host.call("keycard_fs_list", { path: dir });
      const error = errnoOf(response);
      if (error !== ERRNO.success) return error;
      const entries = JSON.parse(decoder.decode(payload(response!))) as { name: string; kind: string }[];
      const out = new Uint8Array(length);
      let at = 0;
      for (let i = Number(cookie); i < entries.length && at < length; i++) {
        const name = encoder.encode(entries[i]!.name);
        const record = new Uint8Array(24 + name.length);
        const v = new DataView(record.buffer);
        v.setBigUint64(0, BigInt(i + 1), true); // d_next: the cookie of the next entry
        v.setUint32(16, name.length, true);
        v.setUint8(20, entries[i]!.kind === "dir" ? 3 : entries[i]!.kind === "symlink" ? 7 : 4);
        record.set(name, 24);
        // A record that does not fit is cut: wasi-libc then asks again with a larger buffer.
        const fit = Math.min(record.length, length - at);
        out.set(record.subarray(0, fit), at);
        at += fit;
      }
      bytes().set(out.subarray(0, at), buffer);
      view().setUint32(used, at, true);
      return ERRNO.success;
    },
    path_unlink_file: (dirfd: number, pathPtr: number, pathLength: number) => {
      const dir = dirOf(dirfd);
      if (dir === undefined) return ERRNO.badf;
      const relative = decoder.decode(bytes().slice(pathPtr, pathPtr + pathLength));
      return errnoOf(host.call("keycard_fs_delete", { path: `${dir.replace(/\/$/, "")}/${relative}` }));
    },
    sched_yield: () => ERRNO.success,
    proc_exit: (code: number) => {
      throw new WasiExit(code);
    },
    proc_raise: () => ERRNO.nosys,
  };
  const out: Record<string, CallableFunction> = {};
  for (const name of names) {
    const fn = table[name];
    // Bound with no receiver, and Extism's SDK passes its call context first: drop it.
    out[name] = fn ? (_ctx: unknown, ...args: never[]) => fn(...args) : () => ERRNO.nosys;
  }
  return out;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
