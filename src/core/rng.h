// prefopt core: a portable PRNG (identical sequences with every standard
// library and compiler) and a Fisher-Yates shuffle over it. std::shuffle and
// std::uniform_*_distribution differ between standard libraries: never use
// them where results must reproduce.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace prefopt {

// xoshiro256** seeded by splitmix64. State is 4 words, saved in checkpoints.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  // Uniform integer in [0, n) without modulo bias.
  uint64_t below(uint64_t n);
  // Uniform double in [0, 1) with 53 random bits.
  double uniform();
  std::vector<uint64_t> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::vector<uint64_t>& s);

 private:
  uint64_t s_[4];
};

template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(rng.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace prefopt
