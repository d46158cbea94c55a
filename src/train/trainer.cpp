#include "train/trainer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "dist/dist.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/precision.h"
#include "model/runtime.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/bco_udm.h"
#include "train/data.h"
#include "train/dist_sync.h"
#include "train/scoring.h"

namespace prefopt {

namespace {

// One metrics line, appended with a single write.
void append_line(const std::string& path, const nlohmann::json& row) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  PREFOPT_CHECK(f, "{}: cannot append metrics", path);
  const std::string line = row.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), f);
  std::fclose(f);
}

std::string rows_of(const Dataset& ds, const std::vector<size_t>& idx) {
  std::string s;
  for (size_t i = 0; i < idx.size() && i < 16; ++i) s += (i ? ", " : "") + where(ds.path, ds.rows[idx[i]].line);
  if (idx.size() > 16) s += ", ...";
  return s;
}

}  // namespace

LoraConfig peft_config(const TrainConfig& c, const std::string& base_model) {
  LoraConfig l;
  l.r = c.lora_r;
  l.lora_alpha = c.lora_alpha;
  l.lora_dropout = c.lora_dropout;
  l.target_modules = parse_lora_targets(c.lora_target_modules, "config: key \"lora_target_modules\"");
  l.base_model_name_or_path = base_model;
  return l;
}

struct Trainer::Impl {
  Dataset train, eval;
  bool has_eval = false;
  std::string source_dir;
  std::unique_ptr<CausalLM> ref;  // null under use_peft: the reference is the policy with its adapters off
  std::vector<std::pair<std::string, at::Tensor>> params;  // the trained tensors (the adapters under use_peft)
  std::unique_ptr<AdamW> opt;
  RunningMoments running;          // bco_pair / BCO delta
  BcoUdm udm;                      // BCO UDM, when udm_ready
  bool udm_ready = false;
  std::vector<int64_t> kl_partner_train, kl_partner_eval;  // KTO (empty otherwise)
  at::Tensor ref_cache_train, ref_cache_eval;  // [N,K] summed reference log-probs (precompute)
  int64_t batches_per_epoch = 0;
  int64_t micro_per_step = 1;      // micro-batches of a global batch: accumulation x world size
  int64_t order_epoch = -1;        // the epoch whose data order `order` holds
  std::vector<size_t> order;
  std::unique_ptr<GradReducer> reducer;  // data parallel runs: the gradients' all-reduce
};

struct Trainer::StepOut {
  std::map<std::string, double> metrics;  // means over the micro-batches
  int64_t tokens = 0;
  double grad_norm = 0;
};

Trainer::~Trainer() = default;

