// Runs device code inside the pinned MicroPython 1.29 + ulab (WebAssembly) for the host.
// Protocol: one JSON request per stdin line, one JSON reply per stdout line.
//   {"op": "exec", "code": str, "async": bool}  -> {"ok", "stdout", "out", "error"}
//                                                   ("nocheck": true: no heap checkpoint)
//   {"op": "mem_alloc"}                          -> {"ok", "mem_alloc"} (after a real collection)
//   {"op": "put", "path": str, "b64": str}       -> {"ok"}  (write a file into the VFS)
//   {"op": "heap", "label": str}                 -> {"ok"}  (a heap checkpoint, see heap.py;
//                                                   over the budget: ok false, MemoryError)
// heapcheck=call (argument): a heap checkpoint labelled "call" after every exec.
// Python code hands a result back by assigning a str to the global `_rn_out`.
// GC only runs between calls in this port, so every request is its own call.
import { createInterface } from "node:readline";
import { readFileSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join, dirname } from "node:path";
import { heapCheck, installProfile, loadProfile, placeHeap } from "./board_profile.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split("=")));
const pkgDir = args.runtime;
const heapsize = parseInt(args.heapsize || String(64 * 1024 * 1024), 10);
const { loadMicroPython } = await import(join(pkgDir, "micropython.mjs"));
const profile = loadProfile(args.profile);
placeHeap(profile, heapsize);

let captured = [];
const mp = await loadMicroPython({
  url: join(pkgDir, "micropython-ulab.wasm"),
  heapsize,
  pystack: 16 * 1024,
  linebuffer: false,
  stdout: (b) => captured.push(...b),
  stderr: (b) => captured.push(...b),
});

// Host channel (hostfd=R,W): device code calls rnhost.call(str) -> str, a blocking round trip
// to the host over a pipe pair (the simulator's virtual hardware waits there for its medium).
if (args.hostfd) {
  const [rfd, wfd] = args.hostfd.split(",").map(Number);
  const chunk = Buffer.alloc(1 << 16);
  let pending = Buffer.alloc(0);
  const readLine = () => {
    for (;;) {
      const nl = pending.indexOf(10);
      if (nl >= 0) {
        const line = pending.subarray(0, nl).toString("utf8");
        pending = pending.subarray(nl + 1);
        return line;
      }
      let n;
      try { n = readSync(rfd, chunk, 0, chunk.length, null); }
      catch (e) { if (e.code === "EAGAIN") continue; throw e; }
      if (n === 0) throw new Error("the host closed the channel");
      pending = Buffer.concat([pending, chunk.subarray(0, n)]);
    }
  };
  mp.registerJsModule("rnhost", {
    call: (s) => { writeSync(wfd, s + "\n"); return readLine(); },
  });
}

// Install device packages (directories given as deviceN=path) under /lib.
function mkdirs(path) {
  let cur = "";
  for (const part of path.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyTree(src, dst) {
  mkdirs(dst);
  for (const name of readdirSync(src)) {
    if (name === "__pycache__") continue;
    const s = join(src, name);
    const d = dst + "/" + name;
    if (statSync(s).isDirectory()) copyTree(s, d);
    else if (name.endsWith(".py") || name.endsWith(".mpy") || name.endsWith(".json")) mp.FS.writeFile(d, readFileSync(s));
  }
}
for (const [k, v] of Object.entries(args)) {
  if (k.startsWith("pkg")) { const [src, dst] = v.split(":"); copyTree(src, dst); }
}
// The board's module set (profile=FILE.json from rocknet_host/runtimes/profiles.py), before any import.
installProfile(mp, profile);

function reply(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }
function takeStdout() { const s = Buffer.from(captured).toString("utf8"); captured = []; return s; }
const heapState = { prevBig: 0 };
const runQuiet = (code) => { mp.runPython(code); return takeStdout(); };

async function handle(req) {
  try {
    if (req.op === "exec") {
      if (req.async) await mp.runPythonAsync(req.code); else mp.runPython(req.code);
      let out = null;
      try { out = mp.globals.get("_rn_out"); } catch (e) { out = null; }
      if (out !== undefined && out !== null) mp.runPython("del _rn_out");
      const stdout = takeStdout();
      if (args.heapcheck === "call" && !req.nocheck) {
        try { heapCheck(heapState, runQuiet, "call"); } catch (e) { e.rnStdout = stdout; throw e; }
      }
      return { ok: true, stdout, out: out ?? null };
    }
    if (req.op === "mem_alloc") {
      mp.runPython("import gc\ngc.collect()");
      mp.runPython("import gc\n_rn_out = str(gc.mem_alloc())");
      const v = parseInt(mp.globals.get("_rn_out"), 10);
      mp.runPython("del _rn_out");
      return { ok: true, mem_alloc: v, stdout: takeStdout() };
    }
    if (req.op === "heap") {
      heapCheck(heapState, runQuiet, req.label || "checkpoint");
      // the checkpoint's figures (the tracker's `last`: live, board-equivalent, largest block)
      const [live, board, big] = runQuiet(
        "import _rn_heap\nprint(*_rn_heap.last)\ndel _rn_heap").trim().split(/\s+/).map(Number);
      return { ok: true, live, board, big };
    }
    if (req.op === "put") {
      mkdirs(dirname(req.path));
      mp.FS.writeFile(req.path, Buffer.from(req.b64, "base64"));
      return { ok: true };
    }
    return { ok: false, error: "unknown op " + req.op };
  } catch (e) {
    const msg = e && e.name === "PythonError" ? e.message : String(e && e.stack || e);
    return { ok: false, error: msg, type: e && e.type, stdout: (e && e.rnStdout || "") + takeStdout() };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
reply({ ok: true, ready: true });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => reply(await handle(JSON.parse(line))));
});
rl.on("close", () => chain.then(() => process.exit(0)));
