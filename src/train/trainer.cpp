#include "train/trainer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "loss/logps.h"
#include "model/model.h"
#include "model/runtime.h"

namespace prefopt {

namespace fs = std::filesystem;

namespace {

const char* kTokenizerFiles[] = {"tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                                 "merges.txt",      "tokenizer.model",       "generation_config.json",  "added_tokens.json"};

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (const char* f : kTokenizerFiles) {
    std::string p = from + "/" + f;
    if (file_exists(p) && fs::absolute(p) != fs::absolute(to + "/" + f)) atomic_write(to + "/" + f, read_file(p));
  }
}

void write_model_files(const CausalLM& m, const std::string& dir) {
  std::map<std::string, at::Tensor> out;
  for (auto& [n, t] : m.named_parameters()) out[n] = t;
  nlohmann::json cj = config_to_json(m.config());
  cj["torch_dtype"] = "float32";
  io::save_safetensors(dir + "/model.safetensors", out, at::kFloat);
  atomic_write(dir + "/config.json", cj.dump(2) + "\n");
}

// Rows per chunk of the log-prob head: the configured value, or a [rows, V]
// fp32 logits block of about 64 MB.
int64_t chunk_rows(const TrainConfig& c, const CausalLM& m) {
  if (c.logps_chunk_rows > 0) return c.logps_chunk_rows;
  return std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(1, m.config().vocab_size), 16, 4096);
}

// One packed-batch item per row: its completions, plus the KTO KL partner's
// completion when the method pairs rows (kl not empty).
std::vector<BatchItem> batch_items(const Dataset& ds, const std::vector<std::vector<int64_t>>& kl,
                                   const std::vector<size_t>& idx) {
  std::vector<BatchItem> items;
  for (size_t i : idx) {
    BatchItem it{&ds.rows[i].prompt, {}};
    for (auto& c : ds.rows[i].completions) it.completions.push_back(&c);
    if (!kl.empty()) it.completions.push_back(&ds.rows[kl[i][0]].completions[0]);
    items.push_back(std::move(it));
  }
  return items;
}

// Summed log-probs per segment of a packed batch under `model`.
SeqLogps score(const CausalLM& model, const PackedBatch& pb, int64_t segments, int64_t chunk, bool full_vocab) {
  const auto dev = model.device();
  auto h = model.forward_hidden(pb.ids.to(dev), pb.position_ids.to(dev), pb.attn_mask.to(dev));
  return segment_logps(h.reshape({pb.rows * pb.length, h.size(2)}), model.lm_head_weight(), pb.src, pb.labels, pb.seg,
                       segments, model.final_logit_softcap(), chunk, full_vocab);
}

// One metrics line, appended with a single write.
void append_line(const std::string& path, const nlohmann::json& row) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  PREFOPT_CHECK(f, "{}: cannot append metrics", path);
  const std::string line = row.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), f);
  std::fclose(f);
}

bool is_decayed(const std::string& name, const at::Tensor& t) { return t.dim() >= 2; }  // HF: not biases, not norms

std::string rows_of(const Dataset& ds, const std::vector<size_t>& idx) {
  std::string s;
  for (size_t i = 0; i < idx.size() && i < 16; ++i) s += (i ? ", " : "") + where(ds.path, ds.rows[idx[i]].line);
  if (idx.size() > 16) s += ", ...";
  return s;
}

at::Tensor embedding_of(CausalLM& m) {
  for (auto& [n, t] : m.named_parameters())
    if (n == "model.embed_tokens.weight" || n == "transformer.wte.weight") return t;
  fail("bco_udm", "the model has no input embedding to embed prompts with", "turn bco_udm off");
}

}  // namespace

struct Trainer::Impl {
  Dataset train, eval;
  bool has_eval = false;
  std::string source_dir;
  std::unique_ptr<CausalLM> ref;
  std::vector<at::Tensor> m1, m2;  // AdamW moments, one per parameter
  RunningMoments running;          // bco_pair / BCO delta
  DensityRatioClassifier udm;
  bool udm_ready = false;
  at::Tensor udm_weight_train;     // [N] per training row (BCO UDM)
  std::vector<std::vector<int64_t>> kl_partner_train, kl_partner_eval;
  at::Tensor ref_cache_train, ref_cache_eval;  // [N,K] summed reference log-probs (precompute)
  int64_t step = 0;
  // data order
  int64_t order_epoch = -1;
  std::vector<size_t> order;
};

