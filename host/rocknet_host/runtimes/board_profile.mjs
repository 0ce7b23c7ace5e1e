// A runtime profile (rocknet_host/runtimes/profiles.py) applied to a fresh MicroPython
// interpreter, and the AES that its emulated `aesio` / `cryptolib` modules call (Node.js's
// crypto: ECB, CBC, CTR).
//   installProfile(mp, spec): spec = {"dir": str, "files": {name: source}, "code": str}
import { createCipheriv, createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";

// rn_aes(mode, key_hex, iv_hex, data_hex, decrypt) -> hex: mode "ecb" / "cbc" (whole 16-byte
// blocks) or "ctr" (any length; the counter block iv incremented big-endian over 128 bits).
globalThis.rn_aes = (mode, keyHex, ivHex, dataHex, decrypt) => {
  const key = Buffer.from(keyHex, "hex");
  const alg = `aes-${key.length * 8}-${mode}`;
  const iv = mode === "ecb" ? null : Buffer.from(ivHex, "hex");
  const c = decrypt && mode !== "ctr" ? createDecipheriv(alg, key, iv) : createCipheriv(alg, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.from(dataHex, "hex")), c.final()]).toString("hex");
};

export function loadProfile(path) {
  return path ? JSON.parse(readFileSync(path, "utf8")) : null;
}

// Put the interpreter's GC heap where the board has it (the profile's heap_base), before
// `loadMicroPython`. The collector treats any word that spells a live block's address as a
// pointer to it, so what int16 and 8-bit data keep alive depends on where the heap lies (at
// WebAssembly's ~0x30000, an int16 3 beside a multiple of 16 spells one; on an nRF52840 it
// takes 0x2001..0x2003). The emscripten module is published as globalThis.Module just before
// `mp_js_init` allocates the heap (`heapsize` bytes, its block tables, about 1/32 of it, in
// front of the blocks); an allocation reaching up to there puts the first blocks at the base
// (address space only: its pages are never touched). Blocks are taken lowest first, as on
// the board; areas the port adds when it needs more lie above.
export function placeHeap(spec, heapsize) {
  const base = spec && spec.heap_base;
  if (!base) return;
  const start = base - Math.floor(heapsize / 32);
  let mod;
  Object.defineProperty(globalThis, "Module", {
    configurable: true,
    get: () => mod,
    set(m) {
      mod = m;
      const probe = m._malloc(16);
      m._free(probe);
      if (start > probe + 16 && !m._malloc(start - probe - 16)) throw new Error("heap_base: no room");
    },
  });
}

export function installProfile(mp, spec) {
  if (!spec) return;
  let cur = "";
  for (const part of spec.dir.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
  for (const [name, src] of Object.entries(spec.files)) mp.FS.writeFile(spec.dir + "/" + name, src);
  mp.runPython(spec.code);
}

// One heap checkpoint (rocknet_host/runtimes/heap.py): the largest block before collecting, then the
// device tracker collects, records and raises MemoryError over the budget. `run(code)` runs
// Python and returns what it printed (the caller keeps that output away from the user).
const BLOCK = 16;
function maxBlock(text) {
  const m = /max blk sz: (\d+)/.exec(text);
  return m ? parseInt(m[1], 10) * BLOCK : 0;
}
// A label's trailing number goes in as an int: a short string literal in compiled code is
// interned for good (a qstr, in the heap), so "round<r>" would leave a new one per round.
function splitLabel(label) {
  const m = /^(.*?)(0|[1-9][0-9]{0,8})$/.exec(label);
  return m ? [m[1], Number(m[2])] : [label, -1];
}
export function heapCheck(state, run, label) {
  const big = maxBlock(run("import micropython\nmicropython.mem_info()"));
  // a collection of its own first: the tracker's then sees the same heap whatever the last
  // call left on the stack (one collection right after a step keeps some of its garbage)
  run("import gc\ngc.collect()");
  const [kind, num] = splitLabel(label);
  try {
    run("import _rn_heap\n" +
        `_rn_heap.check(${JSON.stringify(kind)}, ${num}, ${big}, ${state.prevBig || 0}, ` +
        "list(globals().values()))\ndel _rn_heap");
  } finally {  // the largest block that survived this collection, for the next checkpoint
    state.prevBig = maxBlock(run("import micropython\nmicropython.mem_info()"));
  }
}
