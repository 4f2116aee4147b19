/**
 * The files below a path, the way cargo watches a `rerun-if-changed` path: the path itself when
 * it is a file, else every file under it. Shared by the workspace key (workspace_unit.ts) and
 * build-script runs (build_script_run.ts).
 * @module
 */

import { join } from "node:path";

/**
 * `path` itself when it is a file, else every file below it whose name (and whose directories'
 * names) `include` accepts, sorted; none when it is absent. Throws beyond `limit` files: a tree
 * that large is not worth hashing on a build.
 */
export function filesUnder(
  path: string,
  limit: number,
  include: (name: string) => boolean = () => true,
): string[] {
  const files: string[] = [];
  const visit = (current: string) => {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(current);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    if (!info.isDirectory) {
      files.push(current);
      if (files.length > limit) throw new Error(`${path} has over ${limit} files`);
      return;
    }
    for (const entry of Deno.readDirSync(current)) {
      if (include(entry.name)) visit(join(current, entry.name));
    }
  };
  visit(path);
  return files.sort();
}
