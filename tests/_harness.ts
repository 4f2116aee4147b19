// The test harness every integration test (and the benchmark) imports: fixture projects and a
// private offline CARGO_HOME, cargo and bin/cargo-warmup as subprocesses, the dispatch log, and
// one warmed cache shared by all test files.

export * from "./_fixtures.ts";
export * from "./_run.ts";
export * from "./_daemons.ts";
export * from "./_dispatch_log.ts";
export * from "./_shared_warm_cache.ts";
export * from "./_wait.ts";
