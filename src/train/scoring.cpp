#include "train/scoring.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "core/log.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/precision.h"

namespace prefopt {

namespace fs = std::filesystem;

int64_t chunk_rows(const TrainConfig& c, const CausalLM& m) {
  if (c.logps_chunk_rows > 0) return c.logps_chunk_rows;
  return std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(1, m.config().vocab_size), 16, 4096);
}

std::vector<BatchItem> batch_items(const Dataset& ds, const std::vector<int64_t>& kl_partner,
                                   const std::vector<size_t>& idx) {
  std::vector<BatchItem> items;
  for (size_t i : idx) {
    BatchItem it{&ds.rows[i].prompt, {}};
    for (auto& c : ds.rows[i].completions) it.completions.push_back(&c);
    if (!kl_partner.empty()) it.completions.push_back(&ds.rows[kl_partner[i]].completions[0]);
    items.push_back(std::move(it));
  }
  return items;
}

SeqLogps score(const CausalLM& model, const PackedBatch& pb, int64_t segments, int64_t chunk, bool full_vocab) {
  const auto dev = model.device();
  auto h = model.forward_hidden(pb.ids.to(dev), pb.position_ids.to(dev), pb.attn_mask.to(dev));
  Autocast fp32_head(false, dev);  // log-softmax and losses in fp32 under --bf16
  return segment_logps(h.reshape({pb.rows * pb.length, h.size(2)}), model.lm_head_weight(), pb.src, pb.labels, pb.seg,
                       segments, model.final_logit_softcap(), chunk, full_vocab);
}

namespace {

// Where the cache of ds's reference log-probs lives.
std::string cache_path(const TrainConfig& c, const CausalLM& ref, const Dataset& ds, int64_t K,
                       const std::string& source_dir) {
  std::string key = ds.hash + "|" + source_dir;
  for (auto& [n, t] : ref.named_parameters()) key += fmt::format("|{}:{:.9g}", n, t.sum().item<double>());
  const std::string h = fnv1a_hex(key + fmt::format("|{}|{}", c.per_device_train_batch_size, K));
  const fs::path dir = fs::path(ds.path).parent_path();
  if (access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
    return c.output_dir + "/" + fs::path(ds.path).filename().string() + ".ref-logps-" + h + ".safetensors";
  return ds.path + ".ref-logps-" + h + ".safetensors";
}

}  // namespace

at::Tensor reference_logps(const TrainConfig& c, const CausalLM& ref, const Dataset& ds,
                           const std::vector<int64_t>& kl_partner, const std::string& source_dir) {
  const int64_t K = static_cast<int64_t>(ds.rows[0].completions.size()) + (kl_partner.empty() ? 0 : 1);
  const std::string cache = cache_path(c, ref, ds, K, source_dir);
  const int64_t N = static_cast<int64_t>(ds.rows.size());
  // Rank 0 decides and reads; the other ranks get its tensor (they need not see the file).
  const bool cached = dist::broadcast_bytes(dist::is_main() && file_exists(cache) ? "1" : "0") == "1";
  if (cached) {
    at::Tensor out = dist::is_main() ? io::load_safetensors(cache, at::kFloat).at("ref_logps") : at::empty({N, K}, at::kFloat);
    dist::broadcast(out, 0);
    info("reference log-probs: read {} rows from {}", out.size(0), cache);
    return out;
  }
  // Batch b of per_device_eval_batch_size rows is computed by rank b % world_size; the ranks' rows are summed
  // into one tensor (the other ranks contribute exact zeros).
  at::Tensor out = at::zeros({N, K}, at::kFloat);
  Progress prog("reference log-probs", static_cast<long>(ds.rows.size()));
  const size_t Be = static_cast<size_t>(c.per_device_eval_batch_size);
  const size_t W = static_cast<size_t>(dist::world_size()), r = static_cast<size_t>(dist::rank());
  for (size_t a = r * Be; a < ds.rows.size(); a += W * Be) {
    std::vector<size_t> idx;
    for (size_t i = a; i < std::min(ds.rows.size(), a + Be); ++i) idx.push_back(i);
    at::NoGradGuard g;
    PackedBatch pb = pack_batch(batch_items(ds, kl_partner, idx), c.prefix_sharing);
    auto lp = score(ref, pb, static_cast<int64_t>(idx.size()) * K, chunk_rows(c, ref), false);
    out.narrow(0, static_cast<int64_t>(a), static_cast<int64_t>(idx.size()))
        .copy_(lp.sum.view({static_cast<int64_t>(idx.size()), K}).cpu());
    prog.update(static_cast<long>(a + idx.size()), "", pb.tokens);
  }
  prog.finish();
  dist::all_reduce_sum(out);
  if (dist::is_main()) {
    io::save_safetensors(cache, {{"ref_logps", out}}, at::kFloat);
    info("reference log-probs: {} rows cached in {}", out.size(0), cache);
  }
  return out;
}

}  // namespace prefopt
