// Pair builders: random correct/incorrect, best/worst, DSTC minimax selection
// on hand-built matrices (the expected choices are derived in the comments).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "verify/dstc.h"
#include "verify/pairs.h"

using namespace prefopt;
using nlohmann::json;

static ExecMatrix matrix(const std::vector<std::string>& rows) {
  ExecMatrix m;
  m.codes = rows.size();
  m.tests = rows[0].size();
  for (auto& r : rows)
    for (char c : r) m.pass.push_back(c == '1');
  return m;
}

TEST(Dstc, MinimaxOnHandBuiltMatrix) {
  //            t0 t1 t2 t3     row sums
  // c0          1  1  0  0       2
  // c1          1  1  1  1       4   <- c+ (most passes)
  // c2          0  0  0  1       1   <- c- (fewest passes)
  // c3          1  0  1  1       3
  // column sums 3  2  2  3
  // t+: tests c1 passes = all; fewest codes pass: t1 (2) and t2 (2) -> lowest index t1.
  // t-: tests c2 fails = t0, t1, t2; most codes pass: t0 (3).
  auto c = dstc_select(matrix({"1100", "1111", "0001", "1011"}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chosen_code, 1u);
  EXPECT_EQ(c->chosen_test, 1u);
  EXPECT_EQ(c->rejected_code, 2u);
  EXPECT_EQ(c->rejected_test, 0u);
}

TEST(Dstc, SecondMatrixAndTies) {
  //            t0 t1 t2    rows
  // c0          0  1  1     2  <- c+ (tie with c2: lowest index)
  // c1          0  0  1     1
  // c2          1  1  0     2
  // c3          0  0  1     1  (tie with c1 for c-: c1)
  // cols        1  2  3
  // t+: c0 passes t1 (2), t2 (3) -> t1.   t-: c1 fails t0 (1), t1 (2) -> t1.
  auto c = dstc_select(matrix({"011", "001", "110", "001"}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chosen_code, 0u);
  EXPECT_EQ(c->chosen_test, 1u);
  EXPECT_EQ(c->rejected_code, 1u);
  EXPECT_EQ(c->rejected_test, 1u);
}

TEST(Dstc, NoPairWhenNothingSeparates) {
  EXPECT_FALSE(dstc_select(matrix({"111", "111"})));  // every code passes everything
  EXPECT_FALSE(dstc_select(matrix({"000", "000"})));  // nothing passes
  EXPECT_FALSE(dstc_select(matrix({"101", "011"})));  // equal row sums
  EXPECT_FALSE(dstc_select(matrix({"1"})));           // one code
  ExecMatrix bad = matrix({"10", "01"});
  bad.pass.pop_back();
  EXPECT_THROW(dstc_select(bad), Error);
}

TEST(Dstc, ResponseOrderAndExecute) {
  EXPECT_EQ(dstc_response("def f():\n    return 1\n\n", "assert f() == 1"),
            "def f():\n    return 1\n\nassert f() == 1\n");
  EXPECT_EQ(dstc_response("def f(): return 1", "assert f() == 1", DstcOrder::TEST_FIRST),
            "assert f() == 1\n\ndef f(): return 1\n");
  // A fake runner: code "k" passes test "t" when t's number <= k.
  auto run = [](const std::vector<std::pair<std::string, std::string>>& progs) {
    std::vector<bool> r;
    for (auto& [c, t] : progs) r.push_back(std::stoi(t) <= std::stoi(c));
    return r;
  };
  auto m = dstc_execute({"0", "2", "1"}, {"1", "2"}, run);
  EXPECT_EQ(m.pass, (std::vector<uint8_t>{0, 0, 1, 1, 1, 0}));
  auto c = dstc_select(m);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chosen_code, 1u);     // "2" passes both
  EXPECT_EQ(c->chosen_test, 1u);     // test "2": only one code passes it
  EXPECT_EQ(c->rejected_code, 0u);   // "0" passes none
  EXPECT_EQ(c->rejected_test, 0u);   // test "1": two codes pass it
}

static std::vector<PromptSamples> groups() {
  std::vector<PromptSamples> g(3);
  g[0].id = "p0";
  g[0].prompt = "What is 2+2?";
  for (int i = 0; i < 6; ++i) g[0].samples.push_back({json("a" + std::to_string(i)), i % 2 == 0, i * 0.1});
  g[1].id = "p1";  // all correct: no random pair
  g[1].prompt = json::array({json{{"role", "user"}, {"content", "hi"}}});
  g[1].samples = {{json("x"), true, 0.5}, {json("y"), true, 0.9}};
  g[2].id = "p2";  // all scores equal: no best/worst pair
  g[2].prompt = "q";
  g[2].samples = {{json("u"), false, 0.3}, {json("v"), true, 0.3}};
  return g;
}

TEST(Pairs, RandomCorrectIncorrectIsValidAndDeterministic) {
  auto g = groups();
  auto a = random_correct_incorrect_pairs(g, 7, 2);
  auto b = random_correct_incorrect_pairs(g, 7, 2);
  ASSERT_EQ(a.size(), 3u);  // p0: 2 pairs, p1: none, p2: 1 pair
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(to_json(a[i]), to_json(b[i]));
  }
  std::set<std::string> good{"a0", "a2", "a4"}, bad{"a1", "a3", "a5"};
  EXPECT_EQ(a[0].id, "p0");
  EXPECT_TRUE(good.count(a[0].chosen.get<std::string>()));
  EXPECT_TRUE(bad.count(a[0].rejected.get<std::string>()));
  EXPECT_NE(a[0].chosen, a[1].chosen);  // each sample used once
  EXPECT_NE(a[0].rejected, a[1].rejected);
  EXPECT_EQ(a[2].chosen, "v");
  EXPECT_EQ(a[2].rejected, "u");
  // Different seeds reach different picks for p0 somewhere in 20 tries.
  std::set<std::string> seen;
  for (uint64_t s = 0; s < 20; ++s) seen.insert(random_correct_incorrect_pairs(g, s)[0].chosen.get<std::string>());
  EXPECT_EQ(seen, good);
  // Pairs of p2 do not depend on p0's sample count.
  auto g2 = g;
  g2[0].samples.resize(2);
  EXPECT_EQ(to_json(random_correct_incorrect_pairs(g2, 7, 2).back()), to_json(a.back()));
}

TEST(Pairs, BestWorstAndKto) {
  auto g = groups();
  auto p = best_worst_pairs(g);
  ASSERT_EQ(p.size(), 2u);  // p2 has equal scores
  EXPECT_EQ(p[0].chosen, "a5");
  EXPECT_EQ(p[0].rejected, "a0");
  EXPECT_EQ(p[1].chosen, "y");
  EXPECT_EQ(p[1].prompt, g[1].prompt);  // conversational prompt kept
  EXPECT_EQ(best_worst_pairs(g, 0.45).size(), 1u);  // p1's margin 0.4 is too small
  auto k = unpaired_rows(g);
  ASSERT_EQ(k.size(), 10u);
  EXPECT_EQ(to_json(k[0]), (json{{"prompt", "What is 2+2?"}, {"completion", "a0"}, {"label", true}, {"prompt_id", "p0"}}));
  EXPECT_EQ(to_json(p[0]),
            (json{{"prompt", "What is 2+2?"}, {"chosen", "a5"}, {"rejected", "a0"}, {"prompt_id", "p0"}}));
}
