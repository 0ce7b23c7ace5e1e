// A virtual MicroPython board: the pinned MicroPython 1.29 + ulab (WebAssembly) serving its REPL
// over TCP, so that real `mpremote connect socket://127.0.0.1:PORT ...` drives it unchanged.
//
//   node virtual_board.mjs runtime=DIR [port=N] [host=127.0.0.1] [dir=FOLDER] [heapsize=BYTES]
//                          [profile=FILE.json] [heapcheck=exec]
//
// Prints one JSON line {"ready": true, "port": N} on stdout once listening; logs go to stderr.
// What it adds to the runtime's event-driven REPL (see notes/mixer-ble-runtimes.md, section E):
// - raw-paste requests (Ctrl-E A Ctrl-A) are refused with "R\x00", so mpremote falls back to the
//   plain raw REPL (the port's raw-paste ends every paste before running it);
// - a soft reboot (Ctrl-D on an empty line) prints "MPY: soft reboot", then starts a *fresh*
//   interpreter (new heap, no modules loaded) in the mode the REPL was in, like a board does;
// - Emscripten errno numbers (ENOENT = 44, ...) are translated into MicroPython's (ENOENT = 2)
//   in OSError, by wrappers around `os` and `open` installed at start-up;
// - the file system under "/" (minus dev, proc, tmp, home) is mirrored to a host folder after
//   every chunk of input, and loaded from it at start, so files survive a restart of the board;
// - profile=FILE.json (rocknet_host/runtimes/profiles.py) installs a board's module set at every boot;
//   heapcheck=exec takes a heap checkpoint (rocknet_host/runtimes/heap.py) after every raw-REPL
//   execution, and over the profile's budget appends the device's MemoryError to that
//   execution's error output, as a board running out of heap in that command would.
import { createServer } from "node:net";
import * as fs from "node:fs";
import { join } from "node:path";
import { heapCheck, installProfile, loadProfile, placeHeap } from "../runtimes/board_profile.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const i = a.indexOf("=");
  return [a.slice(0, i), a.slice(i + 1)];
}));
const runtime = args.runtime;
const host = args.host || "127.0.0.1";
const heapsize = parseInt(args.heapsize || String(32 * 1024 * 1024), 10);
const mirror = args.dir || null;
const profile = loadProfile(args.profile);
placeHeap(profile, heapsize);
const heapState = { prevBig: 0 };
let capture = null;     // output of the board's own checks, kept from the console
const { loadMicroPython } = await import(join(runtime, "micropython.mjs"));

const SYSTEM_DIRS = new Set(["dev", "proc", "tmp", "home"]);
const log = (...a) => process.stderr.write("virtual-board: " + a.join(" ") + "\n");

// Run once in every fresh interpreter: errno translation, sys.path, then forget the helpers.
const SETUP = `
def _rn_setup():
    import os, sys, builtins, errno
    # Emscripten (WASI) errno -> MicroPython/Linux errno, by name.
    em = {63: 'EPERM', 44: 'ENOENT', 29: 'EIO', 8: 'EBADF', 6: 'EAGAIN', 48: 'ENOMEM',
          2: 'EACCES', 10: 'EBUSY', 20: 'EEXIST', 75: 'EXDEV', 43: 'ENODEV', 54: 'ENOTDIR',
          31: 'EISDIR', 28: 'EINVAL', 41: 'ENFILE', 33: 'EMFILE', 59: 'ENOTTY', 22: 'EFBIG',
          51: 'ENOSPC', 70: 'ESPIPE', 69: 'EROFS', 37: 'ENAMETOOLONG', 52: 'ENOSYS',
          55: 'ENOTEMPTY', 32: 'ELOOP', 58: 'EOPNOTSUPP', 73: 'ETIMEDOUT'}
    linux = {'EPERM': 1, 'ENOENT': 2, 'EIO': 5, 'EBADF': 9, 'EAGAIN': 11, 'ENOMEM': 12,
             'EACCES': 13, 'EBUSY': 16, 'EEXIST': 17, 'EXDEV': 18, 'ENODEV': 19,
             'ENOTDIR': 20, 'EISDIR': 21, 'EINVAL': 22, 'ENFILE': 23, 'EMFILE': 24,
             'ENOTTY': 25, 'EFBIG': 27, 'ENOSPC': 28, 'ESPIPE': 29, 'EROFS': 30,
             'ENAMETOOLONG': 36, 'ENOSYS': 38, 'ENOTEMPTY': 39, 'ELOOP': 40,
             'EOPNOTSUPP': 95, 'ETIMEDOUT': 110}
    table = {}
    for code, name in em.items():
        table[code] = getattr(errno, name, linux[name])

    def wrap(f):
        def w(*a, **k):
            if a and a[0] == '':  # a board's VFS takes '' for the current folder; libc does not
                a = (os.getcwd(),) + a[1:]
            try:
                return f(*a, **k)
            except OSError as e:
                if e.args and e.args[0] in table:
                    raise OSError(table[e.args[0]])
                raise
        return w

    for name in ('stat', 'ilistdir', 'mkdir', 'rmdir', 'remove', 'unlink',
                 'rename', 'chdir', 'statvfs'):
        if hasattr(os, name):
            setattr(os, name, wrap(getattr(os, name)))
    builtins.open = wrap(builtins.open)
    stat, ilistdir = os.stat, os.ilistdir

    def ilistdir_sized(path='.'):
        # (name, type, inode, size) as on a board's VFS; VfsPosix gives no size
        base = (os.getcwd() if path in ('', '.') else path).rstrip('/') + '/'
        for e in ilistdir(path):
            if base == '/' and e[0] in ('dev', 'proc', 'home', 'tmp'):
                continue  # the Emscripten system folders are not part of the board
            size = stat(base + e[0])[6] if e[1] == 0x8000 else 0
            yield (e[0], e[1], e[2], size)
    os.ilistdir = ilistdir_sized
    os.listdir = lambda path='.': [e[0] for e in ilistdir_sized(path)]
    for p in ('', '/', '/lib'):
        if p not in sys.path:
            sys.path.append(p)
_rn_setup()
del _rn_setup
`;

