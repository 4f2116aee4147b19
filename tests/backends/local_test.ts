// The shared store suite against local disk, in a directory its test makes and removes.

import { join } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { testStore } from "./store_suite.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

await testStore("local", async () => {
  const root = await Deno.makeTempDir({ prefix: "warmup-local-test-" });
  return {
    open: (namespace) => createLocalStore({ dir: join(root, namespace) }),
    close: () => Deno.remove(root, { recursive: true }),
  };
});