Trainer::Trainer(TrainConfig cfg, CausalLM& policy, std::unique_ptr<CausalLM> ref, Dataset train,
                 std::optional<Dataset> eval, std::string source_dir)
    : cfg_(std::move(cfg)), policy_(policy), impl_(std::make_unique<Impl>()) {
  cfg_.validate();
  auto& I = *impl_;
  I.train = std::move(train);
  if (eval) I.eval = std::move(*eval), I.has_eval = true;
  I.source_dir = std::move(source_dir);
  configure_threads(cfg_.threads > 0 ? static_cast<int>(cfg_.threads) : kRecommendedAtenThreads);
  dist::init(static_cast<double>(cfg_.ddp_timeout));
  I.micro_per_step = cfg_.gradient_accumulation_steps * dist::world_size();
  // Steps (HF: updates per epoch = batches // (accumulation x world size), at least 1).
  const int64_t N = static_cast<int64_t>(I.train.rows.size());
  I.batches_per_epoch = (N + cfg_.per_device_train_batch_size - 1) / cfg_.per_device_train_batch_size;
  const int64_t per_epoch = std::max<int64_t>(1, I.batches_per_epoch / I.micro_per_step);
  total_steps_ = cfg_.max_steps > 0 ? cfg_.max_steps
                                    : static_cast<int64_t>(std::ceil(cfg_.num_train_epochs * per_epoch));
  const Method m = cfg_.method_kind();
  if (m == Method::Kto && cfg_.resolved_loss_type() == "kto") {
    I.kl_partner_train = kl_pairs(I.train, cfg_.per_device_train_batch_size);
    if (I.has_eval) I.kl_partner_eval = kl_pairs(I.eval, cfg_.per_device_train_batch_size);
  }
  check_objective(cfg_);
  policy_.set_attention(parse_attention(cfg_.attention.c_str(), "config: key \"attention\""));
  policy_.set_gradient_checkpointing(cfg_.gradient_checkpointing);
  if (cfg_.use_peft) {
    PREFOPT_REQUIRE(!ref, "--ref-model", "cannot be combined with use_peft",
                    "under use_peft the reference is the policy with its adapters off; drop --ref-model");
    if (!policy_.lora()) attach_lora(policy_, peft_config(cfg_, I.source_dir), cfg_.seed);
    policy_.set_requires_grad(false);
    I.params = policy_.lora()->named_parameters();
    for (auto& [n, t] : I.params) t.requires_grad_(true);
  } else {
    PREFOPT_REQUIRE(!policy_.lora(), "--adapter", "a LoRA adapter is attached but use_peft is off",
                    "pass --use_peft to train the adapter, or merge it first (prefopt merge-lora)");
    if (cfg_.needs_reference()) {
      I.ref = ref ? std::move(ref) : policy_.clone();
      I.ref->set_requires_grad(false);
    }
    policy_.set_requires_grad(true);
    I.params = policy_.named_parameters();
  }
  AdamWOptions ao;
  ao.beta1 = cfg_.adam_beta1, ao.beta2 = cfg_.adam_beta2, ao.eps = cfg_.adam_epsilon, ao.weight_decay = cfg_.weight_decay;
  broadcast_params(I.params);  // every rank starts from rank 0's weights
  if (dist::active()) {
    I.reducer = std::make_unique<GradReducer>(I.params, cfg_.ddp_bucket_cap_mb, cfg_.ddp_overlap);
    info("dist: gradients in {} bucket(s) of at most {} MiB, all-reduced {}", I.reducer->buckets(),
         cfg_.ddp_bucket_cap_mb, cfg_.ddp_overlap ? "during the last backward pass of each step" : "after backward");
  }
  I.opt = std::make_unique<AdamW>(I.params, ao);
  if (m == Method::Bco && cfg_.bco_udm)
    I.udm_ready = I.udm.fit(policy_, I.train, cfg_.min_density_ratio, cfg_.max_density_ratio);
}

