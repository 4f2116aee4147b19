/**
 * Which cargo laid a target dir out: its `cargo -V` line, asked once per binary by whoever holds
 * the {@linkcode CargoVersions} (the daemon's placing, one `prepare`). A capture is placed only
 * for the same cargo, whose fingerprints and layout it was read from.
 * @module
 */

/** Cargo's version lines by binary, each asked once. */
export class CargoVersions {
  readonly #known = new Map<string, Promise<string | undefined>>();

  /** `cargo 1.95.0 (f2d3ce0bd 2026-03-21)` for the cargo at `cargo`; undefined when it cannot say. */
  of(cargo: string): Promise<string | undefined> {
    let version = this.#known.get(cargo);
    if (version === undefined) {
      version = new Deno.Command(cargo, { args: ["-V"], stdout: "piped", stderr: "null" })
        .output()
        .then((out) => out.success ? new TextDecoder().decode(out.stdout).trim() : undefined)
        .catch(() => undefined);
      this.#known.set(cargo, version);
    }
    return version;
  }
}
