// Demo report: exact numbers in report.md, honestly signed change sentence, one polyline per round with
// metrics and the right point counts, NaN skipped, log2 placement, tolerated gaps, errors naming files.
#include "pipeline/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/fs.h"

using namespace prefopt;
using namespace prefopt::pipeline;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_report_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// The points="..." of every polyline, as (x, y) lists.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& svg) {
  std::vector<std::vector<std::pair<double, double>>> out;
  std::regex re("<polyline[^>]*points=\"([^\"]*)\"");
  for (std::sregex_iterator it(svg.begin(), svg.end(), re), end; it != end; ++it) {
    std::vector<std::pair<double, double>> pts;
    std::string p = (*it)[1];
    std::regex pt("(-?[0-9.]+),(-?[0-9.]+)");
    for (std::sregex_iterator j(p.begin(), p.end(), pt); j != end; ++j)
      pts.emplace_back(std::stod((*j)[1]), std::stod((*j)[2]));
    out.push_back(pts);
  }
  return out;
}

// A fake demo dir: rounds sft, round1, round2 with the given pass@1 of the first and last round.
// sft: 5 metric rows (loss only), round1: 4 rows with preference metrics (one loss null = a NaN),
// round2: no metrics.jsonl.
std::string make_demo(const std::string& name, double p1_first, double p1_last, bool greedy = false) {
  std::string d = temp_dir(name);
  std::string g = greedy ? ", \"greedy_accuracy\": 0.04" : "";
  atomic_write(d + "/summary.json", fmt::format(R"({{"seed": 7, "method": "dpo", "tools": false, "extra": [1,2],
    "rounds": [
      {{"name": "sft", "pass_at_k": {{"1": {}, "2": 0.09, "4": 0.16, "8": 0.3}}, "pairs": 0, "train_steps": 300,
        "seconds": 30.14{}, "sft_loss_first": 5.0}},
      {{"name": "round1", "pass_at_k": {{"1": 0.08, "2": 0.12, "4": 0.2, "8": 0.31}}, "pairs": 120,
        "train_steps": 40, "seconds": 12.0}},
      {{"name": "round2", "pass_at_k": {{"1": {}, "2": 0.2, "4": 0.26, "8": 0.35}}, "pairs": 110,
        "train_steps": 40, "seconds": 11.96}}]}})",
                                                p1_first, g, p1_last));
  make_dirs(d + "/sft");
  make_dirs(d + "/round1");
  make_dirs(d + "/round2");
  std::string sft;
  for (int s = 1; s <= 5; ++s)
    sft += fmt::format("{{\"step\": {}, \"loss\": {}, \"learning_rate\": 1e-3}}\n", s * 10, 3.0 - 0.4 * s);
  atomic_write(d + "/sft/metrics.jsonl", sft);
  atomic_write(d + "/round1/metrics.jsonl",
               "{\"step\": 1, \"loss\": 0.69, \"rewards/margins\": 0.0, \"rewards/accuracies\": 0.5}\n"
               "{\"step\": 2, \"loss\": null, \"rewards/margins\": 0.1, \"rewards/accuracies\": 0.6}\n"
               "\n"
               "{\"step\": 3, \"loss\": 0.6, \"rewards/margins\": 0.3, \"rewards/accuracies\": 0.7, \"kl\": 0.01}\n"
               "{\"step\": 4, \"loss\": 0.55, \"rewards/margins\": 0.4, \"rewards/accuracies\": 0.8}\n");
  // passk.json disagreeing with the summary: the summary wins.
  atomic_write(d + "/round2/passk.json", R"({"n": 8, "pass_at_k": {"1": 0.999, "8": 0.999}})");
  return d;
}

}  // namespace

