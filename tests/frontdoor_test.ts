// The front door (src/frontdoor/cargo_warmup.rs) as cargo meets it: its frame types are the
// daemon's; with the program it was built for gone, builds still succeed; a compiler killed by a
// signal is reported to cargo as that signal; a build-script run gives up on a silent daemon
// after CARGO_WARMUP_DAEMON_TIMEOUT_MS. A fake daemon in this process plays the other side.

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { encodeFrame, FRAME, type Frame, FrameReader } from "../src/daemon/frames.ts";
import { daemonFiles } from "../src/runtime_dir.ts";
import { versionTag } from "../src/version.ts";
import {
  cleanEnv,
  copyFixture,
  createCargoHome,
  FRONT_DOOR,
  ROOT,
  runBinary,
  runCargo,
  runWarmup,
  tempDir,
  WARMUP_BIN,
  warmupEnv,
} from "./_harness.ts";

const TINY_OUTPUT = "tiny 4096 unix Some(2)\n";
/** The tag of {@linkcode FRONT_DOOR}: the name of the socket it looks for. */
const TAG = versionTag(WARMUP_BIN);

/**
 * The front door's frame types by their names in frames.ts: `const FRAME_MISS_STDOUT: u8 = b'o';`
 * is `missStdout: "o"`.
 */
function rustFrameTypes(source: string): Record<string, string> {
  const types: Record<string, string> = {};
  for (const [, name, byte] of source.matchAll(/^const FRAME_([A-Z_]+): u8 = b'(.)';$/gm)) {
    const camelCase = name!.toLowerCase().replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
    types[camelCase] = byte!;
  }
  return types;
}

Deno.test("front door: its frame types are the daemon's, name for name and byte for byte", async () => {
  const source = await Deno.readTextFile(join(ROOT, "src/frontdoor/cargo_warmup.rs"));
  assert.deepEqual(rustFrameTypes(source), { ...FRAME });
  // A frame sent or matched as a bare byte would escape the comparison above.
  const byteLiterals = source.split("\n").filter((line) =>
    /b'[A-Za-z]'/.test(line) && !line.startsWith("const FRAME_")
  );
  assert.deepEqual(byteLiterals, []);
});

Deno.test("front door: with its program gone, builds compile without the cache", async () => {
  await using dir = await tempDir("cargo-warmup-frontdoor-");
  const checkout = join(dir.path, "checkout");
  const program = join(checkout, "bin", "cargo-warmup");
  await Deno.mkdir(dirname(program), { recursive: true });
  await Deno.writeTextFile(program, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const frontDoor = join(dir.path, "frontdoor", "cargo-warmup");
  const built = await runWarmup(["frontdoor", "--out", frontDoor], {
    env: { CARGO_WARMUP_EXE: program },
  });
  assert.equal(built.code, 0, built.stderr);
  await Deno.remove(checkout, { recursive: true }); // moved, uninstalled

  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const project = await copyFixture("tiny", join(dir.path, "tiny"));
  const env = {
    ...warmupEnv({ cacheDir: join(dir.path, "cache"), cargoHome }),
    RUSTC_WRAPPER: frontDoor,
  };
  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);
  assert.equal(await runBinary(join(project, "target/debug/tiny")), TINY_OUTPUT);
  // Said for the project's own crate, not again for each of its three dependencies.
  assert.equal(build.stderr.split(`cannot run "${program}"`).length - 1, 1, build.stderr);

  // A manager command has no compiler to fall back on: it names what is missing.
  const status = await new Deno.Command(frontDoor, {
    args: ["status"],
    clearEnv: true,
    env,
    stdin: "null",
  }).output();
  assert.equal(status.code, 1);
  assert.match(
    new TextDecoder().decode(status.stderr),
    /^error: cargo-warmup: cannot run ".*", the program this front door was built for: /,
  );
});

/** A fake compiler (or build script): `<path> exit N` exits with N, `<path> kill SIG` dies of SIG. */
async function fakeCompiler(dir: string): Promise<string> {
  const path = join(dir, "fake-rustc");
  const script = [
    "#!/bin/sh",
    "ulimit -c 0",
    'case "$1" in exit) exit "$2" ;; kill) kill -"$2" $$ ;; esac',
    "exit 99",
  ];
  await Deno.writeTextFile(path, script.join("\n") + "\n", { mode: 0o755 });
  return path;
}

/**
 * A daemon of {@linkcode TAG} in `runtimeDir` for one connection: reads the request, sends
 * `answer`, then, unless `hangUp`, collects what the client reports until it closes. With
 * `silent`, it sends nothing and keeps the connection open until `stop`.
 */
