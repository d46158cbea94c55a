// The demo report: summary.json + metrics.jsonl -> report.md, report.html and the SVG charts
// (drawn by core/svg.h). This file reads the directory and writes the Markdown; report_html.cpp
// writes the HTML from the same ReportData.
#include "pipeline/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "pipeline/report_data.h"

namespace prefopt::pipeline {

namespace report_detail {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------- demo directory

json parse_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    fail(path, std::string("malformed JSON: ") + e.what(), "the demo writes this file; rerun `prefopt demo`");
  }
}

std::map<int64_t, double> parse_passk(const json& j, const std::string& where_) {
  if (!j.is_object() || j.empty()) fail(where_, "expected a non-empty object {\"1\": p, \"2\": p, ...}", "");
  std::map<int64_t, double> out;
  for (auto& [key, v] : j.items()) {
    int64_t k = 0;
    size_t used = 0;
    try {
      k = std::stoll(key, &used);
    } catch (const std::exception&) {
    }
    if (k <= 0 || used != key.size()) fail(where_, fmt::format("key \"{}\" is not a positive integer k", key));
    if (!v.is_number()) fail(where_, fmt::format("pass@{} is {}, expected a number", key, v.dump()));
    out[k] = v.get<double>();
  }
  return out;
}

Summary load_summary(const std::string& dir, json* raw = nullptr) {
  Summary s;
  s.path = dir + "/summary.json";
  json j = parse_json_file(s.path);
  const std::string hint = "see the contract at the top of src/pipeline/report.h";
  if (!j.is_object()) fail(s.path, "expected a JSON object", hint);
  s.seed = j.value("seed", json());
  s.method = j.value("method", json());
  s.tools = j.value("tools", json());
  if (!j.contains("rounds") || !j["rounds"].is_array() || j["rounds"].empty())
    fail(s.path, "expected \"rounds\": a non-empty array", hint);
  for (size_t i = 0; i < j["rounds"].size(); ++i) {
    const json& r = j["rounds"][i];
    std::string at = fmt::format("{}: rounds[{}]", s.path, i);
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      fail(at, "expected an object with a \"name\" string", hint);
    Round rd;
    rd.name = r["name"].get<std::string>();
    if (rd.name.empty() || rd.name == "." || rd.name == ".." || rd.name.find('/') != std::string::npos)
      fail(at, fmt::format("round name \"{}\" is not a plain directory name", rd.name), hint);
    std::string pk_path = dir + "/" + rd.name + "/passk.json";
    std::optional<json> pk;
    if (file_exists(pk_path)) {
      if (r.contains("pass_at_k")) {  // only for "n"; the summary is the source of truth
        try {
          pk = json::parse(read_file(pk_path));
        } catch (const std::exception&) {
        }
      } else {
        pk = parse_json_file(pk_path);
      }
      if (pk && pk->is_object() && pk->contains("n") && (*pk)["n"].is_number_integer())
        rd.n = (*pk)["n"].get<int64_t>();
    }
    if (r.contains("pass_at_k"))
      rd.passk = parse_passk(r["pass_at_k"], at + ".pass_at_k");
    else if (pk && pk->is_object() && pk->contains("pass_at_k"))
      rd.passk = parse_passk((*pk)["pass_at_k"], pk_path + ": pass_at_k");
    else
      fail(at, fmt::format("round \"{}\" has no \"pass_at_k\" and {} has none either", rd.name, pk_path), hint);
    if (r.contains("greedy_accuracy") && r["greedy_accuracy"].is_number())
      rd.greedy = r["greedy_accuracy"].get<double>();
    rd.pairs = r.value("pairs", json());
    rd.steps = r.value("train_steps", json());
    rd.seconds = r.value("seconds", json());
    s.rounds.push_back(std::move(rd));
  }
  if (raw) *raw = std::move(j);
  return s;
}

// metric name -> (step, value) series of one round; empty when metrics.jsonl is missing.
std::map<std::string, Series> load_metrics(const std::string& path) {
  std::map<std::string, Series> out;
  if (!file_exists(path)) return out;
  size_t row_no = 0;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    ++row_no;
    if (!row.is_object()) fail(where(path, line), "expected a JSON object per line");
    double step = row.contains("step") && row["step"].is_number() ? row["step"].get<double>() : double(row_no);
    for (auto& [key, v] : row.items()) {
      if (key == "step" || !v.is_number()) continue;  // null (a NaN when written) is skipped
      double y = v.get<double>();
      if (!std::isfinite(y)) continue;
      auto& se = out[key];
      se.x.push_back(step);
      se.y.push_back(y);
    }
  });
  return out;
}

