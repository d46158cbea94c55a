// report.html: the demo/iterate report as one self-contained HTML page (inline CSS, the report's
// SVG charts inlined, no script, no external URL). Same data and number formats as report.md.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "core/svg.h"
#include "pipeline/report_data.h"

namespace prefopt::pipeline::report_detail {

namespace {

using nlohmann::json;

const char* const kStyle = R"(body{font-family:sans-serif;color:#222;background:#fafafa;margin:0}
main{max-width:1160px;margin:0 auto;padding:16px 24px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:16px 0 4px}
p.lead{color:#555;margin:0 0 8px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 10px;text-align:left}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;flex:1 1 540px;max-width:660px}
figure svg{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#555}
footer{color:#888;font-size:12px;margin-top:24px}
)";

std::string esc(const std::string& s) { return svg_escape(s); }

// A table: header cells, then rows of (text, numeric) cells; every text escaped.
struct Cell {
  std::string text;
  bool num = false;
};
std::string table(const std::string& cls, const std::vector<std::string>& head,
                  const std::vector<std::vector<Cell>>& rows) {
  std::string h = fmt::format("<table class=\"{}\">\n<thead><tr>", cls);
  for (auto& c : head) h += "<th>" + esc(c) + "</th>";
  h += "</tr></thead>\n<tbody>\n";
  for (auto& r : rows) {
    h += "<tr>";
    for (auto& c : r) h += (c.num ? "<td class=\"num\">" : "<td>") + esc(c.text) + "</td>";
    h += "</tr>\n";
  }
  return h + "</tbody>\n</table>\n";
}

std::string figure(const Chart& c) {
  return "<figure>\n" + c.svg + "<figcaption>" + esc(c.heading) + (c.file.empty() ? "" : " (" + esc(c.file) + ")") +
         "</figcaption>\n</figure>\n";
}

// "123.4 s (2 min 3 s)"
std::string duration(double s) {
  std::string t = fmt::format("{:.1f} s", s);
  if (s >= 60) {
    auto whole = static_cast<long long>(std::llround(s));
    t += whole >= 3600 ? fmt::format(" ({} h {} min {} s)", whole / 3600, whole / 60 % 60, whole % 60)
                       : fmt::format(" ({} min {} s)", whole / 60, whole % 60);
  }
  return t;
}

// The run time line: the summary's total, else the sum of every round's seconds.
std::string run_time(const json& j) {
  if (j.contains("seconds") && j["seconds"].is_number())
    return "Run time: " + duration(j["seconds"].get<double>()) + ".";
  double sum = 0;
  size_t n = 0;
  auto add = [&](const json& rounds) {
    if (!rounds.is_array()) return;
    for (auto& r : rounds)
      if (r.is_object() && r.contains("seconds") && r["seconds"].is_number()) sum += r["seconds"].get<double>(), ++n;
  };
  if (j.contains("rounds")) add(j["rounds"]);
  if (j.contains("controls") && j["controls"].is_array())
    for (auto& c : j["controls"])
      if (c.is_object() && c.contains("rounds")) add(c["rounds"]);
  if (n == 0) return "Run time: n/a (no seconds in summary.json).";
  return fmt::format("Run time: {} (the sum of {} rounds' times; summary.json has no total).", duration(sum), n);
}

// summary.json's top-level settings, objects flattened one level ("setup.held_out").
std::vector<std::vector<Cell>> config_rows(const json& j) {
  std::vector<std::vector<Cell>> rows;
  for (auto& [key, v] : j.items()) {
    if (key == "rounds" || key == "controls" || key == "seconds") continue;
    if (v.is_object()) {
      for (auto& [k2, v2] : v.items()) rows.push_back({{key + "." + k2}, {show(v2), v2.is_number()}});
    } else {
      rows.push_back({{key}, {show(v), v.is_number()}});
    }
  }
  return rows;
}

}  // namespace

void write_html(const ReportData& d) {
  const auto& rounds = d.sm.rounds;
  std::string title = "prefopt report";
  if (d.sm.method.is_string()) title += ": " + d.sm.method.get<std::string>();
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + esc(title) +
                  "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  h += "<h1>" + esc(title) + "</h1>\n";
  h += "<p class=\"lead\">" +
       esc(fmt::format("seed: {} · method: {} · tools: {}", show(d.sm.seed), show(d.sm.method), show(d.sm.tools))) +
       "</p>\n";
  h += "<p class=\"runtime\">" + esc(run_time(d.raw)) + "</p>\n";

  h += "<h2>Rounds</h2>\n";
  std::vector<std::string> head{"round", "pass@1", top_k_header(d)};
  if (d.any_greedy) head.push_back("greedy accuracy");
  for (auto c : {"pairs", "train steps", "seconds"}) head.push_back(c);
  std::vector<std::vector<Cell>> rows;
  for (auto& r : rounds) {
    std::vector<Cell> row{{r.name}};
    for (auto& c : round_cells(d, r)) row.push_back({c, true});
    rows.push_back(std::move(row));
  }
  h += table("rounds", head, rows);
  h += "<p class=\"change\">" + esc(d.change) + "</p>\n";

  if (d.has_gains) {
    h += "<h2>Gain over the first model and controls</h2>\n<p>pass@1 ± its standard error over problems; the gain "
         "is paired (the same held-out problems, samples and seeds for every arm) with its standard error. The "
         "controls start from the same SFT model and train on the same number of tokens per round: sft_more on "
         "the supervised data, rft on their own verified-correct samples.</p>\n";
    rows.clear();
    for (auto& g : d.gains)
      rows.push_back({{g.arm}, {g.round}, {fmt::format("{:.3f} ± {:.3f}", g.pass1, g.pass1_stderr), true},
                      {g.gain, true}, {g.tokens, true}});
    h += table("gains", {"arm", "round", "pass@1", "gain", "train tokens"}, rows);
  }

  h += "<h2>pass@k</h2>\n";
  if (d.n) h += fmt::format("<p>Unbiased pass@k from n = {} samples per problem.</p>\n", *d.n);
  head = {"round"};
  for (auto k : d.ks) head.push_back(fmt::format("k={}", k));
  rows.clear();
  for (auto& r : rounds) {
    std::vector<Cell> row{{r.name}};
    for (auto k : d.ks) row.push_back({passk_at(r, k), true});
    rows.push_back(std::move(row));
  }
  h += table("passk", head, rows);
  h += "<div class=\"charts\">\n" + figure(d.passk) + "</div>\n";

  h += "<h2>Training curves</h2>\n";
  if (!d.training.empty()) {
    h += "<div class=\"charts\">\n";
    for (auto& c : d.training) h += figure(c);
    h += "</div>\n";
  }
  if (!d.per_round.empty()) {
    h += "<h3>Per round</h3>\n<p>Each round's metrics.jsonl on its own step axis.</p>\n<div class=\"charts\">\n";
    for (auto& c : d.per_round) h += figure(c);
    h += "</div>\n";
  }
  if (!d.missing.empty()) {
    std::string m = "No metrics.jsonl for:";
    for (auto& r : d.missing) m += " " + r + (&r == &d.missing.back() ? "." : ",");
    h += "<p class=\"missing\">" + esc(m) + "</p>\n";
  }

  h += "<h2>Configuration</h2>\n";
  h += table("config", {"setting", "value"}, config_rows(d.raw));
  h += "<footer>Written by prefopt from summary.json and the rounds' metrics.jsonl and passk.json.</footer>\n";
  h += "</main>\n</body>\n</html>\n";
  atomic_write(d.dir + "/report.html", h);
}

}  // namespace prefopt::pipeline::report_detail
