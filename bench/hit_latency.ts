// Per-hit latency as cargo sees it: from exec of the wrapper to its exit. A warm build of a
// fixture is recorded (every registry unit's argv, environment and working directory), then each
// recorded call is replayed many times, through the daemon's front door and in-process, next to
// two references timed the same way: spawning /bin/true (the harness's own cost) and `rustc -vV`.

import { join } from "node:path";
import { settleDaemons } from "../src/daemon/settle.ts";
import { copyFixture, FRONT_DOOR, runCargo, runtimeDirFor, warmupEnv } from "../tests/_harness.ts";
import { type DispatchLogEntry, readDispatchLog } from "../tests/_dispatch_log.ts";
import { kindOfHit, type PhaseBreakdown, phaseBreakdown } from "./phase_breakdown.ts";

/** Milliseconds at the 50th and 90th percentile, over `count` calls. */
export interface Latency {
  p50: number;
  p90: number;
  count: number;
}

/** Latency of each way of answering a call, keyed by label. */
export type HitLatency = Record<string, Latency>;

/**
 * Where a replayed daemon hit's time went: the daemon's phases (its dispatch log), and what cargo
 * waited beyond the daemon's `ms` (the front door's start and exit, the socket, the request frame
 * read and parsed, the index write after the log line), by where the entry came from.
 */
export interface ReplayPhases {
  breakdown: PhaseBreakdown[];
  /** By {@linkcode PhaseBreakdown.kind}. */
  outsideDaemon: Record<string, Latency>;
}