TEST(Report, TableNumbersAndRoseSentence) {
  std::string d = make_demo("rose", 0.05, 0.12);
  std::string path = write_report(d);
  EXPECT_EQ(path, d + "/report.md");
  std::string md = read_file(path);
  EXPECT_NE(md.find("seed: 7 · method: dpo · tools: no"), std::string::npos) << md;
  EXPECT_NE(md.find("| round | pass@1 | pass@8 | pairs | train steps | seconds |"), std::string::npos) << md;
  EXPECT_NE(md.find("| sft | 0.050 | 0.300 | 0 | 300 | 30.1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| round1 | 0.080 | 0.310 | 120 | 40 | 12.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| round2 | 0.120 | 0.350 | 110 | 40 | 12.0 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("0.999"), std::string::npos) << "summary.json is the source of truth";
  EXPECT_EQ(md.find("greedy"), std::string::npos) << "no round has greedy_accuracy";
  EXPECT_NE(md.find("pass@1 rose from 0.050 (sft) to 0.120 (round2), +7.0 percentage points."), std::string::npos)
      << md;
  EXPECT_NE(md.find("| sft | 0.050 | 0.090 | 0.160 | 0.300 |"), std::string::npos) << md;
  EXPECT_NE(md.find("No metrics.jsonl for: round2."), std::string::npos) << md;
  EXPECT_NE(md.find("n = 8 samples per problem"), std::string::npos) << md;
  for (auto f : {"passk.svg", "loss.svg", "margins.svg", "accuracies.svg"}) {
    EXPECT_TRUE(file_exists(d + "/" + f)) << f;
    EXPECT_NE(md.find(fmt::format("]({})", f)), std::string::npos) << f;
  }
  // loss.svg: one polyline per round with metrics (sft: 5 points, round1: 3, its null skipped).
  auto loss = polylines(read_file(d + "/loss.svg"));
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0].size(), 5u);
  EXPECT_EQ(loss[1].size(), 3u);
  // Loss falls in sft: SVG y grows downwards.
  for (size_t i = 1; i < loss[0].size(); ++i) EXPECT_GT(loss[0][i].second, loss[0][i - 1].second);
  // Preference metrics only from round1.
  auto m = polylines(read_file(d + "/margins.svg"));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].size(), 4u);
  EXPECT_EQ(polylines(read_file(d + "/accuracies.svg")).size(), 1u);
  // pass@k: one curve per round, 4 points each, on a log2 axis (equal spacing).
  auto pk = polylines(read_file(d + "/passk.svg"));
  ASSERT_EQ(pk.size(), 3u);
  ASSERT_EQ(pk[0].size(), 4u);
  EXPECT_NEAR(pk[0][1].first - pk[0][0].first, pk[0][3].first - pk[0][2].first, 0.15);
  // Deterministic: a second run writes the same bytes.
  std::string again = read_file(d + "/loss.svg");
  write_report(d);
  EXPECT_EQ(read_file(d + "/loss.svg"), again);
  EXPECT_EQ(read_file(d + "/report.md"), md);
}

TEST(Report, FellAndUnchangedAndGreedy) {
  std::string d = make_demo("fell", 0.12, 0.09, true);
  std::string md = read_file(write_report(d));
  EXPECT_NE(md.find("pass@1 fell from 0.120 (sft) to 0.090 (round2), -3.0 percentage points."), std::string::npos)
      << md;
  EXPECT_NE(md.find("| round | pass@1 | pass@8 | greedy accuracy | pairs | train steps | seconds |"),
            std::string::npos);
  EXPECT_NE(md.find("| sft | 0.120 | 0.300 | 0.040 | 0 | 300 | 30.1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| round1 | 0.080 | 0.310 | n/a | 120 | 40 | 12.0 |"), std::string::npos) << md;

  d = make_demo("same", 0.1, 0.1);
  md = read_file(write_report(d));
  EXPECT_NE(md.find("pass@1 did not change: 0.100 (sft) and 0.100 (round2)."), std::string::npos) << md;
  EXPECT_EQ(md.find(" rose "), std::string::npos);
  EXPECT_EQ(md.find(" fell "), std::string::npos);

  // A small rise that survives rounding is still reported, to one decimal of a point.
  d = make_demo("small", 0.1, 0.101);
  md = read_file(write_report(d));
  EXPECT_NE(md.find("pass@1 rose from 0.100 (sft) to 0.101 (round2), +0.1 percentage points."), std::string::npos)
      << md;
}

TEST(Report, MissingMetricsTolerated) {
  std::string d = temp_dir("nometrics");
  atomic_write(d + "/summary.json",
               R"({"rounds": [{"name": "sft", "pass_at_k": {"1": 0.2, "4": 0.5}}, {"name": "round1"}]})");
  make_dirs(d + "/round1");
  atomic_write(d + "/round1/passk.json", R"({"n": 4, "pass_at_k": {"1": 0.25, "4": 0.5}})");
  std::string md = read_file(write_report(d));
  EXPECT_NE(md.find("seed: n/a · method: n/a · tools: n/a"), std::string::npos) << md;
  EXPECT_NE(md.find("| round1 | 0.250 | 0.500 | n/a | n/a | n/a |"), std::string::npos) << md;
  EXPECT_NE(md.find("+5.0 percentage points."), std::string::npos) << md;
  EXPECT_NE(md.find("No metrics.jsonl for: sft, round1."), std::string::npos) << md;
  EXPECT_TRUE(file_exists(d + "/passk.svg"));
  EXPECT_FALSE(file_exists(d + "/loss.svg"));
  EXPECT_EQ(md.find("loss.svg"), std::string::npos);
  EXPECT_EQ(md.find("margins.svg"), std::string::npos);

  atomic_write(d + "/summary.json", R"({"rounds": [{"name": "sft", "pass_at_k": {"1": 0.2}}]})");
  md = read_file(write_report(d));
  EXPECT_NE(md.find("Only one round (sft); no change to report."), std::string::npos) << md;
}

