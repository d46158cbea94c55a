// The demo report: summary.json + metrics.jsonl -> report.md with hand-written SVG charts.
#include "pipeline/report.h"
#include "verify/passk_plot.h"

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

namespace prefopt::pipeline {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------- SVG chart

// 1, 2 or 5 times a power of ten, about span/target.
double nice_step(double span, int target) {
  double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;  // no "-0" or "1e-17"
  return fmt::format("{:g}", v);
}

struct YRange {
  bool fixed = false;
  double lo = 0, hi = 1;
};

std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<Series>& series, bool log2_x, int width, int height, YRange yr) {
  const double left = 64, right = 16, top = 36, bottom = 48;
  const double pw = width - left - right, ph = height - top - bottom;
  // Drawable points in plot space (x already log2 when asked).
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& se = series[s];
    for (size_t i = 0; i < std::min(se.x.size(), se.y.size()); ++i) {
      double x = se.x[i], y = se.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (log2_x && x <= 0)) continue;
      pts[s].emplace_back(log2_x ? std::log2(x) : x, y);
    }
  }
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (auto& p : pts)
    for (auto [x, y] : p) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  const bool empty = !(xmin <= xmax);
  if (empty) xmin = 0, xmax = 1, ymin = 0, ymax = 1;

  // x axis: integer exponents on a log2 axis, nice steps otherwise.
  double xstep;
  if (log2_x) {
    xmin = std::floor(xmin), xmax = std::ceil(xmax);
    if (xmax == xmin) xmax = xmin + 1;
    xstep = std::ceil((xmax - xmin) / 8);
  } else {
    if (xmax == xmin) xmin -= xmin == 0 ? 1 : std::fabs(xmin) * 0.1, xmax += xmax == 0 ? 1 : std::fabs(xmax) * 0.1;
    xstep = nice_step(xmax - xmin, 6);
    xmin = std::floor(xmin / xstep) * xstep, xmax = std::ceil(xmax / xstep) * xstep;
  }
  double ystep;
  if (yr.fixed) {
    ymin = yr.lo, ymax = yr.hi, ystep = nice_step(ymax - ymin, 5);
  } else {
    if (ymax == ymin) ymin -= ymin == 0 ? 1 : std::fabs(ymin) * 0.1, ymax += ymax == 0 ? 1 : std::fabs(ymax) * 0.1;
    ystep = nice_step(ymax - ymin, 5);
    ymin = std::floor(ymin / ystep) * ystep, ymax = std::ceil(ymax / ystep) * ystep;
  }
  auto X = [&](double x) { return left + pw * (x - xmin) / (xmax - xmin); };
  auto Y = [&](double y) { return top + ph * (1.0 - std::clamp((y - ymin) / (ymax - ymin), 0.0, 1.0)); };

  std::string s = svg_open(width, height, left + pw / 2, title);
  const char* line = "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\"/>\n";
  for (int64_t i = std::llround(ymin / ystep); i * ystep <= ymax + ystep * 1e-9; ++i) {
    double v = i * ystep, y = Y(v);
    s += fmt::format(line, left, y, left + pw, y, "#ddd");
    s += fmt::format(line, left - 5, y, left, y, "black");
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 8, y + 4,
                     tick_label(v, ystep));
  }
  for (int64_t i = std::llround(xmin / xstep); i * xstep <= xmax + xstep * 1e-9; ++i) {
    double v = i * xstep, x = X(v);
    s += fmt::format(line, x, top, x, top + ph, "#eee");
    s += fmt::format(line, x, top + ph, x, top + ph + 5, "black");
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x, top + ph + 18,
                     log2_x ? tick_label(std::exp2(v), 1e-300) : tick_label(v, xstep));
  }
  s += fmt::format(line, left, top, left, top + ph, "black");
  s += fmt::format(line, left, top + ph, left + pw, top + ph, "black");
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}{}</text>\n", left + pw / 2, height - 10.0,
                   svg_escape(xlabel), log2_x ? " (log2 scale)" : "");
  s += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">{1}</text>\n",
      top + ph / 2, svg_escape(ylabel));
  if (empty)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                     left + pw / 2, top + ph / 2);
  // One polyline per series with points.
  for (size_t k = 0; k < series.size(); ++k) {
    if (pts[k].empty()) continue;
    const char* c = svg_colour(k);
    std::string p;
    for (auto [x, y] : pts[k]) p += fmt::format("{}{:.1f},{:.1f}", p.empty() ? "" : " ", X(x), Y(y));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n", c, p);
    if (pts[k].size() <= 32)
      for (auto [x, y] : pts[k])
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", X(x), Y(y), c);
  }
  // Legend inside the plot, in the corner (top right, top left, bottom right, bottom left) that
  // covers the fewest points.
  if (!series.empty()) {
    size_t chars = 0;
    for (auto& se : series) chars = std::max(chars, se.label.size() + (pts[&se - series.data()].empty() ? 10 : 0));
    double lw = 34 + 7.0 * chars, lh = 16.0 * series.size() + 6, lx = 0, ly = 0;
    size_t best = SIZE_MAX;
    for (int corner = 0; corner < 4; ++corner) {
      double cx = corner % 2 == 0 ? left + pw - lw - 6 : left + 6, cy = corner < 2 ? top + 6 : top + ph - lh - 6;
      size_t covered = 0;
      for (auto& p : pts)
        for (auto [x, y] : p) covered += X(x) >= cx && X(x) <= cx + lw && Y(y) >= cy && Y(y) <= cy + lh;
      if (covered < best) best = covered, lx = cx, ly = cy;
    }
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"white\" fill-opacity=\"0.85\" "
        "stroke=\"#ccc\"/>\n",
        lx, ly, lw, lh);
    for (size_t k = 0; k < series.size(); ++k) {
      double y = ly + 14 + 16.0 * k;
      s += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n", lx + 6,
          y - 4, lx + 24, y - 4, svg_colour(k));
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}{}</text>\n", lx + 28, y, svg_escape(series[k].label),
                       pts[k].empty() ? " (no data)" : "");
    }
  }
  s += "</svg>\n";
  return s;
}

