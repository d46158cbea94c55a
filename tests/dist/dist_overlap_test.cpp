// The gradients' all-reduce overlapped with the last backward pass of a step
// (ddp_overlap, buckets of ddp_bucket_cap_mb): with buckets small enough that
// the tiny model's gradients fill several, and accumulation 2 (so a bucket
// must wait for the accumulated gradient, not the last micro-batch's), 2
// ranks give exactly the bits of the all-reduce after backward, and the
// trajectory of 1 rank accumulating the same global batch.
#include "dist/dist_common.h"

#include <regex>

using namespace prefopt;
using namespace prefopt::disttest;

namespace {

std::string args(const std::string& model, const std::string& data, const std::string& out, int accumulation,
                 const std::string& extra) {
  return "train --method dpo --model " + model + " --data " + data + " --output_dir " + out +
         " --per_device_train_batch_size 3 --gradient_accumulation_steps " + std::to_string(accumulation) +
         " --max_steps 4 --learning_rate 1e-3 --logging_steps 1 --save_steps 0 --seed 5 --ddp_timeout 120 " + extra;
}

// The bucket count rank 0 reported.
int buckets_in(const std::string& log) {
  std::smatch m;
  const std::regex re("gradients in ([0-9]+) bucket");
  return std::regex_search(log, m, re) ? std::stoi(m[1]) : -1;
}

}  // namespace

TEST(DistOverlap, OverlappedBucketsEqualAllReduceAfterBackwardBitForBit) {
  const std::string d = tmpdir("overlap");
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 13);
  const std::string small = "--ddp_bucket_cap_mb 0.01";  // 10 KiB: several buckets for the tiny model
  ASSERT_EQ(run_torchrun(2, args(model, data, d + "/on", 2, small + " --ddp_overlap true"), d + "/on.log"), 0)
      << ranks_log(d + "/on.log");
  ASSERT_EQ(run_torchrun(2, args(model, data, d + "/off", 2, small + " --ddp_overlap false"), d + "/off.log"), 0)
      << ranks_log(d + "/off.log");
  ASSERT_EQ(run_one(args(model, data, d + "/one", 4, ""), d + "/one.log"), 0) << read_text(d + "/one.log");
  const std::string on_log = ranks_log(d + "/on.log"), off_log = ranks_log(d + "/off.log");
  // 2 x 32 x 64 embedding and head (8 KiB each), 2 layers of 4 + 2 + 4 + 3 x 8 KiB: at least 7 buckets.
  EXPECT_GE(buckets_in(on_log), 7) << on_log;
  EXPECT_EQ(buckets_in(on_log), buckets_in(off_log));
  EXPECT_NE(on_log.find("during the last backward pass"), std::string::npos) << on_log;
  EXPECT_NE(off_log.find("after backward"), std::string::npos) << off_log;
  // Overlap on: every bucket of the 4 steps starts from the hooks, during backward (the last one when the
  // embedding's gradient, the last to be final, is in); off: none.
  const int B = buckets_in(on_log);
  const std::string want = std::to_string(4 * B) + " of " + std::to_string(4 * B) + " bucket all-reduces started";
  EXPECT_NE(on_log.find(want), std::string::npos) << want << "\n" << on_log;
  EXPECT_NE(off_log.find("0 of " + std::to_string(4 * B) + " bucket all-reduces started"), std::string::npos) << off_log;
  RunOut on = read_run(d + "/on"), off = read_run(d + "/off"), one = read_run(d + "/one");
  expect_same_run(on, off, 0.0);  // the same bits
  EXPECT_EQ(max_weight_diff(on, off), 0.0);
  expect_same_run(on, one, 1e-5);  // and the global batch's gradient
}

// The bucket cap is validated like every key.
TEST(DistOverlap, BucketCapMustBePositive) {
  const std::string d = tmpdir("cap");
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 8, 1);
  EXPECT_EQ(run_one(args(model, data, d + "/out", 1, "--ddp_bucket_cap_mb 0"), d + "/log"), 2);
  EXPECT_NE(read_text(d + "/log").find("ddp_bucket_cap_mb"), std::string::npos) << read_text(d + "/log");
}