// ---------------------------------------------------------------- formatting

// Milli-units of the 3-decimal value shown, so changes agree with the table.
int64_t milli(double v) { return std::llround(std::stod(f3(v)) * 1000); }
std::string pp(double from, double to) {
  int64_t d = milli(to) - milli(from);
  return d == 0 ? "0.0" : fmt::format("{:+.1f}", d / 10.0);
}
std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string change_sentence(const Round& a, const Round& b) {
  auto ia = a.passk.find(1), ib = b.passk.find(1);
  if (ia == a.passk.end() || ib == b.passk.end())
    return fmt::format("pass@1 change not available: pass@1 is missing for {}.", ia == a.passk.end() ? a.name : b.name);
  double x = ia->second, y = ib->second;
  int64_t d = milli(y) - milli(x);
  if (d == 0) return fmt::format("pass@1 did not change: {} ({}) and {} ({}).", f3(x), a.name, f3(y), b.name);
  return fmt::format("pass@1 {} from {} ({}) to {} ({}), {} percentage points.", d > 0 ? "rose" : "fell", f3(x), a.name,
                     f3(y), b.name, pp(x, y));
}

Series passk_series(const Round& r, const std::string& label) {
  Series s{label, {}, {}};
  for (auto [k, v] : r.passk) s.x.push_back(double(k)), s.y.push_back(v);
  return s;
}

ChartStyle passk_style() {
  ChartStyle st;
  st.log2_x = true, st.fixed_y = true, st.y_lo = 0, st.y_hi = 1;
  return st;
}

// The key of a round's paired gain over the first model: the demo's SFT or iterate's base.
const char* gain_key(const json& r) {
  for (const char* k : {"gain_over_sft", "gain_over_base"})
    if (r.contains(k) && r[k].is_object()) return k;
  return nullptr;
}

// The paired gains over the first round and the control arms (summary.json's
// "gain_over_sft"/"gain_over_base" and "controls"); has_gains is false when neither is there.
void load_gains(const json& j, ReportData& d) {
  const bool any_gain = j.contains("rounds") && j["rounds"].is_array() &&
                        std::any_of(j["rounds"].begin(), j["rounds"].end(),
                                    [](const json& r) { return r.is_object() && gain_key(r) != nullptr; });
  d.has_gains = any_gain || j.contains("controls");
  if (!d.has_gains) return;
  auto row = [&](const std::string& arm, const json& r) {
    if (!r.is_object() || !r.contains("pass_at_k") || !r["pass_at_k"].contains("1")) return;
    GainRow g;
    g.arm = arm;
    g.round = r.value("name", std::string("?"));
    g.pass1 = r["pass_at_k"]["1"].get<double>();
    g.pass1_stderr = r.value("pass_at_1_stderr", 0.0);
    if (const char* k = gain_key(r))
      g.gain = fmt::format("{:+.1f} ± {:.1f} pp", 100 * r[k].value("pass_at_1", 0.0), 100 * r[k].value("stderr", 0.0));
    if (r.contains("train_tokens")) g.tokens = fmt::format("{}", r["train_tokens"].get<int64_t>());
    d.gains.push_back(std::move(g));
  };
  const std::string method = j.contains("method") && j["method"].is_string() ? j["method"].get<std::string>() : "run";
  for (auto& r : j["rounds"]) row(method, r);
  if (j.contains("controls") && j["controls"].is_array())
    for (auto& c : j["controls"])
      if (c.is_object() && c.contains("rounds") && c["rounds"].is_array())
        for (auto& r : c["rounds"]) row(c.value("name", std::string("control")), r);
}

std::string gains_markdown(const ReportData& d) {
  if (!d.has_gains) return "";
  std::string md = "## Gain over the first model and controls\n\n";
  md += "pass@1 ± its standard error over problems; the gain is paired (the same held-out problems, samples and "
        "seeds for every arm) with its standard error. The controls start from the same SFT model and train on "
        "the same number of tokens per round: sft_more on the supervised data, rft on their own verified-correct "
        "samples.\n\n| arm | round | pass@1 | gain | train tokens |\n|---|---|---:|---:|---:|\n";
  for (auto& g : d.gains)
    md += fmt::format("| {} | {} | {:.3f} ± {:.3f} | {} | {} |\n", md_cell(g.arm), md_cell(g.round), g.pass1,
                      g.pass1_stderr, g.gain, g.tokens);
  return md + "\n";
}

