import { join } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { testStore } from "./store_suite.ts";

const root = await Deno.makeTempDir({ prefix: "warmup-local-test-" });
testStore("local", (namespace) => createLocalStore({ dir: join(root, namespace) }), {
  after: () => Deno.remove(root, { recursive: true }),
});
