// A runtime profile (rocknet_host/runtimes/profiles.py) applied to a fresh MicroPython interpreter, and
// the AES that its emulated `aesio` / `cryptolib` modules call (Node.js's crypto, ECB).
//   installProfile(mp, spec): spec = {"dir": str, "files": {name: source}, "code": str}
import { createCipheriv, createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";

// rn_aes_ecb(key_hex, data_hex, decrypt) -> hex; data is whole 16-byte blocks.
globalThis.rn_aes_ecb = (keyHex, dataHex, decrypt) => {
  const key = Buffer.from(keyHex, "hex");
  const alg = `aes-${key.length * 8}-ecb`;
  const c = decrypt ? createDecipheriv(alg, key, null) : createCipheriv(alg, key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.from(dataHex, "hex")), c.final()]).toString("hex");
};

export function loadProfile(path) {
  return path ? JSON.parse(readFileSync(path, "utf8")) : null;
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
export function heapCheck(state, run, label) {
  const big = maxBlock(run("import micropython\nmicropython.mem_info()"));
  try {
    run("import _rn_heap\n" +
        `_rn_heap.check(${JSON.stringify(label)}, ${big}, ${state.prevBig || 0}, ` +
        "list(globals().values()))\ndel _rn_heap");
  } finally {  // the largest block that survived this collection, for the next checkpoint
    state.prevBig = maxBlock(run("import micropython\nmicropython.mem_info()"));
  }
}
