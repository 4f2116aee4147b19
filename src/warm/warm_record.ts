/**
 * Remembers finished warm-ups so running the same one again takes seconds: a fingerprint of
 * everything that shapes the builds (the scratch manifests and lockfiles, profiles, toolchain,
 * flags) names a record of the cache keys the builds went through. When every one of those keys
 * is still in the store, the builds would only be hits, and are skipped.
 * @module
 */

import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import type { WarmGroup } from "./plan.ts";
import { warmDir } from "./warm_dir.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";
import { askRustc } from "../rustc_version.ts";
import { writeFileAtomic } from "../write_atomic.ts";

/** Environment variables that change what cargo and rustc build. */
const BUILD_ENV =
  /^(RUSTFLAGS|RUSTDOCFLAGS|CARGO_ENCODED_RUSTFLAGS|RUSTC|RUSTC_BOOTSTRAP|RUSTUP_TOOLCHAIN|CARGO_BUILD_.*|CARGO_PROFILE_.*|CARGO_HOME)$/;

/** The fingerprint of a resolved warm-up. */
export async function warmFingerprint(
  groups: WarmGroup[],
  profiles: string[],
  env: Record<string, string>,
): Promise<string> {
  const parts: unknown[] = [profiles];
  parts.push(Object.entries(env).filter(([name]) => BUILD_ENV.test(name)).sort());
  const home = cargoHomeOf(env);
  parts.push(await readOrEmpty(join(home, "config.toml")));
  for (const group of groups) {
    parts.push(group.builds, group.configArgs ?? []);
    for (const path of group.configArgs?.filter((arg) => arg !== "--config") ?? []) {
      parts.push(await readOrEmpty(path));
    }
    parts.push(await toolchainText(group.dir, env));
    for (const file of await manifestFiles(group.dir)) {
      parts.push(file.slice(group.dir.length), await readOrEmpty(file));
    }
  }
  return sha256Hex(JSON.stringify(parts));
}

/** The keys recorded for a fingerprint, or undefined when it never finished. */
export async function recordedKeys(
  cacheDir: string,
  fingerprint: string,
): Promise<string[] | undefined> {
  try {
    const record = JSON.parse(await Deno.readTextFile(recordPath(cacheDir, fingerprint)));
    return Array.isArray(record.keys) ? record.keys : undefined;
  } catch {
    return undefined;
  }
}

/** Records a warm-up that finished without failures. */
export async function recordWarmup(
  cacheDir: string,
  fingerprint: string,
  keys: Iterable<string>,
): Promise<void> {
  const path = recordPath(cacheDir, fingerprint);
  await Deno.mkdir(join(warmDir(cacheDir), "done"), { recursive: true });
  const record = { finishedAt: new Date().toISOString(), keys: [...keys].sort() };
  await writeFileAtomic(path, JSON.stringify(record) + "\n");
}

function recordPath(cacheDir: string, fingerprint: string): string {
  return join(warmDir(cacheDir), "done", `${fingerprint.slice(0, 32)}.json`);
}

/** `rustc -vV` and the sysroot as seen from `dir` (where a rust-toolchain file may apply). */
export async function toolchainText(dir: string, env: Record<string, string>): Promise<string> {
  const ask = (args: string[]) => askRustc(env.RUSTC || "rustc", args, env, dir).catch(() => "");
  return (await ask(["-vV"])) + (await ask(["--print", "sysroot"]));
}

async function manifestFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (current: string) => {
    for await (const entry of Deno.readDir(current)) {
      if (entry.name === "target") continue;
      const path = join(current, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (/^(Cargo\.toml|Cargo\.lock|rust-toolchain(\.toml)?)$/.test(entry.name)) {
        files.push(path);
      }
    }
  };
  await walk(dir).catch(() => {});
  return files.sort();
}

async function readOrEmpty(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}