double Trainer::lr_at(int64_t s) const {
  const int64_t T = total_steps_;
  const int64_t w = cfg_.warmup_steps > 0 ? cfg_.warmup_steps
                                          : static_cast<int64_t>(std::ceil(cfg_.warmup_ratio * static_cast<double>(T)));
  const std::string& k = cfg_.lr_scheduler_type;
  double f = 1.0;
  if (k != "constant" && s < w) {
    f = static_cast<double>(s) / std::max<int64_t>(1, w);
  } else if (k == "linear") {
    f = std::max(0.0, static_cast<double>(T - s) / std::max<int64_t>(1, T - w));
  } else if (k == "cosine") {
    double progress = static_cast<double>(s - w) / std::max<int64_t>(1, T - w);
    f = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return cfg_.learning_rate * f;
}

MicroStep Trainer::compute(const std::vector<size_t>& idx, bool eval, bool need_grad, const StepStats* stats) {
  auto& I = *impl_;
  const Dataset& ds = eval ? I.eval : I.train;
  std::optional<at::NoGradGuard> ng;
  if (!need_grad) ng.emplace();
  int64_t tokens = 0;
  ScoredBatch s = score_rows(idx, eval, need_grad, &tokens);
  const auto rows = at::tensor(std::vector<int64_t>(idx.begin(), idx.end()), at::kLong);
  std::vector<int> labels;
  for (size_t i : idx) labels.push_back(ds.rows[i].label);
  // BCO's running mean and UDM weights: training batches only.
  RunningMoments scratch = I.running;
  at::Tensor udm_w = I.udm_ready && !eval ? I.udm.row_weight.index_select(0, rows) : at::Tensor();
  MicroStep out = objective_step(cfg_, s, labels, eval ? scratch : I.running, udm_w, stats);
  out.tokens = tokens;
  return out;
}

ScoredBatch Trainer::score_rows(const std::vector<size_t>& idx, bool eval, bool need_grad, int64_t* tokens) {
  auto& I = *impl_;
  const Dataset& ds = eval ? I.eval : I.train;
  PackedBatch pb = pack_batch(batch_items(ds, eval ? I.kl_partner_eval : I.kl_partner_train, idx), cfg_.prefix_sharing);
  const int64_t B = static_cast<int64_t>(idx.size()), K = pb.per_example;
  if (tokens) *tokens = pb.tokens;
  ScoredBatch s;
  SeqLogps pol;
  Autocast mixed(cfg_.bf16, policy_.device());  // bf16 matmuls; the log-prob head turns it off again
  if (LoraAdapters* ad = policy_.lora()) {  // adapter dropout in training batches only
    ad->training = !eval && need_grad;
    pol = score(policy_, pb, B * K, chunk_rows(cfg_, policy_), cfg_.logps_full_vocab);
    ad->training = false;
  } else {
    pol = score(policy_, pb, B * K, chunk_rows(cfg_, policy_), cfg_.logps_full_vocab);
  }
  s.psum = pol.sum.view({B, K});
  s.cnt = pol.count.view({B, K}).to(s.psum.dtype());
  s.lsum = pol.logit_sum.view({B, K});
  const auto rows = at::tensor(std::vector<int64_t>(idx.begin(), idx.end()), at::kLong);
  if (cfg_.needs_reference()) {
    const at::Tensor& cache = eval ? I.ref_cache_eval : I.ref_cache_train;
    if (cache.defined()) {
      s.rsum = cache.index_select(0, rows).to(policy_.device());
    } else {
      at::NoGradGuard g2;
      std::optional<AdaptersOff> off;
      if (!I.ref) off.emplace(policy_);
      const CausalLM& r = I.ref ? *I.ref : policy_;
      s.rsum = score(r, pb, B * K, chunk_rows(cfg_, r), cfg_.logps_full_vocab).sum.view({B, K}).detach();
    }
  }
  return s;
}

std::map<std::string, double> Trainer::evaluate() {
  auto& I = *impl_;
  std::map<std::string, double> sum;
  std::map<std::string, double> n;
  const size_t N = I.eval.rows.size(), B = static_cast<size_t>(cfg_.per_device_eval_batch_size);
  const size_t W = static_cast<size_t>(dist::world_size()), r = static_cast<size_t>(dist::rank());
  for (size_t a = r * B; a < N; a += W * B) {  // rank r: eval batches r, r + W, ...
    std::vector<size_t> idx;
    for (size_t i = a; i < std::min(N, a + B); ++i) idx.push_back(i);
    MicroStep ms = compute(idx, true, false);
    for (auto& [k, v] : ms.metrics) sum["eval_" + k] += v * idx.size(), n["eval_" + k] += idx.size();
  }
  sum = sum_over_ranks(sum), n = sum_over_ranks(n);
  for (auto& [k, v] : sum) v /= n[k];
  return sum;
}

int64_t Trainer::restore(const std::string& dir, const std::string& metrics_path) {
  auto& I = *impl_;
  Checkpoint ck = load_checkpoint(dir);
  const std::string st_path = dir + "/trainer_state.json";
  if (ck.state.value("data_hash", "") != I.train.hash)
    fail(st_path, "the training data (or its length settings) changed since this checkpoint",
         "resume with the same --data and max_length/max_prompt_length, or start a new output_dir");
  if (ck.state.contains("config")) {
    auto changes = config_changes(ck.state["config"], cfg_.to_json());
    // Accumulation may change with the world size as long as the global batch stays the same.
    if (ck.state.value("micro_batches_per_step", int64_t{-1}) == I.micro_per_step)
      changes.erase(std::remove_if(changes.begin(), changes.end(),
                                   [](const std::string& s) { return s.rfind("gradient_accumulation_steps:", 0) == 0; }),
                    changes.end());
    if (!changes.empty()) {
      std::string list;
      for (auto& ch : changes) list += "\n  " + ch;
      warn("--resume: the config differs from the one {} was trained with (key: checkpoint -> now):{}", dir, list);
    }
  }
  at::NoGradGuard g;
  auto& params = I.params;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& n = params[i].first;
    auto it = ck.model.find(n);
    if (it == ck.model.end()) {
      PREFOPT_CHECK(policy_.config().tie_word_embeddings && n == "lm_head.weight", "{}: checkpoint lacks tensor {}",
                    dir, n);
      continue;
    }
    params[i].second.copy_(it->second);
    I.opt->exp_avg()[i].copy_(ck.optimizer.at("exp_avg." + n));
    I.opt->exp_avg_sq()[i].copy_(ck.optimizer.at("exp_avg_sq." + n));
  }
  if (I.ref && cfg_.sync_ref_model)
    for (auto& [n, t] : I.ref->named_parameters())
      if (ck.optimizer.count("ref." + n)) t.copy_(ck.optimizer.at("ref." + n));
  if (I.udm_ready && !I.udm.restore(ck.optimizer, cfg_.min_density_ratio, cfg_.max_density_ratio))
    warn("--resume: {} holds no BCO UDM classifier of this model; using the one fitted now", dir);
  I.running.mean = ck.state["running"]["mean"].get<double>();
  I.running.var = ck.state["running"]["var"].get<double>();
  I.running.count = ck.state["running"]["count"].get<double>();
  const int64_t step = ck.state["step"].get<int64_t>();
  const int64_t saved_g = ck.state.value("micro_batches_per_step", I.micro_per_step);
  if (saved_g != I.micro_per_step)
    warn("--resume: {} was trained with global batches of {} micro-batches (accumulation x world size), now {}: "
         "the run continues with other batches than the interrupted one", dir, saved_g, I.micro_per_step);
  // metrics.jsonl: keep the lines up to the checkpoint's step
  if (dist::is_main()) {
    std::vector<json> keep;
    if (file_exists(metrics_path))
      for (auto& row : read_jsonl(metrics_path))
        if (row.value("step", int64_t{0}) <= step) keep.push_back(row);
    write_jsonl(metrics_path, keep);
  }
  info("resumed from {} at step {}", dir, step);
  return step;
}

