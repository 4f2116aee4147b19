// Tests for sizes as people write them (gc --max-size, max-size) and as status shows them.
import assert from "node:assert/strict";
import { formatBytes } from "../src/units.ts";
import { parseSize } from "../src/config/size.ts";

Deno.test("sizes parse with binary units", () => {
  assert.equal(parseSize("2G"), 2 * 1024 ** 3);
  assert.equal(parseSize("500M"), 500 * 1024 ** 2);
  assert.equal(parseSize("10GiB"), 10 * 1024 ** 3);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("4096"), 4096);
});

Deno.test("bad sizes are a RangeError naming the value", () => {
  for (const text of ["", "G", "2X", "-1G", "1 2"]) {
    assert.throws(
      () => parseSize(text),
      (error: Error) => error instanceof RangeError && error.message.includes(`"${text}"`),
    );
  }
});

Deno.test("bytes display with a binary unit", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
});
