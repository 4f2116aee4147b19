/**
 * A minimal ustar reader and writer for bundles: regular files with short, flat names only.
 * Anything else in an archive (links, directories, `..`, absolute paths, bad checksums) is
 * refused, because bundles may come from a shared, untrusted cache.
 * @module
 */

const BLOCK = 512;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** One file in a tar archive. */
export interface TarEntry {
  name: string;
  data: Uint8Array;
}

/** Packs `entries` into an uncompressed ustar archive. */
export function packTar(entries: TarEntry[]): Uint8Array {
  let total = BLOCK * 2;
  for (const entry of entries) total += BLOCK + roundUp(entry.data.length);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const entry of entries) {
    assertSafeName(entry.name);
    out.set(header(entry.name, entry.data.length), offset);
    offset += BLOCK;
    out.set(entry.data, offset);
    offset += roundUp(entry.data.length);
  }
  return out;
}

/** Unpacks a ustar archive made by {@linkcode packTar}; throws SyntaxError on anything else. */
export function unpackTar(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (true) {
    if (offset + BLOCK > archive.length) throw new SyntaxError("Unexpected end of archive");
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) return entries;
    const name = readString(block, 0, 100);
    const prefix = readString(block, 345, 155);
    const type = String.fromCharCode(block[156] ?? 0);
    if (prefix !== "" || !SAFE_NAME.test(name) || name.includes("..")) {
      throw new SyntaxError(`Unsafe entry name "${prefix ? `${prefix}/` : ""}${name}"`);
    }
    if (type !== "0" && type !== "\0") {
      throw new SyntaxError(`Entry "${name}" is not a regular file (type "${type}")`);
    }
    if (readOctal(block, 148, 8) !== checksum(block)) {
      throw new SyntaxError(`Bad header checksum for entry "${name}"`);
    }
    const size = readOctal(block, 124, 12);
    offset += BLOCK;
    if (offset + size > archive.length) throw new SyntaxError(`Truncated entry "${name}"`);
    entries.push({ name, data: archive.subarray(offset, offset + size) });
    offset += roundUp(size);
  }
}

function assertSafeName(name: string): void {
  if (!SAFE_NAME.test(name) || name.includes("..")) {
    throw new TypeError(`Unsafe tar entry name "${name}"`);
  }
}

function header(name: string, size: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeString(block, 0, name);
  writeString(block, 100, "0000644\0");
  writeString(block, 108, "0000000\0");
  writeString(block, 116, "0000000\0");
  writeString(block, 124, size.toString(8).padStart(11, "0") + "\0");
  writeString(block, 136, "00000000000\0"); // mtime 0: bundles are reproducible
  writeString(block, 148, "        ");
  block[156] = "0".charCodeAt(0);
  writeString(block, 257, "ustar\0");
  writeString(block, 263, "00");
  writeString(block, 148, checksum(block).toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** The header checksum: the byte sum with the checksum field itself read as spaces. */
function checksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum;
}

function writeString(block: Uint8Array, offset: number, text: string): void {
  block.set(new TextEncoder().encode(text), offset);
}

function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
}

function readOctal(block: Uint8Array, offset: number, length: number): number {
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new SyntaxError(`Bad numeric field "${text}"`);
  return parseInt(text, 8);
}

function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}