void Trainer::save(int64_t step) {
  auto& I = *impl_;
  auto& params = I.params;
  std::map<std::string, at::Tensor> opt;
  for (size_t i = 0; i < params.size(); ++i) {
    opt["exp_avg." + params[i].first] = I.opt->exp_avg()[i];
    opt["exp_avg_sq." + params[i].first] = I.opt->exp_avg_sq()[i];
  }
  if (I.ref && cfg_.sync_ref_model)
    for (auto& [n, t] : I.ref->named_parameters()) opt["ref." + n] = t;
  if (I.udm_ready) I.udm.save(opt);
  const int64_t G = I.micro_per_step;
  nlohmann::json st = {{"step", step},
                       {"micro_batches", step * G},
                       {"micro_batches_per_step", G},
                       {"world_size", dist::world_size()},
                       {"epoch", static_cast<double>(step * G) / I.batches_per_epoch},
                       {"total_steps", total_steps_},
                       {"data_hash", I.train.hash},
                       {"data", I.train.path},
                       {"rng", {{"kind", "xoshiro256** Fisher-Yates per epoch"}, {"seed", cfg_.seed}}},
                       {"running", {{"mean", I.running.mean}, {"var", I.running.var}, {"count", I.running.count}}},
                       {"delta", I.running.mean},
                       {"config", cfg_.to_json()}};
  save_checkpoint(cfg_.output_dir, step, policy_, I.source_dir, opt, st);
  rotate_checkpoints(cfg_.output_dir, cfg_.save_total_limit);
}

// Rows of micro-batch `micro` (the order of its epoch is kept until the next).
std::vector<size_t> Trainer::rows_for_micro(int64_t micro) {
  auto& I = *impl_;
  const size_t N = I.train.rows.size(), Bm = static_cast<size_t>(cfg_.per_device_train_batch_size);
  const int64_t e = micro / I.batches_per_epoch;
  const size_t j = static_cast<size_t>(micro % I.batches_per_epoch);
  if (e != I.order_epoch) I.order = epoch_order(N, cfg_.seed, e), I.order_epoch = e;
  return std::vector<size_t>(I.order.begin() + j * Bm, I.order.begin() + std::min(N, (j + 1) * Bm));
}

StepStats Trainer::step_stats(int64_t step) {
  auto& I = *impl_;
  StepStats st;
  const Method m = cfg_.method_kind();
  const bool kl = m == Method::Kto && !I.kl_partner_train.empty();
  if (I.micro_per_step == 1 || (!kl && m != Method::Bco)) return st;
  const int64_t A = cfg_.gradient_accumulation_steps;
  double sum = 0, n = 0;
  at::NoGradGuard g;
  for (int64_t a = 0; a < A; ++a) {
    ScoredBatch s = score_rows(rows_for_micro(step * I.micro_per_step + dist::rank() * A + a), false, false, nullptr);
    const int64_t k = kl ? 1 : 0;  // KTO: the KL completions; BCO: the rows' own
    at::Tensor d = s.psum.select(1, k).to(at::kDouble);
    if (s.rsum.defined()) d = d - s.rsum.select(1, k).to(at::kDouble);
    if (!kl) d = cfg_.beta * d;  // BCO's rewards
    sum += d.sum().item<double>(), n += static_cast<double>(d.numel());
  }
  at::Tensor t = at::tensor(std::vector<double>{sum, n}, at::kDouble);
  dist::all_reduce_sum(t);
  const double mean = t[0].item<double>() / t[1].item<double>();
  if (kl) {
    st.kl = mean;
  } else {  // one update of the running mean per optimizer step, with the global batch's mean reward
    I.running.update(mean);
    st.delta = I.running.mean;
  }
  return st;
}

