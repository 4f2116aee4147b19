// The cost of warming: `init --tier=1 --profile dev` into an empty cache, next to plain cargo
// building exactly the same crate set (init's own resolved workspace and build commands, with no
// wrapper). Fixture-independent, so it runs once, after the per-fixture table.

import { join } from "node:path";
import { cleanEnv, runWarmup, warmupEnv } from "../tests/_harness.ts";
import { membersOfTiers, resolveMembers } from "../src/warm/plan.ts";
import { loadTiers } from "../src/warm/tiers.ts";
import { buildGroups } from "../src/warm/build.ts";
import { ProgressReporter } from "../src/warm/progress.ts";

/** Seconds of the warm-up and of the plain build of the same crates. */
export interface TierOneResult {
  initSeconds: number;
  plainSeconds: number;
  units: number;
}

/** Measures both in `scratch` with the offline `cargoHome`. */
export async function measureTierOne(scratch: string, cargoHome: string): Promise<TierOneResult> {
  const initEnv = warmupEnv({ cacheDir: join(scratch, "tier1-cache"), cargoHome });
  let started = performance.now();
  const init = await runWarmup(["init", "--tier=1", "--profile", "dev", "--quiet"], {
    env: initEnv,
  });
  if (init.code !== 0) throw new Error(`init --tier=1 failed: ${init.stderr}`);
  const initSeconds = (performance.now() - started) / 1000;

  const env = { ...cleanEnv(), CARGO_HOME: cargoHome, CARGO_TERM_COLOR: "never" };
  const members = membersOfTiers(await loadTiers(1));
  const { groups } = await resolveMembers(join(scratch, "tier1-plain"), members, env);
  const cacheDir = join(scratch, "tier1-unused-cache");
  const progress = new ProgressReporter(cacheDir, { command: "bench", phase: "building" }, {
    quiet: true,
  });
  started = performance.now();
  // An empty RUSTC_WRAPPER is no wrapper to cargo: plain rustc, the same cargo commands.
  const outcome = await buildGroups({
    groups,
    profiles: ["dev"],
    wrapper: "",
    cacheDir,
    env,
    dispatchLog: join(scratch, "tier1-unused.jsonl"),
    progress,
  });
  const plainSeconds = (performance.now() - started) / 1000;
  if (outcome.failed.length > 0) {
    throw new Error(`plain build failed: ${JSON.stringify(outcome.failed)}`);
  }
  return { initSeconds, plainSeconds, units: outcome.units };
}
