// A crates.io-style sparse registry on loopback, made from Debian's crate directory: what real
// users' CARGO_HOMEs unpack crates from (registry/src/<index>/<crate>), unlike a directory source
// that every test machine sees at one fixed path. Index files and .crate tarballs are made on
// request from each crate's (already normalised) Cargo.toml.

import { join } from "node:path";
import { DEBIAN_REGISTRY, FIXTURES_DIR } from "./_fixtures.ts";

/** A running loopback registry; dispose of it to stop the server. */
export interface SparseRegistry extends AsyncDisposable {
  /** The `sparse+http://…/index/` URL cargo's source replacement points at. */
  indexUrl: string;
  /** How many .crate files were downloaded (each machine downloads its own). */
  downloads: number;
}

interface IndexDependency {
  name: string;
  req: string;
  features: string[];
  optional: boolean;
  default_features: boolean;
  target: string | null;
  kind: "normal" | "build" | "dev";
  package?: string;
}

/** Crates of our own published to the loopback registry beside Debian's. */
export const FIXTURE_CRATES: string = join(FIXTURES_DIR, "crates");

/**
 * Serves `registryDirs` (directories of `<name>-<version>` crates) as a sparse registry on
 * 127.0.0.1 with an ephemeral port.
 *
 * @example
 * ```ts ignore
 * await using registry = await startSparseRegistry();
 * await createRegistryCargoHome(`${dir}/home-a`, registry.indexUrl);
 * ```
 */
export async function startSparseRegistry(
  registryDirs: string[] = [DEBIAN_REGISTRY, FIXTURE_CRATES],
): Promise<SparseRegistry> {
  const { parse } = await import("smol-toml");
  const crates = new Map<string, Array<{ dir: string; manifest: Record<string, unknown> }>>();
  const dirs = registryDirs.flatMap((parent) =>
    [...Deno.readDirSync(parent)].map((entry) => join(parent, entry.name))
  );
  for (const dir of dirs) {
    let manifest: Record<string, unknown>;
    try {
      manifest = parse(Deno.readTextFileSync(join(dir, "Cargo.toml"))) as Record<string, unknown>;
    } catch {
      continue;
    }
    const name = String((manifest.package as Record<string, unknown>)?.name ?? "").toLowerCase();
    if (!name) continue;
    crates.set(name, [...(crates.get(name) ?? []), { dir, manifest }]);
  }
  const tarballs = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const tarballOf = (dir: string) => {
    let tarball = tarballs.get(dir);
    if (!tarball) {
      tarball = packCrate(dir);
      tarballs.set(dir, tarball);
    }
    return tarball;
  };

  const registry = { downloads: 0 } as SparseRegistry;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/index/config.json") {
      const origin = new URL(req.url).origin;
      return Response.json({ dl: `${origin}/dl/{crate}/{version}`, api: null });
    }
    const download = /^\/dl\/([^/]+)\/([^/]+)$/.exec(path);
    if (download) {
      const crate = crates.get(download[1]!.toLowerCase())?.find((candidate) =>
        versionOf(candidate.manifest) === download[2]
      );
      if (!crate) return new Response("no such crate", { status: 404 });
      registry.downloads++;
      return new Response(await tarballOf(crate.dir));
    }
    const index = /^\/index\/(?:1|2|3\/.|..\/..)\/([^/]+)$/.exec(path);
    const versions = index ? crates.get(index[1]!) : undefined;
    if (!versions) return new Response("not found", { status: 404 });
    const lines = [];
    for (const crate of versions) {
      const cksum = await crypto.subtle.digest("SHA-256", await tarballOf(crate.dir));
      lines.push(JSON.stringify(indexLine(crate.manifest, cksum)));
    }
    return new Response(lines.join("\n") + "\n");
  });
  registry.indexUrl = `sparse+http://127.0.0.1:${server.addr.port}/index/`;
  registry[Symbol.asyncDispose] = () => server.shutdown();
  return registry;
}

/**
 * Writes a private CARGO_HOME at `dir` whose crates.io is replaced by the sparse registry at
 * `indexUrl`: a "machine" that downloads and unpacks crates like a crates.io user. Returns `dir`.
 */
export async function createRegistryCargoHome(dir: string, indexUrl: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const config = [
    "# Written by tests/_sparse_registry.ts: crates.io is a sparse registry on loopback.",
    "[source.crates-io]",
    'replace-with = "loopback"',
    "",
    "[source.loopback]",
    `registry = "${indexUrl}"`,
    "",
  ].join("\n");
  await Deno.writeTextFile(join(dir, "config.toml"), config);
  return dir;
}

function versionOf(manifest: Record<string, unknown>): string {
  return String((manifest.package as Record<string, unknown>).version);
}

/** One index line (cargo's registry index format) for a normalised manifest. */
function indexLine(manifest: Record<string, unknown>, cksum: ArrayBuffer) {
  const pkg = manifest.package as Record<string, unknown>;
  const deps: IndexDependency[] = [];
  const addTable = (table: unknown, kind: IndexDependency["kind"], target: string | null) => {
    for (const [name, spec] of Object.entries((table ?? {}) as Record<string, unknown>)) {
      const detail = (typeof spec === "string" ? { version: spec } : spec) as Record<
        string,
        unknown
      >;
      if (typeof detail.version !== "string") continue; // a path-only dependency is not published
      const dep: IndexDependency = {
        name,
        req: detail.version,
        features: (detail.features as string[] | undefined) ?? [],
        optional: detail.optional === true,
        default_features: detail["default-features"] !== false,
        target,
        kind,
      };
      if (typeof detail.package === "string") dep.package = detail.package;
      deps.push(dep);
    }
  };
  const addAll = (tables: Record<string, unknown>, target: string | null) => {
    addTable(tables.dependencies, "normal", target);
    addTable(tables["build-dependencies"], "build", target);
    addTable(tables["dev-dependencies"], "dev", target);
  };
  addAll(manifest, null);
  for (const [target, tables] of Object.entries((manifest.target ?? {}) as object)) {
    addAll(tables as Record<string, unknown>, target);
  }
  return {
    name: pkg.name,
    vers: pkg.version,
    deps,
    cksum: [...new Uint8Array(cksum)].map((byte) => byte.toString(16).padStart(2, "0")).join(""),
    features: manifest.features ?? {},
    yanked: false,
    ...(typeof pkg.links === "string" ? { links: pkg.links } : {}),
  };
}

/** A `.crate` file: the crate's directory as `<name>-<version>/…` in a gzipped tar. */
async function packCrate(dir: string): Promise<Uint8Array<ArrayBuffer>> {
  const parent = join(dir, "..");
  const name = dir.slice(parent.length + 1);
  const tar = new Deno.Command("tar", {
    args: ["-C", parent, "--exclude=.cargo-checksum.json", "-czf", "-", name],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await tar.output();
  if (code !== 0) throw new Error(`tar ${dir}: ${new TextDecoder().decode(stderr)}`);
  return stdout;
}
