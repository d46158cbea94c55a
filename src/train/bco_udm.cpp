#include "train/bco_udm.h"

#include <ATen/ATen.h>

#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"

namespace prefopt {

namespace {

at::Tensor embedding_of(CausalLM& m) {
  for (auto& [n, t] : m.named_parameters())
    if (n == "model.embed_tokens.weight" || n == "transformer.wte.weight") return t;
  fail("bco_udm", "the model has no input embedding to embed prompts with", "turn bco_udm off");
}

}  // namespace

bool BcoUdm::fit(CausalLM& policy, const Dataset& train, double min_ratio, double max_ratio) {
  at::NoGradGuard ng;
  auto E = embedding_of(policy).detach();
  auto embed = [&](const Example& ex) {
    auto ids = at::tensor(std::vector<int64_t>(ex.prompt.begin(), ex.prompt.end()), at::kLong).to(E.device());
    return E.index_select(0, ids).mean(0);
  };
  std::vector<at::Tensor> all, des, und;
  for (auto& ex : train.rows) {
    all.push_back(embed(ex));
    (ex.label == 1 ? des : und).push_back(all.back());
  }
  if (des.empty() || und.empty()) {
    warn("bco_udm: the data needs both desirable and undesirable rows; UDM is off");
    return false;
  }
  clf.fit(at::stack(des).to(at::kDouble).cpu(), at::stack(und).to(at::kDouble).cpu());
  emb = at::stack(all).to(at::kDouble).cpu();
  row_weight = clf.udm_weight(emb, min_ratio, max_ratio).to(at::kFloat);
  return true;
}

void BcoUdm::save(std::map<std::string, at::Tensor>& tensors) const {
  tensors["udm.w"] = clf.w.to(at::kFloat);
  tensors["udm.row_weight"] = row_weight;
}

bool BcoUdm::restore(const std::map<std::string, at::Tensor>& tensors, double min_ratio, double max_ratio) {
  auto w = tensors.find("udm.w"), rw = tensors.find("udm.row_weight");
  if (w == tensors.end() || !clf.w.defined() || w->second.numel() != clf.w.numel()) return false;
  clf.w = w->second.to(at::kDouble).reshape(clf.w.sizes());
  if (rw != tensors.end() && rw->second.numel() == row_weight.numel())
    row_weight = rw->second.reshape(row_weight.sizes());
  else  // a checkpoint with the classifier only
    row_weight = clf.udm_weight(emb, min_ratio, max_ratio).to(at::kFloat);
  return true;
}

}  // namespace prefopt
