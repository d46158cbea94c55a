// prefopt pipeline: the report of a `prefopt demo` run. No torch here.
//
// Input contract: a demo directory DIR holds
//   DIR/summary.json   {"seed": S, "method": "dpo", "tools": false,
//                       "rounds": [{"name": "sft", "pass_at_k": {"1": p1, "2": p2, ...}, "pairs": N,
//                                   "train_steps": N, "seconds": s, ["greedy_accuracy": a]}, ...]}
//                      The first round is the baseline (SFT); any number of rounds; unknown keys are
//                      ignored; seed/method/tools may be absent (shown as "n/a"). A round name must be
//                      a plain directory name (no '/', not "." or ".."). pass_at_k keys are positive
//                      integers k. If a round has no "pass_at_k", DIR/<name>/passk.json is read instead
//                      ({"n": 8, "pass_at_k": {...}}); the summary wins when both exist.
//   DIR/<name>/metrics.jsonl  (optional) one JSON object per logged step: "step" plus TRL metric names
//                      ("loss", "eval_loss", "rewards/margins", "rewards/accuracies", ...). Absent keys,
//                      null and non-finite values are not plotted; a row without "step" gets its
//                      1-based row number.
//   DIR/<name>/passk.json     (optional) as above; its "n" is quoted in the report.
//
// Output of write_report: DIR/report.md and the pictures it links, each written atomically (SVGs
// first, report.md last): passk.svg (always), loss.svg ("loss" and "eval_loss" vs step),
// margins.svg ("rewards/margins"), accuracies.svg ("rewards/accuracies"); a picture is written and
// linked only when some round has points for it (a stale one from an earlier run is left alone).
//
// Number formats (tests rely on them): pass@k, greedy accuracy as fractions with 3 decimals
// ("0.050"); seconds with 1 decimal; changes in percentage points with 1 decimal and a sign
// ("+7.0", "-3.0", "0.0"), computed from the 3-decimal values shown, so text and table agree.
// The change sentence, first round A -> last round B:
//   "pass@1 rose from 0.050 (A) to 0.120 (B), +7.0 percentage points."
//   "pass@1 fell from 0.120 (A) to 0.050 (B), -7.0 percentage points."
//   "pass@1 did not change: 0.050 (A) and 0.050 (B)."
// With a single round: "Only one round (A); no change to report."
//
// Errors: a missing or malformed summary.json (bad JSON, wrong types, no rounds, a bad pass_at_k)
// or a malformed metrics.jsonl line throws prefopt::Error naming the file (and line or key).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace prefopt::pipeline {

struct Series {
  std::string label;
  std::vector<double> x, y;  // same length; (x[i], y[i]) drawn in the given order
};

// A self-contained SVG line chart: axes with ticks and labels, one polyline + legend entry per
// series (a series with no drawable point gets a legend entry and no polyline; series with at most
// 32 points also get a dot per point), optional log2 x axis (ticks at powers of two; x <= 0 is
// skipped). NaN/inf points are skipped. Deterministic output (same input, same bytes).
std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, bool log2_x = false, int width = 640, int height = 400);

// Reads a demo output directory and writes DIR/report.md plus the SVGs it links. Returns the report
// path (DIR/report.md).
std::string write_report(const std::string& dir);

// For the experiments page: a Markdown table, one row per (label, dir), with pass@1 and pass@max-k of
// the first and last round of that dir and their changes in percentage points:
//   | run | rounds | pass@1 | change | pass@K | change |
//   | dpo | sft → round2 | 0.050 → 0.120 | +7.0 pp | 0.300 → 0.350 | +5.0 pp |
// (K is the largest k; when the first and last rounds of all runs do not share one K, the header
// says "pass@max k" and each value there is followed by " (k=K)"). Also writes, atomically, an SVG
// to svg_path (its parent directory is created): pass@k vs k (log2) with the first round of the
// first dir (legend "<first round> (<label>)") and the last round of every dir (legend "<label>").
// The returned Markdown does not link the SVG: the caller knows the path relative to its page.
// Throws prefopt::Error on an empty list or a bad directory.
std::string compare_runs_markdown(const std::vector<std::pair<std::string, std::string>>& label_dirs,
                                  const std::string& svg_path);

}  // namespace prefopt::pipeline
