/**
 * `cargo-warmup keygen [--out DIR]`: makes the Ed25519 key pair of a team cache's trusted writers.
 * The private key (`cargo-warmup.key`, mode 0600) is for the writers, such as CI, to name in
 * `signing-key-file`; the public key (`cargo-warmup.pub`) is for the readers' `trusted-keys`.
 * @module
 */

import { join, resolve } from "node:path";
import { generateKeyPair } from "../bundle/keys.ts";
import { parseFlags } from "./parse_flags.ts";

/** The private key's file name in the output directory. */
export const PRIVATE_KEY_FILE = "cargo-warmup.key";
/** The public key's file name in the output directory. */
export const PUBLIC_KEY_FILE = "cargo-warmup.pub";

export const KEYGEN_HELP = `Make an Ed25519 key pair for signing the bundles a team cache shares.

Usage: cargo-warmup keygen [--out DIR]

Writes DIR/${PRIVATE_KEY_FILE}, the private key (PKCS#8 PEM, mode 0600): give it only to the
writers you trust, such as CI, as [warmup] signing-key-file. Writes DIR/${PUBLIC_KEY_FILE}, the
public key (the base64 of its 32 bytes): readers list it, or that file, in [warmup] trusted-keys
and then accept from the shared cache only what a holder of the private key stored. An existing
key is never overwritten.

Options:
  --out DIR   Where to write the keys (default: the current directory; made if missing)
  -h, --help  Print this help`;

/**
 * Runs `keygen`; resolves to the exit code.
 *
 * @throws {UsageError} For an unknown flag.
 * @throws {Error} When a key file already exists or cannot be written.
 *
 * @example
 * ```ts ignore
 * import { runKeygen } from "./keygen.ts";
 * Deno.exit(await runKeygen(["--out", "/secure/ci-keys"]));
 * ```
 */
export async function runKeygen(argv: string[]): Promise<number> {
  const { values } = parseFlags("keygen", argv, {
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(KEYGEN_HELP);
    return 0;
  }
  const dir = resolve(values.out ?? ".");
  const privatePath = join(dir, PRIVATE_KEY_FILE);
  const publicPath = join(dir, PUBLIC_KEY_FILE);
  for (const path of [privatePath, publicPath]) {
    if (await pathTaken(path)) {
      throw new Error(
        `Key file "${path}" already exists: keygen never overwrites a key (remove it, or choose another --out)`,
      );
    }
  }
  const { privateKeyPem, publicKey } = await generateKeyPair();
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // createNew: a file that appeared since the check above is left alone, and so is a symlink.
  await Deno.writeTextFile(privatePath, privateKeyPem, { createNew: true, mode: 0o600 });
  try {
    await Deno.writeTextFile(publicPath, `${publicKey}\n`, { createNew: true, mode: 0o644 });
  } catch (error) {
    await Deno.remove(privatePath).catch(() => {});
    throw error;
  }
  console.log(`private key: ${privatePath} (mode 0600: only for the writers you trust, e.g. CI)
public key:  ${publicPath} ${publicKey}

Writers:  [warmup] signing-key-file = ${JSON.stringify(privatePath)}
Readers:  [warmup] trusted-keys = [${JSON.stringify(publicKey)}]`);
  return 0;
}

/** Whether anything is at `path`, a dangling symlink included. */
async function pathTaken(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
