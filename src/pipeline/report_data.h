// prefopt pipeline, internal to the report: what report.md and report.html both show, read once
// from a demo/iterate directory (the input contract is in report.h), and the number formats
// both use. report.cpp loads it and writes the Markdown; report_html.cpp writes the HTML.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace prefopt::pipeline::report_detail {

struct Round {
  std::string name;
  std::map<int64_t, double> passk;  // k -> pass@k
  std::optional<double> greedy;
  nlohmann::json pairs, steps, seconds;  // shown as given (null when absent)
  std::optional<int64_t> n;              // samples per problem, from passk.json
};

struct Summary {
  std::string path;
  nlohmann::json seed, method, tools;
  std::vector<Round> rounds;
};

// One row of the gains/controls table: summary.json's "gain_over_sft" (demo) or
// "gain_over_base" (iterate) and the control arms' rounds.
struct GainRow {
  std::string arm, round;
  double pass1 = 0, pass1_stderr = 0;
  std::string gain;    // "+7.0 ± 2.1 pp" or ""
  std::string tokens;  // train tokens or ""
};

struct Chart {
  std::string file;     // the SVG file report.md links ("passk.svg", "loss.svg", ...); "" when none
  std::string heading;  // also the chart's title
  std::string svg;
};

struct ReportData {
  std::string dir;
  Summary sm;
  nlohmann::json raw;  // summary.json as read (for the gains, configuration and run time)
  int64_t kmax = 0;    // the largest k of any round
  bool same_kmax = true, any_greedy = false;
  std::vector<int64_t> ks;     // every k of any round, ascending
  std::optional<int64_t> n;    // samples per problem, from the first passk.json that states it
  std::string change;          // the change sentence (or the one-round sentence)
  bool has_gains = false;      // a gains section is shown (some gain or a "controls" key)
  std::vector<GainRow> gains;  // its rows
  Chart passk;                 // pass@k vs k, one curve per round
  std::vector<Chart> training; // loss / margins / accuracies, only those with points
  std::vector<Chart> per_round;  // one chart per round with metrics: its training metrics over steps
  std::vector<std::string> missing;  // rounds without metrics.jsonl
};

ReportData load_report(const std::string& dir);

std::string f3(double v);  // "0.050"
std::string show(const nlohmann::json& v, const char* fmt_num = "{}");  // null -> "n/a", bool -> yes/no
std::string passk_at(const Round& r, int64_t k);  // f3 or "n/a"
int64_t max_k(const Round& r);
// The per-round table's cells after the name: pass@1, pass@K (with " (k=K)" when the rounds
// differ in K), greedy accuracy (only when any_greedy), pairs, train steps, seconds.
std::vector<std::string> round_cells(const ReportData& d, const Round& r);
std::string top_k_header(const ReportData& d);  // "pass@8" or "pass@max k"

// Writes DIR/report.html (atomically).
void write_html(const ReportData& d);

}  // namespace prefopt::pipeline::report_detail