std::string latest_checkpoint(const std::string& output_dir) {
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return "";
  int64_t best = -1;
  std::string path;
  for (auto& e : fs::directory_iterator(output_dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) != 0 || !e.is_directory()) continue;
    if (!file_exists(e.path().string() + "/trainer_state.json")) continue;
    try {
      size_t used = 0;
      int64_t s = std::stoll(n.substr(11), &used);
      if (used == n.size() - 11 && s > best) best = s, path = e.path().string();
    } catch (const std::exception&) {
    }
  }
  return path;
}

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
  // Steps (HF: updates per epoch = batches // accumulation, at least 1).
  const int64_t N = static_cast<int64_t>(I.train.rows.size());
  const int64_t nb = (N + cfg_.per_device_train_batch_size - 1) / cfg_.per_device_train_batch_size;
  const int64_t per_epoch = std::max<int64_t>(1, nb / cfg_.gradient_accumulation_steps);
  total_steps_ = cfg_.max_steps > 0 ? cfg_.max_steps
                                    : static_cast<int64_t>(std::ceil(cfg_.num_train_epochs * per_epoch));
  // KTO's KL pairs (TRL _get_kl_dataset): inside consecutive chunks of
  // per_device_train_batch_size rows in file order, row i is paired with the
  // completion of the previous row of its chunk (rotation by one).
  auto kl_pairs = [&](const Dataset& ds) {
    std::vector<std::vector<int64_t>> p(ds.rows.size());
    const int64_t B = cfg_.per_device_train_batch_size, n = static_cast<int64_t>(ds.rows.size());
    for (int64_t c = 0; c < n; c += B) {
      int64_t sz = std::min(B, n - c);
      for (int64_t j = 0; j < sz; ++j) p[c + j] = {c + (j - 1 + sz) % sz};
    }
    return p;
  };
  const std::string lt = cfg_.resolved_loss_type();
  if (cfg_.method == "kto" && lt == "kto") {
    I.kl_partner_train = kl_pairs(I.train);
    if (I.has_eval) I.kl_partner_eval = kl_pairs(I.eval);
  }
  // Validate the objective's strings early (errors list the options).
  if (cfg_.method == "dpo") (void)parse_dpo_loss_type(lt), (void)parse_f_divergence(cfg_.f_divergence_type);
  if (cfg_.method == "kto") (void)parse_kto_loss_type(lt);
  if (cfg_.method == "cpo" || cfg_.method == "simpo") (void)parse_cpo_loss_type(lt);
  if (cfg_.method == "tpo") (void)parse_tpo_loss_type(lt);
  // Reference model.
  if (cfg_.needs_reference()) {
    I.ref = ref ? std::move(ref) : policy_.clone();
    I.ref->set_requires_grad(false);
  }
  policy_.set_requires_grad(true);
  for (auto& [n, t] : policy_.named_parameters()) I.m1.push_back(at::zeros_like(t)), I.m2.push_back(at::zeros_like(t));
  // BCO underlying-distribution matching: prompt embeddings = mean input
  // embedding of the prompt tokens (under the initial policy).
  if (cfg_.method == "bco" && cfg_.bco_udm) {
    at::NoGradGuard ng;
    auto E = embedding_of(policy_).detach();
    auto emb = [&](const Example& ex) {
      auto ids = at::tensor(std::vector<int64_t>(ex.prompt.begin(), ex.prompt.end()), at::kLong).to(E.device());
      return E.index_select(0, ids).mean(0);
    };
    std::vector<at::Tensor> all, des, und;
    for (auto& ex : I.train.rows) {
      all.push_back(emb(ex));
      (ex.label == 1 ? des : und).push_back(all.back());
    }
    if (!des.empty() && !und.empty()) {
      I.udm.fit(at::stack(des).to(at::kDouble).cpu(), at::stack(und).to(at::kDouble).cpu());
      I.udm_weight_train =
          I.udm.udm_weight(at::stack(all).to(at::kDouble).cpu(), cfg_.min_density_ratio, cfg_.max_density_ratio)
              .to(at::kFloat);
      I.udm_ready = true;
    } else {
      warn("bco_udm: the data needs both desirable and undesirable rows; UDM is off");
    }
  }
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