async function fakeDaemon(
  runtimeDir: string,
  behaviour: { answer: Uint8Array; hangUp?: boolean } | { silent: true },
) {
  await Deno.mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  await Deno.chmod(runtimeDir, 0o700);
  const listener = Deno.listen({ transport: "unix", path: daemonFiles(runtimeDir, TAG).socket });
  let held: Deno.Conn | undefined;
  const reported = (async (): Promise<Frame[]> => {
    const conn = await listener.accept();
    held = conn;
    const reader = new FrameReader(conn);
    assert.equal((await reader.next())?.type, FRAME.request);
    if ("silent" in behaviour) return [];
    for (let written = 0; written < behaviour.answer.length;) {
      written += await conn.write(behaviour.answer.subarray(written));
    }
    if (behaviour.hangUp) {
      conn.close();
      held = undefined;
      return [];
    }
    const frames: Frame[] = [];
    for (let frame = await reader.next(); frame; frame = await reader.next()) frames.push(frame);
    conn.close();
    held = undefined;
    return frames;
  })();
  return {
    reported,
    stop() {
      held?.close();
      listener.close();
    },
  };
}

/** Runs the front door at `path` with `args`, talking to the daemons of `runtimeDir`. */
function runFrontDoor(path: string, args: string[], runtimeDir: string, extraEnv = {}) {
  return new Deno.Command(path, {
    args,
    clearEnv: true,
    env: { ...cleanEnv(), CARGO_WARMUP_RUNTIME_DIR: runtimeDir, ...extraEnv },
    stdin: "null",
  }).output();
}

Deno.test("front door: a compiler killed by a signal is reported to cargo as that signal", async (t) => {
  await using dir = await tempDir("cargo-warmup-frontdoor-");
  const compiler = await fakeCompiler(dir.path);
  const runtimeDir = join(dir.path, "cache.run");
  const rmetaNotice = '{"$message_type":"artifact","artifact":"x.rmeta","emit":"metadata"}\n';
  const cases = [
    // A miss: the front door runs the compiler, reports its end, and ends the same way.
    { name: "a miss, SIGSEGV", args: ["kill", "SEGV"], answer: encodeFrame(FRAME.compileMiss, "") },
    {
      name: "a miss, exit code 7",
      args: ["exit", "7"],
      answer: encodeFrame(FRAME.compileMiss, ""),
    },
    // The daemon relayed the rmeta notice and died: the front door compiles, dropping rustc's.
    {
      name: "a daemon gone mid-call, SIGKILL",
      args: ["kill", "KILL"],
      answer: encodeFrame(FRAME.stderr, rmetaNotice),
      hangUp: true,
    },
  ];
  for (const { name, args, answer, hangUp = false } of cases) {
    await t.step(name, async () => {
      const daemon = await fakeDaemon(runtimeDir, { answer, hangUp });
      try {
        const output = await runFrontDoor(FRONT_DOOR, [compiler, ...args], runtimeDir);
        const reported = await daemon.reported;
        if (args[0] === "kill") {
          assert.equal(output.signal, `SIG${args[1]}`);
        } else {
          assert.deepEqual([output.code, output.signal], [7, null]);
        }
        if (!hangUp) {
          // The daemon hears of a signal death as the shell's code: nothing of it is stored.
          const done = reported.find((frame) => frame.type === FRAME.missDone);
          const code = JSON.parse(new TextDecoder().decode(done?.payload)).code;
          assert.equal(code, args[0] === "kill" ? 128 + 11 : 7);
        }
      } finally {
        daemon.stop();
        await Deno.remove(daemonFiles(runtimeDir, TAG).socket).catch(() => {});
      }
    });
  }
});

Deno.test("front door: a build-script run gives up on a silent daemon after the timeout", async () => {
  await using dir = await tempDir("cargo-warmup-frontdoor-");
  // The replayer's layout (src/dispatch/replayer.ts): the front door in the script's place.
  const replayer = join(dir.path, "build", "build-script-build");
  await Deno.mkdir(dirname(replayer), { recursive: true });
  await Deno.copyFile(FRONT_DOOR, replayer);
  const realScript = join(dirname(replayer), "warmup-real-build-script");
  await Deno.writeTextFile(realScript, "#!/bin/sh\necho cargo:rustc-cfg=ran_for_real\n", {
    mode: 0o755,
  });
  const runtimeDir = join(dir.path, "cache.run");
  const daemon = await fakeDaemon(runtimeDir, { silent: true });
  try {
    const started = performance.now();
    const output = await runFrontDoor(replayer, [], runtimeDir, {
      CARGO_WARMUP_DAEMON_TIMEOUT_MS: "300",
    });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.equal(new TextDecoder().decode(output.stdout), "cargo:rustc-cfg=ran_for_real\n");
    // Ended by the setting, not the 60 s default: half of that is leeway no machine needs.
    assert.ok(seconds < 30, `the run waited ${seconds.toFixed(1)} s for a 0.3 s timeout`);
  } finally {
    daemon.stop();
    await daemon.reported.catch(() => {});
  }
});
