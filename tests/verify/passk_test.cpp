// pass@k against exact rational arithmetic: 1 - C(n-c,k)/C(n,k) with integers.
#include <gtest/gtest.h>

#include "core/error.h"
#include "verify/passk.h"
#include "verify/passk_plot.h"

using namespace prefopt;

static unsigned __int128 binom(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  unsigned __int128 r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * (n - k + i) / i;  // exact at every step
  return r;
}

TEST(PassAtK, EqualsExactRationalForAllSmallCases) {
  for (int64_t n = 1; n <= 40; ++n)
    for (int64_t c = 0; c <= n; ++c)
      for (int64_t k = 1; k <= n; ++k) {
        long double exact = 1.0L - static_cast<long double>(binom(n - c, k)) / static_cast<long double>(binom(n, k));
        EXPECT_NEAR(pass_at_k(n, c, k), static_cast<double>(exact), 1e-12) << n << " " << c << " " << k;
      }
}

TEST(PassAtK, HandValuesAndEdges) {
  EXPECT_DOUBLE_EQ(pass_at_k(10, 3, 1), 0.3);                   // pass@1 = c/n
  EXPECT_NEAR(pass_at_k(4, 1, 2), 1.0 - 3.0 / 6.0, 1e-15);      // C(3,2)/C(4,2) = 3/6
  EXPECT_DOUBLE_EQ(pass_at_k(5, 0, 5), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(5, 1, 5), 1.0);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  // large n stays in [0,1] and monotone in k
  double prev = 0;
  for (int64_t k : pass_at_k_grid(1000)) {
    double v = pass_at_k(1000, 7, k);
    EXPECT_GE(v, prev);
    EXPECT_LE(v, 1.0);
    prev = v;
  }
  EXPECT_EQ(pass_at_k_grid(12), (std::vector<int64_t>{1, 2, 4, 8, 12}));
  EXPECT_EQ(pass_at_k_grid(16), (std::vector<int64_t>{1, 2, 4, 8, 16}));
}

TEST(PassAtK, MeanOverProblems) {
  std::map<std::string, ProblemCounts> p{{"a", {4, 1}}, {"b", {4, 4}}};
  auto m = mean_pass_at_k(p, {1, 2});
  EXPECT_NEAR(m[1], (0.25 + 1.0) / 2, 1e-15);
  EXPECT_NEAR(m[2], (0.5 + 1.0) / 2, 1e-15);
  EXPECT_THROW(mean_pass_at_k(p, {8}), Error);
}

// The pass@k picture is the shared SVG chart (core/svg.h) on a log2 k axis and a fixed 0..1 axis.
// 640 x 420 with margins left 64, right 16, top 36, bottom 48: the plot is 560 x 336, so k = 1, 2, 4
// lie at x = 64, 344, 624 and pass@k 0, 0.5, 1 at y = 372, 204, 36 (a value above 1 is clamped).
TEST(PassKPlot, PointsOnLog2AndUnitAxesAndEscapedLabels) {
  std::string svg = passk_svg({{"base", {{1, 0.0}, {2, 0.5}, {4, 1.0}}}, {"a<b & \"c\"", {{1, 0.5}, {4, 1.5}}}},
                              "pass@k <title>");
  EXPECT_NE(svg.find("points=\"64.0,372.0 344.0,204.0 624.0,36.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("points=\"64.0,204.0 624.0,36.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find(">a&lt;b &amp; &quot;c&quot;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">pass@k &lt;title&gt;</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<b"), std::string::npos);
  EXPECT_NE(svg.find("width=\"640\" height=\"420\""), std::string::npos);
  EXPECT_EQ(svg_escape("<&>\"'x"), "&lt;&amp;&gt;&quot;&#39;x");
}
