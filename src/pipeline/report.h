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
// Output of write_report: DIR/report.md and the pictures it links, and DIR/report.html, each
// written atomically (SVGs first, then report.html, report.md last): passk.svg (always), loss.svg
// ("loss" and "eval_loss" vs step), margins.svg ("rewards/margins"), accuracies.svg
// ("rewards/accuracies"); a picture is written and linked only when some round has points for it
// (a stale one from an earlier run is left alone). The charts are drawn by core/svg.h.
//
// report.html is one self-contained file for a browser: inline CSS, the same SVG charts inlined,
// no script, no external URL (the only "http" in it is the SVG namespace). It shows the title,
// the run time (summary "seconds", else the sum of the rounds' and controls' seconds), the
// per-round table and change sentence, the gains/controls table, the pass@k table and curves, the
// training curves (report.md's charts, then one chart per round with metrics: its loss, eval_loss,
// rewards/margins and rewards/accuracies on its own step axis), and the run configuration
// (summary.json's other top-level keys; an object's keys as "object.key"). Every text from the inputs is HTML-escaped. Tables carry a class
// ("rounds", "gains", "passk", "config") and numbers are formatted as in report.md.
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

#include "core/svg.h"

namespace prefopt::pipeline {

// The chart types come from the shared SVG module (core/svg.h); these names stay for callers.
using prefopt::Series;
using prefopt::svg_line_chart;

// Reads a demo output directory and writes DIR/report.md, the SVGs it links and DIR/report.html.
// Returns the report path (DIR/report.md).
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
