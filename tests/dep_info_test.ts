// Tests for dep-info parsing and the path templates that make restored files point here.
import assert from "node:assert/strict";
import { parseDepInfo } from "../src/dispatch/dep_info.ts";
import { fromTemplate, pathRootsOf, toTemplate } from "../src/cache/path_roots.ts";

Deno.test("dep-info lists sources and env-deps", () => {
  const info = parseDepInfo(
    "/t/deps/a-1.d: /reg/a/src/lib.rs /reg/a/src/my\\ mod.rs\n\n/t/deps/liba-1.rlib: /reg/a/src/lib.rs\n\n" +
      "/reg/a/src/lib.rs:\n\n# env-dep:CARGO_PKG_NAME=a\n# env-dep:UNSET_VAR\n",
  );
  assert.deepEqual(info.sources, ["/reg/a/src/lib.rs", "/reg/a/src/my mod.rs"]);
  assert.deepEqual(info.envDeps, [{ name: "CARGO_PKG_NAME", value: "a" }, { name: "UNSET_VAR" }]);
});

Deno.test("templates move paths from one build's directories to another's", () => {
  const projectA = pathRootsOf({
    outDir: "/a/target/debug/deps",
    outputStem: "serde-aaaa",
    extraFilename: "-aaaa",
    manifestDir: "/home/a/.cargo/registry/src/idx/serde-1.0.0",
    outDirEnv: "/a/target/debug/build/serde-1111/out",
    cargoHome: "/home/a/.cargo",
  });
  const projectB = pathRootsOf({
    outDir: "/b/my target/debug/deps",
    outputStem: "serde-bbbb",
    extraFilename: "-bbbb",
    manifestDir: "/home/b/.cargo/registry/src/idx/serde-1.0.0",
    outDirEnv: "/b/my target/debug/build/serde-2222/out",
    cargoHome: "/home/b/.cargo",
  });
  const depInfo =
    "/a/target/debug/deps/libserde-aaaa.rlib: /home/a/.cargo/registry/src/idx/serde-1.0.0/src/lib.rs " +
    "/a/target/debug/build/serde-1111/out/private.rs\n";
  const template = toTemplate(depInfo, projectA);
  assert.ok(!template.includes("/a/") && !template.includes("aaaa"), template);
  assert.equal(
    fromTemplate(template, projectB, true),
    "/b/my\\ target/debug/deps/libserde-bbbb.rlib: /home/b/.cargo/registry/src/idx/serde-1.0.0/src/lib.rs " +
      "/b/my\\ target/debug/build/serde-2222/out/private.rs\n",
  );
});