let mp = null;          // the current interpreter
let out = [];           // bytes it printed, not yet sent
let muted = false;      // drop output while booting
let rawMode = false;    // which REPL mode the board is in (from what it printed)
let tail = "";          // last output characters, to spot the mode banners
let lastOut = 0;        // last byte printed

function onOutput(bytes) {
  if (capture !== null) { capture.push(...bytes); return; }
  if (muted) return;
  for (const b of bytes) {
    if (b === 0x0a && lastOut !== 0x0d) out.push(0x0d);  // boards print "\r\n" (cooked)
    lastOut = b;
    out.push(b);
    tail += String.fromCharCode(b);
    if (b === 0x3e || b === 0x20) {  // '>' or ' ' may end a prompt
      if (tail.endsWith("raw REPL; CTRL-B to exit\r\n>")) rawMode = true;
      else if (tail.endsWith(">>> ")) rawMode = false;
    }
    if (tail.length > 256) tail = tail.slice(-64);
  }
}

// ---- the host folder mirror -------------------------------------------------------------
const known = new Map();  // VFS path -> Buffer last written to the host folder ("" for dirs)

function hostPath(p) { return join(mirror, ...p.split("/").filter(Boolean)); }

function loadMirror() {
  known.clear();
  if (!mirror) return;
  fs.mkdirSync(mirror, { recursive: true });
  const walk = (hdir, vdir) => {
    for (const name of fs.readdirSync(hdir)) {
      if (vdir === "" && SYSTEM_DIRS.has(name)) continue;
      const h = join(hdir, name);
      const v = vdir + "/" + name;
      if (fs.statSync(h).isDirectory()) {
        try { mp.FS.mkdir(v); } catch (e) { /* exists (e.g. /lib) */ }
        known.set(v, "");
        walk(h, v);
      } else {
        const data = fs.readFileSync(h);
        mp.FS.writeFile(v, data);
        known.set(v, data);
      }
    }
  };
  walk(mirror, "");
}

function syncMirror() {
  if (!mirror || !mp) return;
  const seen = new Set();
  const walk = (vdir) => {
    let names;
    try { names = mp.FS.readdir(vdir || "/"); } catch (e) { return; }
    for (const name of names) {
      if (name === "." || name === "..") continue;
      if (vdir === "" && SYSTEM_DIRS.has(name)) continue;
      const v = vdir + "/" + name;
      let st;
      try { st = mp.FS.stat(v); } catch (e) { continue; }
      seen.add(v);
      if (mp.FS.isDir(st.mode)) {
        if (known.get(v) !== "") {
          if (known.has(v)) fs.rmSync(hostPath(v), { force: true });
          fs.mkdirSync(hostPath(v), { recursive: true });
          known.set(v, "");
        }
        walk(v);
      } else if (mp.FS.isFile(st.mode)) {
        const prev = known.get(v);
        if (prev !== undefined && prev !== "" && prev.length === st.size) {
          const data = Buffer.from(mp.FS.readFile(v));
          if (data.equals(prev)) continue;
        }
        const data = Buffer.from(mp.FS.readFile(v));
        if (prev === "") fs.rmSync(hostPath(v), { recursive: true, force: true });
        fs.writeFileSync(hostPath(v), data);
        known.set(v, data);
      }
    }
  };
  walk("");
  // Deepest first, so folders are empty when we reach them.
  const gone = [...known.keys()].filter((v) => !seen.has(v)).sort((a, b) => b.length - a.length);
  for (const v of gone) {
    fs.rmSync(hostPath(v), { recursive: true, force: true });
    known.delete(v);
  }
}