Trainer::StepOut Trainer::run_step(int64_t step) {
  auto& I = *impl_;
  const int64_t A = cfg_.gradient_accumulation_steps, G = I.micro_per_step;
  StepOut out;
  const StepStats stats = step_stats(step);
  for (int64_t a = 0; a < A; ++a) {
    const int64_t micro = step * G + dist::rank() * A + a;  // index in the data order
    auto idx = rows_for_micro(micro);
    // Adapter dropout draws from ATen's generator, seeded per micro-batch so a resumed run repeats the masks.
    if (policy_.lora() && policy_.lora()->cfg.lora_dropout > 0)
      at::manual_seed(static_cast<uint64_t>(cfg_.seed) * 1000003ULL + static_cast<uint64_t>(micro));
    MicroStep ms = compute(idx, false, true, &stats);
    if (!std::isfinite(ms.metrics["loss"]))
      fail(fmt::format("step {}", step + 1),
           fmt::format("the loss is {} on rows {}", ms.metrics["loss"], rows_of(I.train, idx)),
           "training stopped; the last checkpoint is intact. Lower learning_rate, check those rows, or raise beta");
    if (I.reducer && a == A - 1) I.reducer->arm();  // buckets start as their gradients become final
    (ms.loss / static_cast<double>(G)).backward();
    for (auto& [k, v] : ms.metrics) out.metrics[k] += v / G;
    out.tokens += ms.tokens;
  }
  auto& params = I.params;
  if (dist::active()) {  // the global batch's gradient, metrics and token count
    I.reducer->finish();
    out.metrics["#tokens"] = static_cast<double>(out.tokens);
    out.metrics = sum_over_ranks(out.metrics);
    out.tokens = static_cast<int64_t>(out.metrics["#tokens"]);
    out.metrics.erase("#tokens");
  }
  // global gradient norm (before clipping, as HF logs it)
  double sq = 0;
  for (auto& [n, t] : params)
    if (t.grad().defined()) sq += t.grad().to(at::kDouble).square().sum().item<double>();
  out.grad_norm = std::sqrt(sq);
  if (!std::isfinite(out.grad_norm))
    fail(fmt::format("step {}", step + 1), fmt::format("the gradient norm is {}", out.grad_norm),
         "training stopped; the last checkpoint is intact. Lower learning_rate or set max_grad_norm");
  const double mg = cfg_.max_grad_norm;
  const double clip = (mg > 0 && out.grad_norm > mg) ? mg / (out.grad_norm + 1e-6) : 1.0;
  I.opt->step(lr_at(step), step + 1, clip);
  if (I.ref && cfg_.sync_ref_model && (step + 1) % cfg_.ref_model_sync_steps == 0) {  // TR-DPO
    at::NoGradGuard g;
    auto& rp = I.ref->named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      rp[i].second.mul_(1 - cfg_.ref_model_mixup_alpha).add_(params[i].second, cfg_.ref_model_mixup_alpha);
  }
  return out;
}

