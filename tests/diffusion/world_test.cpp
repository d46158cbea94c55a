// The world, its checker and the perturbations: ground-truth renders pass,
// renders checked against perturbed captions fail, shapes are told apart.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "diffusion/checker.h"
#include "diffusion/perturb.h"
#include "diffusion/png.h"
#include "diffusion/world.h"

using namespace prefopt::diffusion;

TEST(World, CaptionsRoundTripAndTokenize) {
  const auto all = all_captions();
  EXPECT_EQ(all.size(), 432u);
  std::set<std::string> texts;
  for (const auto& c : all) {
    const auto t = caption_text(c);
    texts.insert(t);
    EXPECT_EQ(parse_caption(t), c);
    const auto ids = tokenize_caption(t);
    ASSERT_EQ(ids.size(), static_cast<size_t>(kTokens));
  }
  EXPECT_EQ(texts.size(), 432u);
  EXPECT_EQ(caption_text(Caption{0, 0, kLeftOf, 2, 1}), "a red square left of a blue circle");
  // "a red square above a green triangle": 7 words and one pad.
  const auto ids = tokenize_caption("a red square above a green triangle");
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 6, 12, 1, 3, 8, 0}));
  EXPECT_THROW(parse_caption("a red square left of a red circle"), prefopt::Error);
  EXPECT_THROW(tokenize_caption("a purple square"), prefopt::Error);
}

TEST(World, ShapeFeaturesSeparateShapes) {
  for (int s = 6; s <= 7; ++s)
    for (int shape = 0; shape < kShapes; ++shape) {
      Caption c{0, shape, kLeftOf, 1, shape};
      Layout l{0, 4, s, 9, 4, s};
      const auto objs = find_objects(render(c, l));
      ASSERT_EQ(objs.size(), 2u);
      EXPECT_EQ(objs[0].shape, shape) << "size " << s << " fill " << objs[0].fill << " offset " << objs[0].offset;
    }
  // Hand-checked feature values: a 6x6 square fills its box; a 6x6 circle is
  // rows 2,4,6,6,4,2 = 24/36; a 6x6 triangle is rows 2,2,4,4,6,6 (24/36) with
  // its centroid at row 76/24 = 3.1667, i.e. (3.1667-2.5)/3 = 0.2222 of the half height below the centre.
  auto feat = [](int shape) {
    Layout l{0, 0, 6, 9, 9, 6};
    return find_objects(render(Caption{0, shape, kLeftOf, 1, 0}, l))[0];
  };
  EXPECT_DOUBLE_EQ(feat(0).fill, 1.0);
  EXPECT_DOUBLE_EQ(feat(1).fill, 24.0 / 36.0);
  EXPECT_DOUBLE_EQ(feat(1).offset, 0.0);
  EXPECT_DOUBLE_EQ(feat(2).fill, 24.0 / 36.0);
  EXPECT_NEAR(feat(2).offset, (76.0 / 24.0 - 2.5) / 3.0, 1e-12);
}

TEST(World, GroundTruthRendersScoreAllAndPerturbedNone) {
  prefopt::Rng rng(7);
  int n = 0, ok = 0, valid = 0;
  int pert_n[kPerturbations] = {0}, pert_match[kPerturbations] = {0};
  for (int i = 0; i < 4000; ++i) {
    const Caption c = random_caption(rng);
    const Image img = render(c, rng);
    const auto r = check(img, c);
    ++n, ok += r.match, valid += r.two_objects;
    int type = -1;
    const Caption p = random_perturbation(c, rng, &type);
    ASSERT_NE(p, c);
    ASSERT_NE(p.c1, p.c2);
    EXPECT_NO_THROW(parse_caption(caption_text(p)));  // a valid caption of the grammar
    ++pert_n[type];
    pert_match[type] += check(img, p).match;
  }
  EXPECT_EQ(ok, n);
  EXPECT_EQ(valid, n);
  for (int p = 0; p < kPerturbations; ++p) {
    EXPECT_GT(pert_n[p], 800) << perturbation_name(p);
    EXPECT_EQ(pert_match[p], 0) << perturbation_name(p);
  }
}

TEST(World, EveryPerturbationTypeChangesWhatItSays) {
  prefopt::Rng rng(3);
  const Caption c{0, 0, kLeftOf, 2, 1};  // a red square left of a blue circle
  EXPECT_EQ(perturb(c, kSwapColours, rng), (Caption{2, 0, kLeftOf, 0, 1}));
  EXPECT_EQ(perturb(c, kFlipRelation, rng), (Caption{0, 0, kRightOf, 2, 1}));
  for (int i = 0; i < 50; ++i) {
    const Caption a = perturb(c, kChangeColour, rng);
    EXPECT_TRUE((a.c1 != c.c1) != (a.c2 != c.c2));
    EXPECT_TRUE(a.c1 != 2 && a.c2 != 0);  // never the other object's colour
    const Caption b = perturb(c, kChangeShape, rng);
    EXPECT_TRUE((b.s1 != c.s1) != (b.s2 != c.s2));
    EXPECT_EQ(b.c1, c.c1);
  }
}

TEST(World, CheckerRejectsNoiseAndBlankImages) {
  Image blank(kImage * kImage * 3, 0.0f);
  const auto r = check(blank, Caption{});
  EXPECT_FALSE(r.two_objects);
  EXPECT_FALSE(r.match);
  // One object only.
  Image one = render(Caption{0, 0, kLeftOf, 1, 0}, Layout{0, 4, 6, 9, 4, 6});
  for (int y = 0; y < kImage; ++y)
    for (int x = 8; x < kImage; ++x)
      for (int k = 0; k < 3; ++k) one[(y * kImage + x) * 3 + k] = 0;
  EXPECT_FALSE(check(one, Caption{0, 0, kLeftOf, 1, 0}).two_objects);
  // Dim pixels quantise to background.
  EXPECT_EQ(quantise(0.3f, 0.1f, 0.1f), -1);
  EXPECT_EQ(quantise(0.8f, 0.1f, 0.1f), 0);
  EXPECT_EQ(quantise(0.8f, 0.7f, 0.1f), 3);
}

TEST(World, PngHasSignatureAndChunks) {
  std::vector<uint8_t> rgb(4 * 2 * 3, 200);
  const auto png = encode_png(rgb, 4, 2);
  ASSERT_GT(png.size(), 8u + 25 + 12 + 12);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(static_cast<unsigned char>(png[19]), 4u);  // width (big-endian low byte)
  EXPECT_EQ(static_cast<unsigned char>(png[23]), 2u);  // height
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
}