// ---- the interpreter --------------------------------------------------------------------
async function boot(intoRaw) {
  muted = true;
  mp = await loadMicroPython({
    url: join(runtime, "micropython-ulab.wasm"),
    heapsize,
    pystack: 16 * 1024,
    linebuffer: false,
    stdout: onOutput,
    stderr: onOutput,
  });
  loadMirror();
  mp.runPython(SETUP);
  installProfile(mp, profile);
  heapState.prevBig = 0;
  if (intoRaw) {
    mp.replInit();
    muted = false;
    await mp.replProcessCharWithAsyncify(0x01);  // prints the raw REPL banner and prompt
  } else {
    muted = false;
    mp.replInit();  // prints the banner and ">>> "
  }
}

// ---- the TCP side -----------------------------------------------------------------------
let client = null;
let queue = [];        // input chunks waiting to be fed
let busy = false;
let held = [];         // a possible raw-paste request in progress (Ctrl-E, 'A', Ctrl-A)

function flush() {
  if (out.length && client && !client.destroyed) client.write(Buffer.from(out));
  out = [];
}

function runCaptured(code) {
  capture = [];
  try {
    mp.runPython(code);
    return Buffer.from(capture).toString("utf8");
  } finally {
    capture = null;
  }
}

// After a raw-REPL execution: a heap checkpoint; over the budget, the MemoryError goes into
// the execution's error part (between the two Ctrl-D of "OK<out>\x04<err>\x04>").
function checkHeap() {
  try {
    heapCheck(heapState, runCaptured, "exec");
  } catch (e) {
    const msg = (e && e.name === "PythonError" ? e.message : String(e)).replace(/\n/g, "\r\n");
    let i = out.length - 2;
    while (i >= 0 && !(out[i] === 0x04 && out[i + 1] === 0x3e)) i--;
    if (i >= 0) out.splice(i, 0, ...Buffer.from(msg));
    else out.push(...Buffer.from(msg));
  }
}

async function feed(byte) {
  const wasRaw = rawMode;
  const r = await mp.replProcessCharWithAsyncify(byte);
  if (r !== 0) {
    out.push(...Buffer.from("MPY: soft reboot\r\n"));
    flush();
    syncMirror();
    await boot(rawMode);
  } else if (byte === 0x04 && wasRaw && rawMode && args.heapcheck === "exec") {
    checkHeap();
  }
}

async function pump() {
  if (busy) return;
  busy = true;
  try {
    while (queue.length) {
      const chunk = queue.shift();
      for (const b of chunk) {
        if (held.length === 0 && b === 0x05) { held.push(b); continue; }
        if (held.length === 1 && b === 0x41) { held.push(b); continue; }
        if (held.length === 2 && b === 0x01) {
          held = [];
          out.push(0x52, 0x00);  // "R\x00": raw-paste not supported, use the raw REPL
          continue;
        }
        if (held.length) {
          const h = held;
          held = [];
          for (const x of h) await feed(x);
        }
        await feed(b);
      }
      flush();
      syncMirror();
    }
  } catch (e) {
    log("error:", e && e.stack || e);
  } finally {
    busy = false;
  }
}

await boot(false);
out = [];  // nobody is listening to the first banner

const server = createServer((sock) => {
  if (client && !client.destroyed) client.destroy();  // one console at a time, newest wins
  client = sock;
  sock.setNoDelay(true);
  sock.on("data", (d) => { queue.push(d); pump(); });
  sock.on("error", () => {});
});
server.listen(parseInt(args.port || "0", 10), host, () => {
  process.stdout.write(JSON.stringify({ ready: true, port: server.address().port }) + "\n");
});
server.on("error", (e) => {
  process.stdout.write(JSON.stringify({ ready: false, error: String(e.message || e) }) + "\n");
  process.exit(1);
});

function stop() {
  try { syncMirror(); } catch (e) { /* best effort */ }
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
