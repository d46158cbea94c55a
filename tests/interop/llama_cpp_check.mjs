// Runs a GGUF file in llama.cpp through node-llama-cpp (its prebuilt CPU binary) and prints
// what the interop test compares with prefopt: the token ids of each text (no BOS/EOS, no
// special-token parsing) and the greedy continuation of each prompt of token ids.
//
// usage: node llama_cpp_check.mjs JOB.json
//   JOB = {"node_dir": DIR holding node_modules/node-llama-cpp, "model": "m.gguf",
//          "texts": [str...], "prompts": [[id...]...], "max_new_tokens": N,
//          "stop": [id...], "context_size": C}
// prints {"n_vocab": V, "tokenize": [[id...]...], "generate": [[id...]...]}; a generation
// stops after N tokens or after a stop id (included), as `prefopt generate` does; llama.cpp's
// own end-of-generation tokens are yielded like any other (yieldEogToken).
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const entry = path.join(job.node_dir, "node_modules", "node-llama-cpp", "dist", "index.js");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
const out = { tokenize: [], generate: [] };
for (const text of job.texts) out.tokenize.push(Array.from(model.tokenize(text, false)));

const context = await model.createContext({ contextSize: job.context_size, sequences: 1, threads: 1 });
for (const prompt of job.prompts) {
  const seq = context.getSequence();
  const gen = [];
  if (job.max_new_tokens > 0) {
    for await (const token of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      gen.push(token);
      if (gen.length >= job.max_new_tokens || job.stop.includes(token)) break;
    }
  }
  out.generate.push(gen);
  seq.dispose();
}
await context.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(out) + "\n");