MicroStep Trainer::compute(const std::vector<size_t>& idx, bool eval, bool need_grad) {
  auto& I = *impl_;
  const Dataset& ds = eval ? I.eval : I.train;
  const auto& kl = eval ? I.kl_partner_eval : I.kl_partner_train;
  const std::string& m = cfg_.method;
  std::vector<BatchItem> items = batch_items(ds, kl, idx);
  const int64_t B = static_cast<int64_t>(idx.size());
  const int64_t K = static_cast<int64_t>(items[0].completions.size());
  PackedBatch pb = pack_batch(items, cfg_.prefix_sharing);
  const auto dev = policy_.device();
  auto run = [&](const CausalLM& model) {
    return score(model, pb, B * K, chunk_rows(cfg_, model), cfg_.logps_full_vocab);
  };
  std::optional<at::NoGradGuard> ng;
  if (!need_grad) ng.emplace();
  SeqLogps pol = run(policy_);
  at::Tensor psum = pol.sum.view({B, K}), cnt = pol.count.view({B, K}).to(psum.dtype());
  // logits/* as TRL's logits.mean() over the scored positions: sum of the
  // per-token mean logits over the batch's scored tokens / their count.
  at::Tensor lsum = pol.logit_sum.view({B, K});
  auto tok_mean = [](const at::Tensor& s, const at::Tensor& n) {
    return n.numel() ? (s.sum() / n.sum().clamp_min(1)).item<double>() : std::nan("");
  };
  at::Tensor rsum;  // [B,K] reference sums
  if (cfg_.needs_reference()) {
    const at::Tensor& cache = eval ? I.ref_cache_eval : I.ref_cache_train;
    if (cache.defined()) {
      rsum = cache.index_select(0, at::tensor(std::vector<int64_t>(idx.begin(), idx.end()), at::kLong)).to(dev);
    } else {
      at::NoGradGuard g2;
      rsum = run(*I.ref).sum.view({B, K}).detach();
    }
  }
  MicroStep out;
  out.tokens = pb.tokens;
  auto& M = out.metrics;
  auto mean = [](const at::Tensor& t) { return t.numel() ? t.mean().item<double>() : std::nan(""); };
  auto col = [](const at::Tensor& t, int64_t k) { return t.select(1, k); };
  auto pair_metrics = [&](const LossOut& lo, const at::Tensor& pc, const at::Tensor& pr) {
    M["rewards/chosen"] = mean(lo.chosen_rewards);
    M["rewards/rejected"] = mean(lo.rejected_rewards);
    M["rewards/accuracies"] = mean((lo.chosen_rewards > lo.rejected_rewards).to(at::kFloat));
    M["rewards/margins"] = mean(lo.chosen_rewards - lo.rejected_rewards);
    M["logps/chosen"] = mean(pc.detach());
    M["logps/rejected"] = mean(pr.detach());
    M["logits/chosen"] = tok_mean(col(lsum, 0), col(cnt, 0));
    M["logits/rejected"] = tok_mean(col(lsum, 1), col(cnt, 1));
  };
  const std::string lt = cfg_.resolved_loss_type();
  at::Tensor loss;
  if (m == "dpo") {
    DpoParams p;
    p.loss_type = parse_dpo_loss_type(lt);
    p.beta = cfg_.beta, p.label_smoothing = cfg_.label_smoothing, p.reference_free = cfg_.reference_free;
    p.f_divergence = parse_f_divergence(cfg_.f_divergence_type);
    p.alpha_divergence_coef = cfg_.f_alpha_divergence_coef, p.discopop_tau = cfg_.discopop_tau;
    const bool avg = p.loss_type == DpoLossType::Ipo;  // TRL averages log-probs for IPO
    PairInputs in;
    in.policy_chosen = avg ? col(psum, 0) / col(cnt, 0) : col(psum, 0);
    in.policy_rejected = avg ? col(psum, 1) / col(cnt, 1) : col(psum, 1);
    if (rsum.defined()) {
      in.ref_chosen = avg ? col(rsum, 0) / col(cnt, 0) : col(rsum, 0);
      in.ref_rejected = avg ? col(rsum, 1) / col(cnt, 1) : col(rsum, 1);
    } else {
      in.ref_chosen = at::zeros_like(in.policy_chosen), in.ref_rejected = at::zeros_like(in.policy_rejected);
    }
    in.chosen_len = col(cnt, 0), in.rejected_len = col(cnt, 1);
    // bco_pair's running mean only moves on training batches.
    RunningMoments scratch = I.running;
    LossOut lo = dpo_loss(in, p, eval ? &scratch : &I.running);
    loss = lo.losses.mean();
    if (cfg_.rpo_alpha > 0) {
      auto nll = prefopt::nll_loss(col(psum, 0), col(cnt, 0));
      M["nll_loss"] = nll.item<double>();
      loss = loss + cfg_.rpo_alpha * nll;
    }
    pair_metrics(lo, in.policy_chosen, in.policy_rejected);
  } else if (m == "cpo" || m == "simpo") {
    CpoParams p;
    p.loss_type = parse_cpo_loss_type(lt);
    p.beta = cfg_.beta, p.label_smoothing = cfg_.label_smoothing, p.simpo_gamma = cfg_.simpo_gamma;
    const bool avg = p.loss_type == CpoLossType::Ipo || p.loss_type == CpoLossType::Simpo;
    PairInputs in;
    in.policy_chosen = avg ? col(psum, 0) / col(cnt, 0) : col(psum, 0);
    in.policy_rejected = avg ? col(psum, 1) / col(cnt, 1) : col(psum, 1);
    LossOut lo = cpo_loss(in, p);
    loss = lo.losses.mean();
    auto nll = prefopt::nll_loss(col(psum, 0), col(cnt, 0));
    M["nll_loss"] = nll.item<double>();
    if (cfg_.resolved_cpo_alpha() > 0) loss = loss + cfg_.resolved_cpo_alpha() * nll;
    pair_metrics(lo, in.policy_chosen, in.policy_rejected);
  } else if (m == "orpo") {
    PairInputs in;
    in.policy_chosen = col(psum, 0) / col(cnt, 0), in.policy_rejected = col(psum, 1) / col(cnt, 1);
    LossOut lo = orpo_loss(in, cfg_.beta);
    auto nll = prefopt::nll_loss(col(psum, 0), col(cnt, 0));
    loss = nll - lo.losses.mean();
    M["nll_loss"] = nll.item<double>();
    for (auto& [k, v] : lo.extra) M[k] = mean(v.detach());
    pair_metrics(lo, in.policy_chosen, in.policy_rejected);
  } else if (m == "tpo") {
    TpoParams p;
    p.loss_type = parse_tpo_loss_type(lt);
    p.beta = cfg_.beta, p.alpha = cfg_.tpo_alpha;
    PairInputs in;
    in.policy_chosen = col(psum, 0), in.policy_rejected = col(psum, 1);
    auto gold = prefopt::nll_loss(col(psum, 2), col(cnt, 2));
    LossOut lo = tpo_loss(in, gold.expand({B}), p);
    loss = lo.losses.mean();
    M["nll_loss"] = gold.item<double>();
    pair_metrics(lo, in.policy_chosen, in.policy_rejected);
  } else if (m == "kto" || m == "bco") {
    std::vector<int64_t> ci, ri;
    for (int64_t b = 0; b < B; ++b) (ds.rows[idx[b]].label == 1 ? ci : ri).push_back(b);
    auto sel = [&](const at::Tensor& t, const std::vector<int64_t>& v) {
      return t.index_select(0, at::tensor(v, at::kLong).to(t.device()));
    };
    UnpairedInputs in;
    at::Tensor p0 = col(psum, 0), r0 = rsum.defined() ? col(rsum, 0) : at::zeros_like(p0);
    in.policy_chosen = sel(p0, ci), in.ref_chosen = sel(r0, ci);
    in.policy_rejected = sel(p0, ri), in.ref_rejected = sel(r0, ri);
    if (K > 1) {
      in.policy_kl = col(psum, 1).detach(), in.ref_kl = rsum.defined() ? col(rsum, 1) : at::zeros_like(in.policy_kl);
    } else {
      in.policy_kl = at::zeros({0}, p0.options()), in.ref_kl = at::zeros({0}, p0.options());
    }
    LossOut lo;
    if (m == "kto") {
      KtoParams p;
      p.loss_type = parse_kto_loss_type(lt);
      p.beta = cfg_.beta, p.desirable_weight = cfg_.desirable_weight, p.undesirable_weight = cfg_.undesirable_weight;
      lo = kto_loss(in, p);
    } else {
      BcoParams p;
      p.beta = cfg_.beta, p.min_density_ratio = cfg_.min_density_ratio, p.max_density_ratio = cfg_.max_density_ratio;
      at::Tensor w;
      if (I.udm_ready && !eval) {
        std::vector<int64_t> rows;
        for (auto b : ri) rows.push_back(static_cast<int64_t>(idx[b]));
        w = I.udm_weight_train.index_select(0, at::tensor(rows, at::kLong)).to(dev);
      }
      RunningMoments scratch = I.running;
      lo = bco_loss(in, p, eval ? scratch : I.running, w);
    }
    loss = lo.losses.numel() ? lo.losses.mean() : (psum.sum() * 0.0);
    M["rewards/chosen"] = mean(lo.chosen_rewards);
    M["rewards/rejected"] = mean(lo.rejected_rewards);
    if (!ci.empty() && !ri.empty()) M["rewards/margins"] = M["rewards/chosen"] - M["rewards/rejected"];
    M["logps/chosen"] = mean(in.policy_chosen.detach());
    M["logps/rejected"] = mean(in.policy_rejected.detach());
    M["logits/chosen"] = tok_mean(sel(col(lsum, 0), ci), sel(col(cnt, 0), ci));
    M["logits/rejected"] = tok_mean(sel(col(lsum, 0), ri), sel(col(cnt, 0), ri));
    for (auto& [k, v] : lo.extra) M[k] = mean(v.detach().to(at::kDouble));
  } else {  // sft
    loss = prefopt::nll_loss(col(psum, 0), col(cnt, 0));
    M["logps/chosen"] = mean(col(psum, 0).detach() / col(cnt, 0));
  }
  // metrics with NaN (empty selections) are dropped
  for (auto it = M.begin(); it != M.end();) it = std::isfinite(it->second) ? std::next(it) : M.erase(it);
  out.loss = loss;
  M["loss"] = loss.item<double>();
  return out;
}