TEST(Report, MalformedInputsNameTheFile) {
  std::string d = temp_dir("bad");
  auto expect_error = [&](const std::string& summary, const std::string& needle) {
    atomic_write(d + "/summary.json", summary);
    try {
      write_report(d);
      ADD_FAILURE() << "no error for " << summary;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(d + "/summary.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  expect_error(R"({"rounds": [{"name": "sft", "pass_at_k": {"1": 0.2})", "malformed JSON");
  expect_error(R"([1, 2])", "expected a JSON object");
  expect_error(R"({"seed": 1})", "rounds");
  expect_error(R"({"rounds": [{"name": "sft", "pass_at_k": {"one": 0.2}}]})", "\"one\"");
  expect_error(R"({"rounds": [{"name": "sft", "pass_at_k": {"1": "high"}}]})", "pass@1");
  expect_error(R"({"rounds": [{"name": "../x", "pass_at_k": {"1": 0.2}}]})", "plain directory name");
  expect_error(R"({"rounds": [{"name": "sft"}]})", "pass_at_k");
  EXPECT_FALSE(file_exists(d + "/report.md"));
  // A malformed metrics line names file:line.
  atomic_write(d + "/summary.json", R"({"rounds": [{"name": "sft", "pass_at_k": {"1": 0.2}}]})");
  make_dirs(d + "/sft");
  atomic_write(d + "/sft/metrics.jsonl", "{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\": \n");
  try {
    write_report(d);
    ADD_FAILURE() << "no error for a bad metrics line";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d + "/sft/metrics.jsonl:2"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
  EXPECT_THROW(write_report(d), Error);  // no summary.json at all
}

TEST(Chart, NanSkippedEmptySeriesAndLog2Placement) {
  Series a{"a", {1, 2, 3, 4, 5}, {1, NAN, 3, INFINITY, 5}};
  Series empty{"nothing", {}, {}};
  std::string svg = svg_line_chart("t <&>", "x", "y", {a, empty});
  auto pl = polylines(svg);
  ASSERT_EQ(pl.size(), 1u) << "the empty series has no polyline";
  EXPECT_EQ(pl[0].size(), 3u) << "NaN and inf skipped";
  EXPECT_NE(svg.find("nothing (no data)"), std::string::npos) << "but it has a legend entry";
  EXPECT_NE(svg.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_EQ(svg, svg_line_chart("t <&>", "x", "y", {a, empty}));
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);

  // log2 x: monotone, equal steps per doubling; x <= 0 is dropped; ticks labelled 1, 2, 4, ...
  Series b{"b", {0, 1, 2, 4, 8, 16}, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}};
  svg = svg_line_chart("p", "k", "pass", {b}, true);
  pl = polylines(svg);
  ASSERT_EQ(pl.size(), 1u);
  ASSERT_EQ(pl[0].size(), 5u);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_GT(pl[0][i].first, pl[0][i - 1].first);
    EXPECT_NEAR(pl[0][i].first - pl[0][i - 1].first, pl[0][1].first - pl[0][0].first, 0.15);
    EXPECT_LT(pl[0][i].second, pl[0][i - 1].second) << "larger y is higher";
  }
  EXPECT_NE(svg.find(">16</text>"), std::string::npos);
  EXPECT_NE(svg.find("(log2 scale)"), std::string::npos);
  // Linear x: the same data is not equally spaced.
  pl = polylines(svg_line_chart("p", "k", "pass", {b}, false));
  EXPECT_GT(pl[0][5].first - pl[0][4].first, 2 * (pl[0][4].first - pl[0][3].first) - 0.5);

  // Nothing at all to draw still gives a valid picture.
  svg = svg_line_chart("none", "x", "y", {});
  EXPECT_NE(svg.find("no data"), std::string::npos);
  EXPECT_TRUE(polylines(svg).empty());
}

TEST(Compare, TableAndCurves) {
  std::string a = make_demo("cmp_a", 0.05, 0.12), b = make_demo("cmp_b", 0.05, 0.03);
  std::string svg = temp_dir("cmp_out") + "/sub/compare.svg";
  std::string md = compare_runs_markdown({{"dpo", a}, {"kto", b}}, svg);
  EXPECT_NE(md.find("| run | rounds | pass@1 | change | pass@8 | change |"), std::string::npos) << md;
  EXPECT_NE(md.find("| dpo | sft → round2 | 0.050 → 0.120 | +7.0 pp | 0.300 → 0.350 | +5.0 pp |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| kto | sft → round2 | 0.050 → 0.030 | -2.0 pp | 0.300 → 0.350 | +5.0 pp |"), std::string::npos)
      << md;
  std::string s = read_file(svg);
  EXPECT_EQ(polylines(s).size(), 3u);
  EXPECT_NE(s.find("sft (dpo)"), std::string::npos);
  EXPECT_THROW(compare_runs_markdown({}, svg), Error);
}