// ---------------------------------------------------------------- demo directory

struct Round {
  std::string name;
  std::map<int64_t, double> passk;  // k -> pass@k
  std::optional<double> greedy;
  json pairs, steps, seconds;  // shown as given (null when absent)
  std::optional<int64_t> n;    // samples per problem, from passk.json
};

struct Summary {
  std::string path;
  json seed, method, tools;
  std::vector<Round> rounds;
};

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

Summary load_summary(const std::string& dir) {
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

std::string f3(double v) { return fmt::format("{:.3f}", v); }
// Milli-units of the 3-decimal value shown, so changes agree with the table.
int64_t milli(double v) { return std::llround(std::stod(f3(v)) * 1000); }
std::string pp(double from, double to) {
  int64_t d = milli(to) - milli(from);
  return d == 0 ? "0.0" : fmt::format("{:+.1f}", d / 10.0);
}
std::string show(const json& v, const char* fmt_num = "{}") {
  if (v.is_null()) return "n/a";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format(fmt::runtime(fmt_num), v.get<double>());
  return v.dump();
}
std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
int64_t max_k(const Round& r) { return r.passk.rbegin()->first; }
std::string passk_at(const Round& r, int64_t k) {
  auto it = r.passk.find(k);
  return it == r.passk.end() ? "n/a" : f3(it->second);
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

const YRange kUnit{true, 0, 1};

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, bool log2_x, int width, int height) {
  return line_chart(title, xlabel, ylabel, series, log2_x, width, height, YRange{});
}

// The key of a round's paired gain over the first model: the demo's SFT or iterate's base.
const char* gain_key(const json& r) {
  for (const char* k : {"gain_over_sft", "gain_over_base"})
    if (r.contains(k) && r[k].is_object()) return k;
  return nullptr;
}

// The paired gains over the first round and the control arms (summary.json's
// "gain_over_sft" and "controls", written by the demo), or "" when absent.
std::string gains_section(const json& j) {
  const bool any_gain = j.contains("rounds") && j["rounds"].is_array() &&
                        std::any_of(j["rounds"].begin(), j["rounds"].end(),
                                    [](const json& r) { return r.is_object() && gain_key(r) != nullptr; });
  if (!any_gain && !j.contains("controls")) return "";
  std::string md = "## Gain over the first model and controls\n\n";
  md += "pass@1 ± its standard error over problems; the gain is paired (the same held-out problems, samples and "
        "seeds for every arm) with its standard error. The controls start from the same SFT model and train on "
        "the same number of tokens per round: sft_more on the supervised data, rft on their own verified-correct "
        "samples.\n\n| arm | round | pass@1 | gain | train tokens |\n|---|---|---:|---:|---:|\n";
  auto row = [&](const std::string& arm, const json& r) {
    if (!r.is_object() || !r.contains("pass_at_k") || !r["pass_at_k"].contains("1")) return;
    std::string gain = "";
    if (const char* k = gain_key(r))
      gain = fmt::format("{:+.1f} ± {:.1f} pp", 100 * r[k].value("pass_at_1", 0.0), 100 * r[k].value("stderr", 0.0));
    md += fmt::format("| {} | {} | {:.3f} ± {:.3f} | {} | {} |\n", md_cell(arm), md_cell(r.value("name", std::string("?"))),
                      r["pass_at_k"]["1"].get<double>(), r.value("pass_at_1_stderr", 0.0), gain,
                      r.contains("train_tokens") ? fmt::format("{}", r["train_tokens"].get<int64_t>()) : std::string());
  };
  const std::string method = j.contains("method") && j["method"].is_string() ? j["method"].get<std::string>() : "run";
  for (auto& r : j["rounds"]) row(method, r);
  if (j.contains("controls") && j["controls"].is_array())
    for (auto& c : j["controls"])
      if (c.is_object() && c.contains("rounds") && c["rounds"].is_array())
        for (auto& r : c["rounds"]) row(c.value("name", std::string("control")), r);
  return md + "\n";
}

std::string write_report(const std::string& dir) {
  Summary sm = load_summary(dir);
  const auto& rounds = sm.rounds;
  int64_t kmax = 0;
  bool same_kmax = true, any_greedy = false;
  for (auto& r : rounds) {
    if (kmax && max_k(r) != kmax) same_kmax = false;
    kmax = std::max(kmax, max_k(r));
    any_greedy |= r.greedy.has_value();
  }

  std::string md = "# prefopt demo report\n\n";
  md += fmt::format("seed: {} · method: {} · tools: {}\n\n", show(sm.seed), show(sm.method), show(sm.tools));
  md += fmt::format("| round | pass@1 | {} |{} pairs | train steps | seconds |\n",
                    same_kmax ? fmt::format("pass@{}", kmax) : "pass@max k", any_greedy ? " greedy accuracy |" : "");
  md += fmt::format("|---|---:|---:|{}---:|---:|---:|\n", any_greedy ? "---:|" : "");
  for (auto& r : rounds) {
    std::string top = passk_at(r, max_k(r)) + (same_kmax ? "" : fmt::format(" (k={})", max_k(r)));
    md += fmt::format("| {} | {} | {} |{} {} | {} | {} |\n", md_cell(r.name), passk_at(r, 1), top,
                      any_greedy ? " " + (r.greedy ? f3(*r.greedy) : std::string("n/a")) + " |" : "", show(r.pairs),
                      show(r.steps), show(r.seconds, "{:.1f}"));
  }
  md += "\n";
  md += rounds.size() == 1 ? fmt::format("Only one round ({}); no change to report.\n\n", rounds[0].name)
                           : change_sentence(rounds.front(), rounds.back()) + "\n\n";
  md += gains_section(json::parse(read_file(sm.path)));

  // pass@k: full table and picture.
  std::vector<int64_t> ks;
  for (auto& r : rounds)
    for (auto& [k, v] : r.passk) ks.push_back(k);
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  std::optional<int64_t> n;  // samples per problem, from the first passk.json that states it
  for (auto& r : rounds)
    if (!n) n = r.n;
  md += "## pass@k\n\n";
  md += n ? fmt::format("Unbiased pass@k from n = {} samples per problem.\n\n", *n) : std::string();
  md += "| round |";
  for (auto k : ks) md += fmt::format(" k={} |", k);
  md += "\n|---|";
  for (size_t i = 0; i < ks.size(); ++i) md += "---:|";
  md += "\n";
  for (auto& r : rounds) {
    md += "| " + md_cell(r.name) + " |";
    for (auto k : ks) md += " " + passk_at(r, k) + " |";
    md += "\n";
  }
  std::vector<Series> pk;
  for (auto& r : rounds) pk.push_back(passk_series(r, r.name));
  std::vector<std::pair<std::string, std::string>> files;  // name -> svg
  files.emplace_back("passk.svg", line_chart("pass@k per round", "k", "pass@k", pk, true, 640, 400, kUnit));
  md += "\n![pass@k vs k, one curve per round](passk.svg)\n\n";

  // Training curves from metrics.jsonl.
  std::vector<std::map<std::string, Series>> metrics;
  std::vector<std::string> missing;
  for (auto& r : rounds) {
    std::string p = dir + "/" + r.name + "/metrics.jsonl";
    if (!file_exists(p)) missing.push_back(r.name);
    metrics.push_back(load_metrics(p));
  }
  struct Chart {
    const char* file;
    const char* heading;
    const char* ylabel;
    std::vector<const char*> keys;
  };
  const Chart charts[] = {
      {"loss.svg", "Training loss", "loss", {"loss", "eval_loss"}},
      {"margins.svg", "Reward margins (rewards/margins)", "rewards/margins", {"rewards/margins"}},
      {"accuracies.svg", "Reward accuracies (rewards/accuracies)", "rewards/accuracies", {"rewards/accuracies"}}};
  for (auto& c : charts) {
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
    files.emplace_back(c.file, svg_line_chart(c.heading, "step", c.ylabel, ss));
    md += fmt::format("## {}\n\n![{}]({})\n\n", c.heading, c.heading, c.file);
  }
  if (!missing.empty()) {
    md += "No metrics.jsonl for:";
    for (auto& m : missing) md += " " + m + (&m == &missing.back() ? "." : ",");
    md += "\n";
  }
  for (auto& [name, svg] : files) atomic_write(dir + "/" + name, svg);
  std::string path = dir + "/report.md";
  atomic_write(path, md);
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
               line_chart("pass@k: first round vs last round per run", "k", "pass@k", curves, true, 640, 400, kUnit));
  return md;
}

}  // namespace prefopt::pipeline
