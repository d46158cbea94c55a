// report.html: balanced tags, hostile text escaped, table numbers equal to summary.json's, the
// SVGs inlined byte for byte as written beside it, no script and no URL but the SVG namespace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "core/fs.h"
#include "pipeline/report.h"
#include "pipeline/report_fixture.h"

using namespace prefopt;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / fmt::format("prefopt_report_html_{}_{}", getpid(), name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Walks every tag: each start tag (not self-closing "/>", not a void element) must be closed by
// the matching end tag in order. Returns "" when balanced, else what went wrong.
std::string check_balanced(const std::string& h) {
  static const std::set<std::string> kVoid{"meta", "br", "hr", "img", "link", "input"};
  std::vector<std::string> open;
  for (size_t p = h.find('<'); p != std::string::npos; p = h.find('<', p + 1)) {
    size_t e = h.find('>', p);
    if (e == std::string::npos) return "unterminated tag at " + std::to_string(p);
    std::string tag = h.substr(p + 1, e - p - 1);
    if (tag.rfind("!DOCTYPE", 0) == 0) continue;
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(p);
    bool closing = tag[0] == '/', self = tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \n/"));
    if (closing) {
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">");
      open.pop_back();
    } else if (!self && !kVoid.count(name)) {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

// The <td> texts of each row of the table with the given class.
std::vector<std::vector<std::string>> table_rows(const std::string& h, const std::string& cls) {
  std::vector<std::vector<std::string>> rows;
  size_t b = h.find("<table class=\"" + cls + "\">");
  if (b == std::string::npos) return rows;
  size_t e = h.find("</table>", b);
  std::string t = h.substr(b, e - b);
  std::regex tr("<tr>(.*?)</tr>"), td("<td[^>]*>([^<]*)</td>");
  for (std::sregex_iterator i(t.begin(), t.end(), tr), end; i != end; ++i) {
    std::string r = (*i)[1];
    std::vector<std::string> cells;
    for (std::sregex_iterator j(r.begin(), r.end(), td); j != end; ++j) cells.push_back((*j)[1]);
    if (!cells.empty()) rows.push_back(cells);
  }
  return rows;
}

std::string f3(double v) { return fmt::format("{:.3f}", v); }

}  // namespace

TEST(ReportHtml, WellFormedSelfContainedAndSameCharts) {
  std::string d = temp_dir("demo");
  prefopt::testing::write_report_fixture(d);
  pipeline::write_report(d);
  std::string h = read_file(d + "/report.html");
  EXPECT_EQ(check_balanced(h), "");
  EXPECT_EQ(h.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
  EXPECT_EQ(count(h, "<body>"), 1u);
  EXPECT_EQ(count(h, "</html>"), 1u);
  // report.md's four charts inlined: pass@k, loss, margins, accuracies, each exactly the SVG file
  // beside it; then one chart per round (sft, round1, round2).
  EXPECT_EQ(count(h, "<svg "), 4u + 3u);
  for (auto f : {"passk.svg", "loss.svg", "margins.svg", "accuracies.svg"})
    EXPECT_NE(h.find(read_file(d + "/" + f)), std::string::npos) << f;
  // loss: sft + 2 rounds; pass@k: 3 rounds; margins and accuracies: 2 rounds each; per round:
  // sft loss only, each trained round loss + margins + accuracies.
  EXPECT_EQ(count(h, "<polyline"), 3u + 3u + 2u + 2u + 1u + 3u + 3u);
  size_t r1 = h.find(">round1: training metrics</text>");
  ASSERT_NE(r1, std::string::npos);
  std::string r1svg = h.substr(r1, h.find("</svg>", r1) - r1);
  EXPECT_EQ(count(r1svg, "<polyline"), 3u);
  for (auto m : {">loss</text>", ">rewards/margins</text>", ">rewards/accuracies</text>"})
    EXPECT_NE(r1svg.find(m), std::string::npos) << m;
  // Each round's own x axis: round1 logs steps 1..40, so its axis ends at 40, not at sft's 300.
  EXPECT_NE(r1svg.find(">40</text>"), std::string::npos);
  EXPECT_EQ(r1svg.find(">300</text>"), std::string::npos);
  // Self-contained: the only "http" is the SVG namespace; no script, link, image or style import.
  EXPECT_EQ(count(h, "http"), count(h, "xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_EQ(count(h, "xmlns=\"http://www.w3.org/2000/svg\""), 7u);
  std::string lower = h;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (auto bad : {"<script", "<link", "<img", "<iframe", "<object", "<embed", "src=", "href=", "url(", "@import",
                   "javascript:"})
    EXPECT_EQ(lower.find(bad), std::string::npos) << bad;
  EXPECT_FALSE(std::regex_search(lower, std::regex("<[^>]*\\son[a-z]+\\s*="))) << "no event handler attribute";
  // report.md is still written and unchanged in shape.
  EXPECT_NE(read_file(d + "/report.md").find("| round2 | 0.133 | 0.437 | 0.125 | 109 | 40 | 240.8 |"),
            std::string::npos);
  // Deterministic.
  pipeline::write_report(d);
  EXPECT_EQ(read_file(d + "/report.html"), h);
  fs::remove_all(d);
}

TEST(ReportHtml, TableNumbersEqualTheSummary) {
  std::string d = temp_dir("numbers");
  json s = prefopt::testing::write_report_fixture(d);
  pipeline::write_report(d);
  std::string h = read_file(d + "/report.html");

  auto rounds = table_rows(h, "rounds");
  ASSERT_EQ(rounds.size(), s["rounds"].size());
  for (size_t i = 0; i < rounds.size(); ++i) {
    const json& r = s["rounds"][i];
    // round | pass@1 | pass@8 | greedy accuracy | pairs | train steps | seconds
    ASSERT_EQ(rounds[i].size(), 7u);
    EXPECT_EQ(rounds[i][0], r["name"].get<std::string>());
    EXPECT_EQ(rounds[i][1], f3(r["pass_at_k"]["1"].get<double>()));
    EXPECT_EQ(rounds[i][2], f3(r["pass_at_k"]["8"].get<double>()));
    EXPECT_EQ(rounds[i][3], f3(r["greedy_accuracy"].get<double>()));
    EXPECT_EQ(rounds[i][4], std::to_string(r["pairs"].get<int64_t>()));
    EXPECT_EQ(rounds[i][5], std::to_string(r["train_steps"].get<int64_t>()));
    EXPECT_EQ(rounds[i][6], fmt::format("{:.1f}", r["seconds"].get<double>()));
  }
  // Hand-checked against the fixture: round2's pass@8 0.4371 shows as 0.437, 212.06 s as 212.1.
  EXPECT_EQ(rounds[2][2], "0.437");
  EXPECT_EQ(rounds[1][6], "212.1");
  EXPECT_NE(h.find("<th>pass@8</th>"), std::string::npos);

  auto pk = table_rows(h, "passk");
  ASSERT_EQ(pk.size(), 3u);
  for (size_t i = 0; i < pk.size(); ++i) {
    ASSERT_EQ(pk[i].size(), 5u);  // round, k=1, 2, 4, 8
    int j = 1;
    for (auto k : {"1", "2", "4", "8"}) EXPECT_EQ(pk[i][j++], f3(s["rounds"][i]["pass_at_k"][k].get<double>())) << k;
  }
  EXPECT_NE(h.find("n = 8 samples per problem"), std::string::npos);

  // Gains: the run's 3 rounds then the control's 2, "p ± se", gain in points, tokens.
  auto g = table_rows(h, "gains");
  ASSERT_EQ(g.size(), 5u);
  EXPECT_EQ(g[0], (std::vector<std::string>{"dpo", "sft", "0.062 ± 0.021", "", ""}));
  EXPECT_EQ(g[2], (std::vector<std::string>{"dpo", "round2", "0.133 ± 0.028", "+7.0 ± 1.9 pp", "49876"}));
  EXPECT_EQ(g[3], (std::vector<std::string>{"sft_more", "round1", "0.070 ± 0.022", "+0.8 ± 0.9 pp", "51234"}));

  // Change sentence, run time (754.3 s = 12 min 34 s) and the configuration.
  EXPECT_NE(h.find("pass@1 rose from 0.062 (sft) to 0.133 (round2), +7.1 percentage points."), std::string::npos);
  EXPECT_NE(h.find("Run time: 754.3 s (12 min 34 s)."), std::string::npos);
  auto cfg = table_rows(h, "config");
  auto has = [&](const std::string& k, const std::string& v) {
    return std::find(cfg.begin(), cfg.end(), std::vector<std::string>{k, v}) != cfg.end();
  };
  EXPECT_TRUE(has("setup.held_out", "64"));
  EXPECT_TRUE(has("beta", "0.1"));
  EXPECT_TRUE(has("tools", "no"));
  EXPECT_TRUE(has("seed", "7"));
  for (auto& row : cfg) EXPECT_NE(row[0], "rounds");

  // Without a total (iterate), the run time is the sum of the 5 rounds' seconds:
  // 301.44 + 212.06 + 240.8 + 150.2 + 149.9 = 1054.4 s = 17 min 34 s.
  prefopt::testing::ReportFixture it;
  it.total_seconds = false;
  prefopt::testing::write_report_fixture(d, it);
  pipeline::write_report(d);
  EXPECT_NE(read_file(d + "/report.html").find("Run time: 1054.4 s (17 min 34 s) (the sum of 5 rounds"),
            std::string::npos);
  fs::remove_all(d);
}

TEST(ReportHtml, HostileTextIsEscaped) {
  std::string d = temp_dir("hostile");
  prefopt::testing::ReportFixture f;
  f.method = "<script>alert(\"x\")</script>";
  f.round1 = "<b>&r'1";
  f.control = "</td><img onerror=x>";
  prefopt::testing::write_report_fixture(d, f);
  pipeline::write_report(d);
  std::string h = read_file(d + "/report.html");
  EXPECT_EQ(check_balanced(h), "");
  std::string lower = h;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_EQ(lower.find("<script"), std::string::npos);
  EXPECT_EQ(lower.find("<img"), std::string::npos);
  EXPECT_EQ(lower.find("<b>"), std::string::npos);
  EXPECT_FALSE(std::regex_search(lower, std::regex("<[^>]*\\son[a-z]+\\s*=")));
  EXPECT_NE(h.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("<title>prefopt report: &lt;script&gt;"), std::string::npos);
  EXPECT_NE(h.find("<td>&lt;b&gt;&amp;r&#39;1</td>"), std::string::npos);          // the rounds table
  EXPECT_NE(h.find(">&lt;b&gt;&amp;r&#39;1</text>"), std::string::npos);           // an SVG legend
  EXPECT_NE(h.find("<td>&lt;/td&gt;&lt;img onerror=x&gt;</td>"), std::string::npos);  // the control arm
  // The table still has its 3 rounds with 7 cells each: nothing leaked into the markup.
  auto rows = table_rows(h, "rounds");
  ASSERT_EQ(rows.size(), 3u);
  for (auto& r : rows) EXPECT_EQ(r.size(), 7u);
  fs::remove_all(d);
}
