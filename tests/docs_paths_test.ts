// The README, CONTRIBUTING.md and docs/ name files of the tree by path: each must exist, so that a
// module moved or removed without its docs following fails here. Pure: no cargo, no daemon.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** A path into the checked-in tree (not `.tools/`, `dist/` or a cache directory's own layout). */
const TREE_PATH = /(?<![\w./~$-])((?:src|backends|tests|scripts|bin|bench|tiers|docs)\/[\w./-]*)/g;

async function docs(): Promise<string[]> {
  const pages = ["README.md", "CONTRIBUTING.md"];
  for await (const entry of Deno.readDir(join(ROOT, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) pages.push(join("docs", entry.name));
  }
  return pages;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(join(ROOT, path));
    return true;
  } catch {
    return false;
  }
}

Deno.test("docs: every path of the tree they name exists", async () => {
  const missing: string[] = [];
  let named = 0;
  for (const page of await docs()) {
    const text = await Deno.readTextFile(join(ROOT, page));
    for (const match of text.matchAll(TREE_PATH)) {
      // A glob or a sentence's full stop is not part of the path.
      const path = match[1]!.replace(/\*.*$/, "").replace(/\.$/, "");
      named++;
      if (!exists(path)) missing.push(`${page}: ${path}`);
    }
  }
  assert.ok(named > 0, "the docs name paths");
  assert.deepEqual(missing, []);
});

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to dashes. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replace(/ /g, "-");
}

async function anchorsOf(page: string): Promise<Set<string>> {
  const text = await Deno.readTextFile(join(ROOT, page));
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map((match) => anchorOf(match[1]!)));
}

Deno.test("docs: every relative link reaches a page, and a heading of it", async () => {
  const broken: string[] = [];
  for (const page of await docs()) {
    // Code blocks hold no links (and `](` may appear in them).
    const text = (await Deno.readTextFile(join(ROOT, page))).replace(/^```[^]*?^```/gm, "");
    for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(link!)) continue;
      const [file, anchor] = link!.split("#");
      const target = file ? join(page, "..", file) : page;
      if (!exists(target)) broken.push(`${page}: ${link}`);
      else if (anchor && target.endsWith(".md") && !(await anchorsOf(target)).has(anchor)) {
        broken.push(`${page}: ${link} (no such heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