std::string markdown(const ReportData& d) {
  const auto& rounds = d.sm.rounds;
  std::string md = "# prefopt demo report\n\n";
  md += fmt::format("seed: {} · method: {} · tools: {}\n\n", show(d.sm.seed), show(d.sm.method), show(d.sm.tools));
  md += fmt::format("| round | pass@1 | {} |{} pairs | train steps | seconds |\n", top_k_header(d),
                    d.any_greedy ? " greedy accuracy |" : "");
  md += fmt::format("|---|---:|---:|{}---:|---:|---:|\n", d.any_greedy ? "---:|" : "");
  for (auto& r : rounds) {
    md += "| " + md_cell(r.name) + " |";
    for (auto& c : round_cells(d, r)) md += " " + c + " |";
    md += "\n";
  }
  md += "\n" + d.change + "\n\n";
  md += gains_markdown(d);

  md += "## pass@k\n\n";
  md += d.n ? fmt::format("Unbiased pass@k from n = {} samples per problem.\n\n", *d.n) : std::string();
  md += "| round |";
  for (auto k : d.ks) md += fmt::format(" k={} |", k);
  md += "\n|---|";
  for (size_t i = 0; i < d.ks.size(); ++i) md += "---:|";
  md += "\n";
  for (auto& r : rounds) {
    md += "| " + md_cell(r.name) + " |";
    for (auto k : d.ks) md += " " + passk_at(r, k) + " |";
    md += "\n";
  }
  md += "\n![pass@k vs k, one curve per round](passk.svg)\n\n";
  for (auto& c : d.training) md += fmt::format("## {}\n\n![{}]({})\n\n", c.heading, c.heading, c.file);
  if (!d.missing.empty()) {
    md += "No metrics.jsonl for:";
    for (auto& m : d.missing) md += " " + m + (&m == &d.missing.back() ? "." : ",");
    md += "\n";
  }
  return md;
}

}  // namespace

std::string f3(double v) { return fmt::format("{:.3f}", v); }
std::string show(const json& v, const char* fmt_num) {
  if (v.is_null()) return "n/a";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format(fmt::runtime(fmt_num), v.get<double>());
  return v.dump();
}
int64_t max_k(const Round& r) { return r.passk.rbegin()->first; }
std::string passk_at(const Round& r, int64_t k) {
  auto it = r.passk.find(k);
  return it == r.passk.end() ? "n/a" : f3(it->second);
}

std::string top_k_header(const ReportData& d) { return d.same_kmax ? fmt::format("pass@{}", d.kmax) : "pass@max k"; }

std::vector<std::string> round_cells(const ReportData& d, const Round& r) {
  std::vector<std::string> c{passk_at(r, 1),
                             passk_at(r, max_k(r)) + (d.same_kmax ? "" : fmt::format(" (k={})", max_k(r)))};
  if (d.any_greedy) c.push_back(r.greedy ? f3(*r.greedy) : std::string("n/a"));
  c.push_back(show(r.pairs));
  c.push_back(show(r.steps));
  c.push_back(show(r.seconds, "{:.1f}"));
  return c;
}