interface RecordedCall {
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** Records a warm build of `fixture` in `scratch` and replays its calls `rounds` times each. */
export async function measureHitLatency(
  scratch: string,
  cargoHome: string,
  fixture: string,
  rounds: number,
): Promise<{ latency: HitLatency; phases: Record<string, ReplayPhases> }> {
  const cacheDir = join(scratch, "latency-cache");
  const env = warmupEnv({ cacheDir, cargoHome });
  const sibling = await copyFixture(fixture, join(scratch, "latency-sibling"));
  if ((await runCargo(["build", "--locked"], { cwd: sibling, env })).code !== 0) {
    throw new Error("Cannot warm the latency cache");
  }

  const recordings = join(scratch, "latency-calls");
  await Deno.mkdir(recordings, { recursive: true });
  const recorder = join(scratch, "record-then-serve");
  await Deno.writeTextFile(
    recorder,
    `#!/bin/sh
if [ -n "$CARGO_PKG_NAME" ] && [ -z "$CARGO_PRIMARY_PACKAGE" ] && [ "$2" != "-vV" ] && [ "$2" != "-" ]; then
  env -0 >"${recordings}/$$.env"; printf '%s\\0' "$@" >"${recordings}/$$.args"; pwd >"${recordings}/$$.cwd"
fi
exec "${FRONT_DOOR}" "$@"
`,
    { mode: 0o755 },
  );
  const project = await copyFixture(fixture, join(scratch, "latency-project"));
  const recorded = await runCargo(["build", "--locked"], {
    cwd: project,
    env: { ...env, RUSTC_WRAPPER: recorder },
  });
  if (recorded.code !== 0) throw new Error(`Recording build failed: ${recorded.stderr}`);
  const calls = await readCalls(recordings);
  if (calls.length === 0) throw new Error("No registry call was recorded");

  const timed = async (program: string, call: RecordedCall, args = call.args) => {
    // As in a cold build, a hit's outputs are not there yet: replacing them costs the file
    // system the old files' blocks, which no real hit pays.
    if (program === FRONT_DOOR) await removeOutputs(call);
    const started = performance.now();
    const status = await new Deno.Command(program, {
      args,
      env: call.env,
      clearEnv: true,
      cwd: call.cwd,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().status;
    if (!status.success) throw new Error(`"${program}" failed during the latency run`);
    return performance.now() - started;
  };
  // The daemon's rows keep a dispatch log, read after each call (untimed): its line is written
  // before the daemon answers.
  const logged: Record<string, { entries: DispatchLogEntry[]; outside: number[] }> = {};
  const timedDaemonHit = async (label: string, call: RecordedCall) => {
    const log = join(scratch, "latency-replay.jsonl");
    await Deno.remove(log).catch(() => {});
    const ms = await timed(FRONT_DOOR, { ...call, env: { ...call.env, CARGO_WARMUP_LOG: log } });
    const record = logged[label] ??= { entries: [], outside: [] };
    for (const entry of await readDispatchLog(log)) {
      record.entries.push(entry);
      record.outside.push(ms - Number(entry.ms));
    }
    return ms;
  };
  const daemonHit = "front door + daemon hit";
  const allHot = "front door + daemon hit, every entry hot (hot-size=10G)";
  const fromBundle = "front door + daemon hit from the bundle (hot copies removed first)";
  const samples: Record<string, number[]> = {
    [daemonHit]: [],
    [allHot]: [],
    [fromBundle]: [],
    "in-process hit (CARGO_WARMUP_DAEMON=0)": [],
    "rustc -vV (reference)": [],
    "/bin/true (harness cost)": [],
  };
  for (let round = 0; round < rounds; round++) {
    for (const call of calls) {
      samples[daemonHit]!.push(await timedDaemonHit(daemonHit, call));
      const first = call.args[0]!;
      samples["rustc -vV (reference)"]!.push(await timed(first, call, ["-vV"]));
      samples["/bin/true (harness cost)"]!.push(await timed("/bin/true", call, []));
    }
  }
  // The same with a hot copy of every entry worth one, as before hot copies had a budget: one
  // untimed round writes them.
  const hotCall = (call: RecordedCall) => ({
    ...call,
    env: { ...call.env, CARGO_WARMUP_HOT_SIZE: "10G" },
  });
  for (const call of calls) await timed(FRONT_DOOR, hotCall(call));
  await settleDaemons(runtimeDirFor(cacheDir));
  for (let round = 0; round < rounds; round++) {
    for (const call of calls) samples[allHot]!.push(await timedDaemonHit(allHot, hotCall(call)));
  }
  // Every hit unpacks its bundle: the hot copies (the last hit's too, written after its answer)
  // are removed before each call, untimed.
  for (let round = 0; round < rounds; round++) {
    for (const call of calls) {
      await settleDaemons(runtimeDirFor(cacheDir));
      await Deno.remove(join(cacheDir, "unpacked"), { recursive: true }).catch(() => {});
      samples[fromBundle]!.push(await timedDaemonHit(fromBundle, call));
    }
  }
  // In-process hits cost ~100 times more; a tenth of the rounds measures them well enough.
  for (let round = 0; round < Math.max(1, Math.round(rounds / 10)); round++) {
    for (const call of calls) {
      samples["in-process hit (CARGO_WARMUP_DAEMON=0)"]!.push(
        await timed(FRONT_DOOR, { ...call, env: { ...call.env, CARGO_WARMUP_DAEMON: "0" } }),
      );
    }
  }
  await settleDaemons(runtimeDirFor(cacheDir));
  const phases = Object.fromEntries(
    Object.entries(logged).map(([label, { entries, outside }]) => {
      const bySource: Record<string, number[]> = {};
      entries.forEach((entry, index) => {
        if (entry.outcome !== "hit" || typeof entry.phases !== "object") return;
        (bySource[kindOfHit(entry)] ??= []).push(outside[index]!);
      });
      const outsideDaemon = Object.fromEntries(
        Object.entries(bySource).map(([source, ms]) => [source, summary(ms)]),
      );
      return [label, { breakdown: phaseBreakdown(entries), outsideDaemon }];
    }),
  );
  return {
    latency: Object.fromEntries(
      Object.entries(samples).map(([label, ms]) => [label, summary(ms)]),
    ),
    phases,
  };
}

/** Removes what the recorded call writes (`<out-dir>/[lib]<crate><extra-filename>.*`). */
async function removeOutputs(call: RecordedCall): Promise<void> {
  const value = (flag: string) => call.args[call.args.indexOf(flag) + 1];
  const outDir = value("--out-dir");
  const crate = value("--crate-name");
  const extra = call.args.find((arg) => arg.startsWith("extra-filename="))?.slice(15) ?? "";
  if (!outDir || !crate) return;
  const stem = `${crate}${extra}`;
  for await (const entry of Deno.readDir(outDir)) {
    if (
      entry.name === stem || entry.name.startsWith(`lib${stem}.`) ||
      entry.name.startsWith(`${stem}.`)
    ) {
      await Deno.remove(join(outDir, entry.name)).catch(() => {});
    }
  }
}

function summary(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.floor(q * (sorted.length - 1))]! * 100) / 100;
  return { p50: at(0.5), p90: at(0.9), count: sorted.length };
}

async function readCalls(dir: string): Promise<RecordedCall[]> {
  const calls: RecordedCall[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".args")) continue;
    const stem = join(dir, entry.name.slice(0, -".args".length));
    const args = (await Deno.readTextFile(`${stem}.args`)).split("\0").slice(0, -1);
    const env = Object.fromEntries(
      (await Deno.readTextFile(`${stem}.env`)).split("\0").filter(Boolean).map((pair) => {
        const at = pair.indexOf("=");
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    );
    // The replay is not a cargo build: no dispatch log, no jobserver of a finished cargo.
    delete env.CARGO_WARMUP_LOG;
    delete env.CARGO_MAKEFLAGS;
    calls.push({ args, env, cwd: (await Deno.readTextFile(`${stem}.cwd`)).trim() });
  }
  return calls;
}
