# Sourced by bench/dist_dpo.sh and bench/dist_overlap.sh: the shared set-up.
# dist_bench_setup BUILD DIR: DIR/model = stories260K (a real 260K-parameter
# Llama from ../shared/data/models/llama2c), DIR/data.jsonl = 256 seeded
# pre-tokenized DPO rows of 32 + 32 + 32 token ids.
dist_bench_setup() {
  "$1/prefopt" -q convert --from llama2c "$BENCH_DIR/../../shared/data/models/llama2c/stories260K.bin" "$2/model" >/dev/null
  python3 - "$2/data.jsonl" <<'PY'
import json, random, sys
random.seed(0)
ids = lambda n: [random.randint(1, 511) for _ in range(n)]
with open(sys.argv[1], "w") as f:
    for _ in range(256):
        f.write(json.dumps({"prompt_input_ids": ids(32), "chosen_input_ids": ids(32), "rejected_input_ids": ids(32)}) + "\n")
PY
}