ReportData load_report(const std::string& dir) {
  ReportData d;
  d.dir = dir;
  d.sm = load_summary(dir, &d.raw);
  const auto& rounds = d.sm.rounds;
  for (auto& r : rounds) {
    if (d.kmax && max_k(r) != d.kmax) d.same_kmax = false;
    d.kmax = std::max(d.kmax, max_k(r));
    d.any_greedy |= r.greedy.has_value();
  }
  d.change = rounds.size() == 1 ? fmt::format("Only one round ({}); no change to report.", rounds[0].name)
                                : change_sentence(rounds.front(), rounds.back());
  load_gains(d.raw, d);

  for (auto& r : rounds)
    for (auto& [k, v] : r.passk) d.ks.push_back(k);
  std::sort(d.ks.begin(), d.ks.end());
  d.ks.erase(std::unique(d.ks.begin(), d.ks.end()), d.ks.end());
  for (auto& r : rounds)
    if (!d.n) d.n = r.n;
  std::vector<Series> pk;
  for (auto& r : rounds) pk.push_back(passk_series(r, r.name));
  d.passk = {"passk.svg", "pass@k per round", svg_line_chart("pass@k per round", "k", "pass@k", pk, passk_style())};

  // Training curves from metrics.jsonl.
  std::vector<std::map<std::string, Series>> metrics;
  for (auto& r : rounds) {
    std::string p = dir + "/" + r.name + "/metrics.jsonl";
    if (!file_exists(p)) d.missing.push_back(r.name);
    metrics.push_back(load_metrics(p));
  }
  struct Spec {
    const char* file;
    const char* heading;
    const char* ylabel;
    std::vector<const char*> keys;
  };
  const Spec specs[] = {
      {"loss.svg", "Training loss", "loss", {"loss", "eval_loss"}},
      {"margins.svg", "Reward margins (rewards/margins)", "rewards/margins", {"rewards/margins"}},
      {"accuracies.svg", "Reward accuracies (rewards/accuracies)", "rewards/accuracies", {"rewards/accuracies"}}};
  for (auto& c : specs) {
    std::vector<Series> ss;
    for (size_t i = 0; i < rounds.size(); ++i)
      for (size_t j = 0; j < c.keys.size(); ++j) {
        auto it = metrics[i].find(c.keys[j]);
        if (it == metrics[i].end()) continue;
        Series s = it->second;
        s.label = rounds[i].name + (j == 0 ? "" : std::string(" ") + c.keys[j]);
        ss.push_back(std::move(s));
      }
    if (ss.empty()) continue;
    d.training.push_back({c.file, c.heading, svg_line_chart(c.heading, "step", c.ylabel, ss)});
  }
  // The same metrics per round (report.html only): each round's steps on their own x axis.
  ChartStyle small;
  small.width = 560, small.height = 320;
  for (size_t i = 0; i < rounds.size(); ++i) {
    std::vector<Series> ss;
    for (const char* key : {"loss", "eval_loss", "rewards/margins", "rewards/accuracies"}) {
      auto it = metrics[i].find(key);
      if (it == metrics[i].end()) continue;
      ss.push_back(it->second);
      ss.back().label = key;
    }
    if (ss.empty()) continue;
    const std::string title = rounds[i].name + ": training metrics";
    d.per_round.push_back({"", title, svg_line_chart(title, "step", "value", ss, small)});
  }
  return d;
}

}  // namespace report_detail

using namespace report_detail;

std::string write_report(const std::string& dir) {
  ReportData d = load_report(dir);
  atomic_write(dir + "/" + d.passk.file, d.passk.svg);
  for (auto& c : d.training) atomic_write(dir + "/" + c.file, c.svg);
  write_html(d);
  std::string path = dir + "/report.md";
  atomic_write(path, markdown(d));
  return path;
}

std::string compare_runs_markdown(const std::vector<std::pair<std::string, std::string>>& label_dirs,
                                  const std::string& svg_path) {
  if (label_dirs.empty()) fail("compare_runs_markdown", "no runs to compare", "pass at least one (label, dir)");
  std::vector<Summary> runs;
  for (auto& [label, dir] : label_dirs) runs.push_back(load_summary(dir));
  int64_t k0 = max_k(runs[0].rounds.back());
  bool same_k = true;
  for (auto& s : runs) same_k &= max_k(s.rounds.front()) == k0 && max_k(s.rounds.back()) == k0;
  std::string md = fmt::format("| run | rounds | pass@1 | change | {} | change |\n|---|---|---:|---:|---:|---:|\n",
                               same_k ? fmt::format("pass@{}", k0) : "pass@max k");
  std::vector<Series> curves{
      passk_series(runs[0].rounds.front(), fmt::format("{} ({})", runs[0].rounds.front().name, label_dirs[0].first))};
  for (size_t i = 0; i < runs.size(); ++i) {
    const Round &a = runs[i].rounds.front(), &b = runs[i].rounds.back();
    auto cell = [&](int64_t ka, int64_t kb, bool annotate) {
      std::string va = passk_at(a, ka), vb = passk_at(b, kb);
      if (annotate) va += fmt::format(" (k={})", ka), vb += fmt::format(" (k={})", kb);
      bool both = a.passk.count(ka) && b.passk.count(kb);
      return fmt::format("{} → {} | {}", va, vb, both ? pp(a.passk.at(ka), b.passk.at(kb)) + " pp" : "n/a");
    };
    md += fmt::format("| {} | {} → {} | {} | {} |\n", md_cell(label_dirs[i].first), md_cell(a.name), md_cell(b.name),
                      cell(1, 1, false), cell(max_k(a), max_k(b), !same_k));
    curves.push_back(passk_series(b, label_dirs[i].first));
  }
  auto slash = svg_path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_dirs(svg_path.substr(0, slash));
  atomic_write(svg_path,
               svg_line_chart("pass@k: first round vs last round per run", "k", "pass@k", curves, passk_style()));
  return md;
}

}  // namespace prefopt::pipeline