TrainSummary Trainer::train(const std::string& resume_from) {
  auto& I = *impl_;
  const TrainConfig& c = cfg_;
  make_dirs(c.output_dir);
  const std::string metrics_path = c.output_dir + "/metrics.jsonl";
  if (c.needs_reference() && c.precompute_ref_log_probs && !I.ref_cache_train.defined()) {
    std::optional<AdaptersOff> off;
    if (!I.ref) off.emplace(policy_);
    const CausalLM& r = I.ref ? *I.ref : policy_;
    I.ref_cache_train = reference_logps(c, r, I.train, I.kl_partner_train, I.source_dir);
    if (I.has_eval) I.ref_cache_eval = reference_logps(c, r, I.eval, I.kl_partner_eval, I.source_dir);
    I.ref.reset();  // no reference model in memory during training
  }
  int64_t start_step = 0;
  if (!resume_from.empty()) start_step = restore(resume_from, metrics_path);
  else if (dist::is_main() && file_exists(metrics_path)) std::remove(metrics_path.c_str());

  const int64_t A = c.gradient_accumulation_steps, G = I.micro_per_step, nb = I.batches_per_epoch;
  const bool main = dist::is_main();
  const bool logs_delta = c.method_kind() == Method::Bco || c.resolved_loss_type() == "bco_pair";
  TrainSummary sum;
  std::map<std::string, double> win_sum;
  std::map<std::string, int64_t> win_n;
  Progress prog(fmt::format("train {}", c.method), static_cast<long>(total_steps_));
  const double t0 = now_seconds();
  int64_t tokens_total = 0;
  info("train: {} {} on {} rows, {} steps of {} x {} x {} rank(s) examples, lr {} ({}), output {}", c.method,
       c.resolved_loss_type(), I.train.rows.size(), total_steps_, c.per_device_train_batch_size, A,
       dist::world_size(), c.learning_rate, c.lr_scheduler_type, c.output_dir);
  const double comm0 = dist::comm_seconds();
  for (int64_t step = start_step; step < total_steps_; ++step) {
    StepOut so = run_step(step);
    const double step_loss = so.metrics["loss"];
    tokens_total += so.tokens;
    if (step == start_step) sum.first_loss = step_loss;
    sum.last_loss = step_loss;
    for (auto& [k, v] : so.metrics) win_sum[k] += v, win_n[k] += 1;
    prog.update(static_cast<long>(step + 1), fmt::format("loss {:.4f}", step_loss), so.tokens);
    const bool last = step + 1 == total_steps_;
    if ((step + 1) % c.logging_steps == 0 || last) {
      nlohmann::json row = {{"step", step + 1}, {"epoch", static_cast<double>((step + 1) * G) / nb}};
      std::map<std::string, double> logged;
      for (auto& [k, v] : win_sum) logged[k] = v / win_n[k];
      logged["grad_norm"] = so.grad_norm;
      logged["learning_rate"] = lr_at(step);
      if (logs_delta) logged["delta"] = I.running.mean;
      for (auto& [k, v] : logged) row[k] = v;
      if (main) append_line(metrics_path, row);
      sum.logged.push_back(logged);
      win_sum.clear(), win_n.clear();
    }
    if (I.has_eval && ((c.eval_steps > 0 && (step + 1) % c.eval_steps == 0) || last)) {
      auto ev = evaluate();
      nlohmann::json row = {{"step", step + 1}};
      for (auto& [k, v] : ev) row[k] = v;
      if (main) append_line(metrics_path, row);
      info("eval at step {}: loss {:.4f}", step + 1, ev.count("eval_loss") ? ev["eval_loss"] : std::nan(""));
    }
    if (main && c.save_steps > 0 && (step + 1) % c.save_steps == 0 && !last) save(step + 1);
  }
  prog.finish(fmt::format("loss {:.4f}", sum.last_loss));
  // The final model in HF format in output_dir (the adapter in PEFT's format under use_peft).
  if (main) {
    write_model_files(policy_, c.output_dir, parse_torch_dtype(c.torch_dtype, "config: key \"torch_dtype\""));
    copy_tokenizer_files(I.source_dir, c.output_dir);
    if (c.save_steps > 0 && total_steps_ > start_step) save(total_steps_);
  }
  dist::barrier();  // the outputs are complete when any rank returns
  sum.steps = total_steps_;
  sum.seconds = now_seconds() - t0;
  sum.comm_seconds = dist::comm_seconds() - comm0;
  if (I.reducer) {
    sum.grad_sync_seconds = I.reducer->exposed_seconds();
    info("dist: {} of {} bucket all-reduces started during backward", I.reducer->started_in_backward(),
         I.reducer->steps() * static_cast<int64_t>(I.reducer->buckets()));
  }
  sum.tokens_per_second = sum.seconds > 0 ? tokens_total / sum.seconds : 0;
  info("train: done, {} steps, loss {:.4f} -> {:.4f}, {:.0f} tokens/s; model saved to {}", total_steps_ - start_step,
       sum.first_loss, sum.last_loss, sum.tokens_per_second, c.output_dir);
  return sum;
}

}  // namespace prefopt
