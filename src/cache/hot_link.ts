/**
 * How a hot copy's file reaches target/ and back: a hard link where the two share a file system
 * that cannot clone (ext4), a copy elsewhere (another device, or a file system that clones, where
 * the kernel's copy is a clone: its own inode and mtime, no blocks of its own). A link costs no
 * disk and no bytes written, but the file is then one inode in the cache and in every target dir
 * that links it; what that means for cargo's mtime checks is decided by the caller
 * (dispatch/link_plan.ts), what it means for the hot copy's safety by its stat signature.
 * @module
 */

import { dirname, join } from "node:path";

/**
 * Size, mtime and inode: a hot copy rewritten in any way (a `strip` through a link, an editor)
 * changes at least one. Not ctime, which every new link to the inode changes.
 *
 * @example
 * ```ts
 * import { hotSignature } from "./hot_link.ts";
 * const path = await Deno.makeTempFile();
 * console.log(hotSignature(Deno.statSync(path)).split(":").length); // 3
 * ```
 */
export function hotSignature(info: Deno.FileInfo): string {
  return `${info.size}:${info.mtime?.getTime() ?? 0}:${info.ino ?? 0}`;
}

/**
 * A hot file's mode, as rustc leaves its outputs: writable. Not read-only, although nothing of
 * ours writes it again: a file a target dir links shares its mode, and rustc refuses to replace
 * an output it finds read-only ("output file … is not writeable"), so a rebuild would fail.
 */
export function hotModeOf(executable: boolean): number {
  return executable ? 0o755 : 0o644;
}

/**
 * Puts `source` at `dest` through a temporary name and a rename (cargo never sees half a file):
 * a hard link when `link` and the two are on one device, else a copy with `copyMode` (a copy is
 * the build's own file, writable like rustc's). Resolves to how it was placed and its bytes.
 */
export function placeFile(
  source: string,
  dest: string,
  options: { link: boolean; copyMode: number },
): { linked: boolean; bytes: number } {
  const temp = join(dirname(dest), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    let linked = false;
    if (options.link) {
      try {
        Deno.linkSync(source, temp);
        linked = true;
      } catch {
        // another device after all, or a file system without hard links: a copy serves
      }
    }
    if (!linked) {
      // In the kernel (copy_file_range): a clone where the file system can.
      Deno.copyFileSync(source, temp);
      Deno.chmodSync(temp, options.copyMode);
    }
    const bytes = Deno.statSync(temp).size;
    Deno.renameSync(temp, dest);
    return { linked, bytes };
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch {
      // nothing was placed
    }
    throw error;
  }
}

/** File systems whose in-kernel copy clones: there a copy is as cheap as a link, and safer. */
const CLONING_FILE_SYSTEMS = new Set(["xfs", "btrfs", "bcachefs", "ocfs2"]);
const fileSystemByDevice = new Map<number, string | undefined>();

/**
 * Whether the file system of device `dev` (a stat's `dev`) clones on copy, by
 * /proc/self/mountinfo, read once per device; false when it cannot be told (a link then serves).
 */
export function clonesFiles(dev: number): boolean {
  if (!fileSystemByDevice.has(dev)) fileSystemByDevice.set(dev, fileSystemOf(dev));
  return CLONING_FILE_SYSTEMS.has(fileSystemByDevice.get(dev) ?? "");
}

function fileSystemOf(dev: number): string | undefined {
  const id = BigInt(dev);
  const major = ((id >> 8n) & 0xfffn) | ((id >> 32n) & ~0xfffn);
  const minor = (id & 0xffn) | ((id >> 12n) & ~0xffn);
  let mounts: string;
  try {
    mounts = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return undefined;
  }
  for (const line of mounts.split("\n")) {
    // `36 35 98:0 /root /mnt rw,noatime shared:1 - ext4 /dev/vda rw`
    const fields = line.split(" ");
    if (fields[2] !== `${major}:${minor}`) continue;
    const separator = fields.indexOf("-", 6);
    if (separator !== -1) return fields[separator + 1];
  }
  return undefined;
}
