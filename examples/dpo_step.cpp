// One DPO step on a Hugging Face model directory, through the library.
//
//   dpo_step MODEL_DIR [OUTPUT_DIR]
//
// Builds four preference pairs of token ids (no tokenizer needed), trains one
// optimizer step with the sigmoid DPO loss and a frozen copy of the model as
// the reference, and prints TRL's metrics. At the first step the policy is the
// reference, so the loss is exactly ln 2 (checked: exit 1 otherwise).
#include <cmath>
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/model.h"
#include "train/trainer.h"

using namespace prefopt;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [OUTPUT_DIR]\n", argv[0]);
    return 2;
  }
  const std::string out = argc > 2 ? argv[2] : "dpo-step-out";
  try {
    auto model = CausalLM::from_pretrained(argv[1]);
    const int64_t vocab = model->config().vocab_size;

    // Four pairs: a shared prompt of 12 ids, chosen and rejected of 6 ids each.
    Rng rng(7);
    auto ids = [&](int n) {
      std::vector<int32_t> v;
      for (int i = 0; i < n; ++i) v.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab))));
      return v;
    };
    Dataset data;
    data.path = "example pairs";
    data.kind = DataKind::Paired;
    data.hash = "example";
    for (int r = 0; r < 4; ++r) {
      Example ex;
      ex.line = static_cast<size_t>(r + 1);
      ex.prompt = ids(12);
      for (int c = 0; c < 2; ++c) {
        Completion comp;
        comp.ids = ids(6);
        comp.mask.assign(comp.ids.size(), 1);
        ex.completions.push_back(comp);
      }
      data.rows.push_back(ex);
    }

    TrainConfig cfg;  // TRL's DPOConfig names
    cfg.method = "dpo";
    cfg.beta = 0.1;
    cfg.learning_rate = 1e-3;
    cfg.per_device_train_batch_size = 4;
    cfg.max_steps = 1;
    cfg.logging_steps = 1;
    cfg.save_steps = 0;
    cfg.output_dir = out;
    cfg.validate();

    Trainer trainer(cfg, *model, /*ref=*/nullptr, std::move(data));
    TrainSummary s = trainer.train();
    for (auto& [name, value] : s.logged.at(0)) std::printf("%-22s %.6f\n", name.c_str(), value);
    std::printf("loss at step 1: %.6f (ln 2 = %.6f)\n", s.first_loss, std::log(2.0));
    return std::fabs(s.first_loss - std::log(2.0)) < 1e-4 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 3;
  }
}