std::map<std::string, double> Trainer::evaluate() {
  auto& I = *impl_;
  std::map<std::string, double> sum;
  std::map<std::string, double> n;
  const size_t N = I.eval.rows.size(), B = static_cast<size_t>(cfg_.per_device_eval_batch_size);
  for (size_t a = 0; a < N; a += B) {
    std::vector<size_t> idx;
    for (size_t i = a; i < std::min(N, a + B); ++i) idx.push_back(i);
    MicroStep ms = compute(idx, true, false);
    for (auto& [k, v] : ms.metrics) sum["eval_" + k] += v * idx.size(), n["eval_" + k] += idx.size();
  }
  for (auto& [k, v] : sum) v /= n[k];
  return sum;
}

TrainSummary Trainer::train(const std::string& resume_from) {
  auto& I = *impl_;
  const TrainConfig& c = cfg_;
  make_dirs(c.output_dir);
  const std::string metrics_path = c.output_dir + "/metrics.jsonl";
  auto& params = policy_.named_parameters();
  const int64_t N = static_cast<int64_t>(I.train.rows.size());
  const int64_t Bm = c.per_device_train_batch_size, A = c.gradient_accumulation_steps;
  const int64_t nb = (N + Bm - 1) / Bm;

  // ---- precomputed reference log-probs, cached beside the data
  auto precompute = [&](Dataset& ds, bool eval, at::Tensor& out) {
    const int64_t K = static_cast<int64_t>(ds.rows[0].completions.size()) + ((eval ? I.kl_partner_eval : I.kl_partner_train).empty() ? 0 : 1);
    std::string key = ds.hash + "|" + I.source_dir;
    for (auto& [n, t] : I.ref->named_parameters()) key += fmt::format("|{}:{:.9g}", n, t.sum().item<double>());
    const std::string h = fnv1a_hex(key + fmt::format("|{}|{}", c.per_device_train_batch_size, K));
    std::string cache = ds.path + ".ref-logps-" + h + ".safetensors";
    if (access(fs::path(ds.path).parent_path().empty() ? "." : fs::path(ds.path).parent_path().c_str(), W_OK) != 0)
      cache = c.output_dir + "/" + fs::path(ds.path).filename().string() + ".ref-logps-" + h + ".safetensors";
    if (file_exists(cache)) {
      out = io::load_safetensors(cache, at::kFloat).at("ref_logps");
      info("reference log-probs: read {} rows from {}", out.size(0), cache);
      return;
    }
    std::vector<at::Tensor> parts;
    Progress prog("reference log-probs", static_cast<long>(ds.rows.size()));
    const size_t Be = static_cast<size_t>(c.per_device_eval_batch_size);
    for (size_t a = 0; a < ds.rows.size(); a += Be) {
      std::vector<size_t> idx;
      for (size_t i = a; i < std::min(ds.rows.size(), a + Be); ++i) idx.push_back(i);
      at::NoGradGuard g;
      PackedBatch pb = pack_batch(batch_items(ds, eval ? I.kl_partner_eval : I.kl_partner_train, idx), c.prefix_sharing);
      auto lp = score(*I.ref, pb, static_cast<int64_t>(idx.size()) * K, chunk_rows(c, *I.ref), false);
      parts.push_back(lp.sum.view({static_cast<int64_t>(idx.size()), K}).cpu());
      prog.update(static_cast<long>(a + idx.size()), "", pb.tokens);
    }
    prog.finish();
    out = at::cat(parts);
    io::save_safetensors(cache, {{"ref_logps", out}}, at::kFloat);
    info("reference log-probs: {} rows cached in {}", out.size(0), cache);
  };
  if (c.needs_reference() && c.precompute_ref_log_probs && !I.ref_cache_train.defined()) {
    precompute(I.train, false, I.ref_cache_train);
    if (I.has_eval) precompute(I.eval, true, I.ref_cache_eval);
    I.ref.reset();  // no reference model in memory during training
  }

  // ---- resume
  int64_t start_step = 0;
  if (!resume_from.empty()) {
    const std::string st_path = resume_from + "/trainer_state.json";
    nlohmann::json st;
    try {
      st = nlohmann::json::parse(read_file(st_path));
    } catch (const nlohmann::json::exception& e) {
      fail(st_path, std::string("not a valid trainer state: ") + e.what(), "resume from another checkpoint");
    }
    if (st.value("data_hash", "") != I.train.hash)
      fail(st_path, "the training data (or its length settings) changed since this checkpoint",
           "resume with the same --data and max_length/max_prompt_length, or start a new output_dir");
    auto w = io::load_safetensors(resume_from + "/model.safetensors", at::kFloat);
    auto opt = io::load_safetensors(resume_from + "/optimizer.safetensors", at::kFloat);
    at::NoGradGuard g;
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& n = params[i].first;
      auto it = w.find(n);
      if (it == w.end()) {
        PREFOPT_CHECK(policy_.config().tie_word_embeddings && n == "lm_head.weight",
                      "{}: checkpoint lacks tensor {}", resume_from, n);
        continue;
      }
      params[i].second.copy_(it->second);
      I.m1[i].copy_(opt.at("exp_avg." + n));
      I.m2[i].copy_(opt.at("exp_avg_sq." + n));
    }
    if (I.ref && c.sync_ref_model)
      for (auto& [n, t] : I.ref->named_parameters())
        if (opt.count("ref." + n)) t.copy_(opt.at("ref." + n));
    I.running.mean = st["running"]["mean"].get<double>();
    I.running.var = st["running"]["var"].get<double>();
    I.running.count = st["running"]["count"].get<double>();
    start_step = st["step"].get<int64_t>();
    // metrics.jsonl: keep the lines up to the checkpoint's step
    std::vector<json> keep;
    if (file_exists(metrics_path))
      for (auto& row : read_jsonl(metrics_path))
        if (row.value("step", int64_t{0}) <= start_step) keep.push_back(row);
    write_jsonl(metrics_path, keep);
    info("resumed from {} at step {}", resume_from, start_step);
  } else if (file_exists(metrics_path)) {
    std::remove(metrics_path.c_str());
  }
  I.step = start_step;

  auto save_checkpoint = [&](int64_t step) {
    const std::string dir = fmt::format("{}/checkpoint-{}", c.output_dir, step);
    atomic_write_dir(dir, [&](const std::string& tmp) {
      write_model_files(policy_, tmp);
      copy_tokenizer_files(I.source_dir, tmp);
      std::map<std::string, at::Tensor> opt;
      for (size_t i = 0; i < params.size(); ++i) {
        opt["exp_avg." + params[i].first] = I.m1[i];
        opt["exp_avg_sq." + params[i].first] = I.m2[i];
      }
      if (I.ref && c.sync_ref_model)
        for (auto& [n, t] : I.ref->named_parameters()) opt["ref." + n] = t;
      if (I.udm_ready) opt["udm.w"] = I.udm.w.to(at::kFloat);
      io::save_safetensors(tmp + "/optimizer.safetensors", opt, at::kFloat);
      nlohmann::json st = {{"step", step},
                           {"micro_batches", step * A},
                           {"epoch", static_cast<double>(step * A) / nb},
                           {"total_steps", total_steps_},
                           {"data_hash", I.train.hash},
                           {"data", I.train.path},
                           {"rng", {{"kind", "xoshiro256** Fisher-Yates per epoch"}, {"seed", c.seed}}},
                           {"running", {{"mean", I.running.mean}, {"var", I.running.var}, {"count", I.running.count}}},
                           {"delta", I.running.mean},
                           {"config", c.to_json()}};
      atomic_write(tmp + "/trainer_state.json", st.dump(2) + "\n");
    });
    if (c.save_total_limit > 0) {
      std::vector<std::pair<int64_t, std::string>> all;
      for (auto& e : fs::directory_iterator(c.output_dir)) {
        std::string n = e.path().filename().string();
        if (n.rfind("checkpoint-", 0) == 0 && e.is_directory() && n.find(".tmp") == std::string::npos &&
            n.find(".old") == std::string::npos)
          try {
            all.push_back({std::stoll(n.substr(11)), e.path().string()});
          } catch (const std::exception&) {
          }
      }
      std::sort(all.begin(), all.end());
      for (size_t i = 0; i + c.save_total_limit < all.size(); ++i) remove_all(all[i].second);
    }
  };

  auto rows_for_micro = [&](int64_t micro) {
    const int64_t e = micro / nb, j = micro % nb;
    if (e != I.order_epoch) {
      I.order.resize(N);
      for (int64_t i = 0; i < N; ++i) I.order[i] = static_cast<size_t>(i);
      Rng rng(static_cast<uint64_t>(c.seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(e));
      shuffle(I.order, rng);
      I.order_epoch = e;
    }
    std::vector<size_t> idx(I.order.begin() + j * Bm, I.order.begin() + std::min(N, (j + 1) * Bm));
    return idx;
  };

  TrainSummary sum;
  std::map<std::string, double> win_sum;
  std::map<std::string, int64_t> win_n;
  Progress prog(fmt::format("train {}", c.method), static_cast<long>(total_steps_));
  const double t0 = now_seconds();
  int64_t tokens_total = 0;
  info("train: {} {} on {} rows, {} steps of {} x {} examples, lr {} ({}), output {}", c.method,
       c.resolved_loss_type(), N, total_steps_, Bm, A, c.learning_rate, c.lr_scheduler_type, c.output_dir);
  for (int64_t step = start_step; step < total_steps_; ++step) {
    std::map<std::string, double> step_m;
    int64_t step_tokens = 0;
    double step_loss = 0;
    for (int64_t a = 0; a < A; ++a) {
      auto idx = rows_for_micro(step * A + a);
      MicroStep ms = compute(idx, false, true);
      if (!std::isfinite(ms.metrics["loss"]))
        fail(fmt::format("step {}", step + 1),
             fmt::format("the loss is {} on rows {}", ms.metrics["loss"], rows_of(I.train, idx)),
             "training stopped; the last checkpoint is intact. Lower learning_rate, check those rows, or raise beta");
      (ms.loss / static_cast<double>(A)).backward();
      for (auto& [k, v] : ms.metrics) step_m[k] += v / A;
      step_tokens += ms.tokens;
    }
    step_loss = step_m["loss"];
    // global gradient norm (before clipping, as HF logs it)
    double sq = 0;
    for (auto& [n, t] : params)
      if (t.grad().defined()) sq += t.grad().to(at::kDouble).square().sum().item<double>();
    const double gnorm = std::sqrt(sq);
    if (!std::isfinite(gnorm))
      fail(fmt::format("step {}", step + 1), fmt::format("the gradient norm is {}", gnorm),
           "training stopped; the last checkpoint is intact. Lower learning_rate or set max_grad_norm");
    {
      at::NoGradGuard g;
      const double clip = (c.max_grad_norm > 0 && gnorm > c.max_grad_norm) ? c.max_grad_norm / (gnorm + 1e-6) : 1.0;
      const double lr = lr_at(step);
      const double b1 = c.adam_beta1, b2 = c.adam_beta2;
      const double bc1 = 1 - std::pow(b1, static_cast<double>(step + 1)), bc2 = 1 - std::pow(b2, static_cast<double>(step + 1));
      for (size_t i = 0; i < params.size(); ++i) {
        auto& p = params[i].second;
        if (!p.grad().defined()) continue;
        auto gr = p.grad();
        if (clip != 1.0) gr.mul_(clip);
        if (c.weight_decay > 0 && is_decayed(params[i].first, p)) p.mul_(1 - lr * c.weight_decay);
        I.m1[i].mul_(b1).add_(gr, 1 - b1);
        I.m2[i].mul_(b2).addcmul_(gr, gr, 1 - b2);
        auto denom = (I.m2[i].sqrt() / std::sqrt(bc2)).add_(c.adam_epsilon);
        p.addcdiv_(I.m1[i], denom, -lr / bc1);
        p.grad().zero_();
      }
      if (I.ref && c.sync_ref_model && (step + 1) % c.ref_model_sync_steps == 0) {
        auto& rp = I.ref->named_parameters();
        for (size_t i = 0; i < params.size(); ++i)
          rp[i].second.mul_(1 - c.ref_model_mixup_alpha).add_(params[i].second, c.ref_model_mixup_alpha);
      }
    }
    I.step = step + 1;
    tokens_total += step_tokens;
    if (step == start_step) sum.first_loss = step_loss;
    sum.last_loss = step_loss;
    for (auto& [k, v] : step_m) win_sum[k] += v, win_n[k] += 1;
    prog.update(static_cast<long>(step + 1), fmt::format("loss {:.4f}", step_loss), step_tokens);
    const bool last = step + 1 == total_steps_;
    if ((step + 1) % c.logging_steps == 0 || last) {
      nlohmann::json row = {{"step", step + 1}, {"epoch", static_cast<double>((step + 1) * A) / nb}};
      std::map<std::string, double> logged;
      for (auto& [k, v] : win_sum) logged[k] = v / win_n[k];
      logged["grad_norm"] = gnorm;
      logged["learning_rate"] = lr_at(step);
      if (c.method == "bco" || c.resolved_loss_type() == "bco_pair") logged["delta"] = I.running.mean;
      for (auto& [k, v] : logged) row[k] = v;
      append_line(metrics_path, row);
      sum.logged.push_back(logged);
      win_sum.clear(), win_n.clear();
    }
    if (I.has_eval && ((c.eval_steps > 0 && (step + 1) % c.eval_steps == 0) || last)) {
      auto ev = evaluate();
      nlohmann::json row = {{"step", step + 1}};
      for (auto& [k, v] : ev) row[k] = v;
      append_line(metrics_path, row);
      info("eval at step {}: loss {:.4f}", step + 1, ev.count("eval_loss") ? ev["eval_loss"] : std::nan(""));
    }
    if (c.save_steps > 0 && (step + 1) % c.save_steps == 0 && !last) save_checkpoint(step + 1);
  }
  prog.finish(fmt::format("loss {:.4f}", sum.last_loss));
  // The final model in HF format in output_dir.
  write_model_files(policy_, c.output_dir);
  copy_tokenizer_files(I.source_dir, c.output_dir);
  if (c.save_steps > 0 && total_steps_ > start_step) save_checkpoint(total_steps_);
  sum.steps = total_steps_;
  sum.seconds = now_seconds() - t0;
  sum.tokens_per_second = sum.seconds > 0 ? tokens_total / sum.seconds : 0;
  info("train: done, {} steps, loss {:.4f} -> {:.4f}, {:.0f} tokens/s; model saved to {}", total_steps_ - start_step,
       sum.first_loss, sum.last_loss, sum.tokens_per_second, c.output_dir);
  return sum;
}

}  // namespace prefopt
