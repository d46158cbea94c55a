// Bad input never crashes: a sweep of malformed model directories (config.json
// and model.safetensors mutated from the shared tiny models), tokenizer files,
// output paths and JSONL rows. Each must give prefopt::Error from the library
// and exit code 2 from the CLI (never a signal, never 0), naming the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "model/config.h"
#include "model/info.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kData = PREFOPT_SHARED_DATA;

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_bad_input_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void write(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << s;
}

// A writable copy of a shared model directory.
std::string copy_model(const std::string& fam, const std::string& dir) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(kData + "/models/" + fam + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
    fs::permissions(dir + "/" + f, fs::perms::owner_read | fs::perms::owner_write);
  }
  return dir;
}

// The result of running the program: exited normally (code) or killed (signal).
struct CliRun {
  bool exited = false;
  int code = -1, signal = 0;
  std::string out, err;
};

std::string describe(const CliRun& r) {
  return r.exited ? "exit " + std::to_string(r.code) + ", stderr: " + r.err
                  : "killed by signal " + std::to_string(r.signal) + ", stderr: " + r.err;
}

// fork + exec (no shell in between, so a signal is seen as a signal).
struct Pending {
  pid_t pid = -1;
  std::string out_path, err_path;
};
Pending spawn_cli(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base = fs::temp_directory_path() / ("prefopt_bad_input_run" + std::to_string(getpid()) + "_" +
                                                        std::to_string(counter++));
  Pending p{-1, base + ".out", base + ".err"};
  std::vector<std::string> argv_s = {prefopt::testing::prefopt_exe()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  p.pid = fork();
  if (p.pid == 0) {
    int o = ::open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0) _exit(127);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return p;
}
CliRun wait_cli(const Pending& p) {
  int st = 0;
  waitpid(p.pid, &st, 0);
  CliRun r;
  r.exited = WIFEXITED(st);
  r.code = r.exited ? WEXITSTATUS(st) : -1;
  r.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  r.out = read_file(p.out_path);
  r.err = read_file(p.err_path);
  fs::remove(p.out_path);
  fs::remove(p.err_path);
  return r;
}
CliRun run_cli(const std::vector<std::string>& args) { return wait_cli(spawn_cli(args)); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// safetensors: 8-byte little-endian length | JSON header | data.
uint64_t header_len(const std::string& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(b[i]);
  return n;
}
std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}
std::string with_header(const std::string& header_text, const std::string& data) {
  return le64(header_text.size()) + header_text + data;
}

using Mutation = std::function<void(const std::string& dir)>;

Mutation config_edit(std::function<void(json&)> fn) {
  return [fn](const std::string& dir) {
    json j = json::parse(read_file(dir + "/config.json"));
    fn(j);
    write(dir + "/config.json", j.dump(2));
  };
}
Mutation config_text(std::string text) {
  return [text](const std::string& dir) { write(dir + "/config.json", text); };
}
// Replaces the raw text `from` (first occurrence) in config.json with `to`.
Mutation config_replace(std::string from, std::string to) {
  return [from, to](const std::string& dir) {
    std::string s = read_file(dir + "/config.json");
    auto p = s.find(from);
    ASSERT_NE(p, std::string::npos) << from;
    s.replace(p, from.size(), to);
    write(dir + "/config.json", s);
  };
}
// Edits the parsed safetensors header; the data section is kept as it is.
Mutation header_edit(std::function<void(json&)> fn) {
  return [fn](const std::string& dir) {
    const std::string p = dir + "/model.safetensors";
    std::string b = read_file(p);
    uint64_t n = header_len(b);
    json h = json::parse(b.substr(8, n));
    fn(h);
    write(p, with_header(h.dump(), b.substr(8 + n)));
  };
}
Mutation bytes_edit(std::function<void(std::string&)> fn) {
  return [fn](const std::string& dir) {
    const std::string p = dir + "/model.safetensors";
    std::string b = read_file(p);
    fn(b);
    write(p, b);
  };
}

struct Case {
  std::string name, family;
  Mutation mutate;
  std::string file;    // the file the error must name, relative to the model dir ("" = the dir)
  std::string needle;  // the key / tensor / fact the message must name
};

std::vector<Case> model_cases() {
  const std::string cfg = "config.json", st = "model.safetensors";
  auto set = [](const char* k, json v) { return config_edit([k, v](json& j) { j[k] = v; }); };
  auto erase = [](const char* k) { return config_edit([k](json& j) { j.erase(k); }); };
  std::vector<Case> c = {
      // config.json: sizes
      {"heads_zero", "llama", set("num_attention_heads", 0), cfg, "\"num_attention_heads\""},
      {"heads_negative", "llama", set("num_attention_heads", -4), cfg, "\"num_attention_heads\""},
      {"hidden_zero", "llama", set("hidden_size", 0), cfg, "\"hidden_size\""},
      {"hidden_not_divisible", "llama", set("hidden_size", 66), cfg, "not divisible by num_attention_heads"},
      {"kv_heads_not_dividing", "llama", set("num_key_value_heads", 3), cfg, "\"num_key_value_heads\": 3 does not divide"},
      {"kv_heads_zero", "qwen2", set("num_key_value_heads", 0), cfg, "\"num_key_value_heads\""},
      {"head_dim_odd", "mistral", set("head_dim", 15), cfg, "head_dim 15 is odd"},
      {"head_dim_zero", "gemma", set("head_dim", 0), cfg, "\"head_dim\""},
      {"vocab_zero", "llama", set("vocab_size", 0), cfg, "\"vocab_size\""},
      {"vocab_negative", "gpt2", set("vocab_size", -512), cfg, "\"vocab_size\""},
      {"intermediate_zero", "llama", set("intermediate_size", 0), cfg, "\"intermediate_size\""},
      {"layers_zero", "qwen2", set("num_hidden_layers", 0), cfg, "\"num_hidden_layers\""},
      {"max_positions_zero", "llama", set("max_position_embeddings", 0), cfg, "\"max_position_embeddings\""},
      {"rms_eps_zero", "llama", set("rms_norm_eps", 0.0), cfg, "\"rms_norm_eps\""},
      {"rms_eps_negative", "gemma2", set("rms_norm_eps", -1e-6), cfg, "\"rms_norm_eps\""},
      {"rope_theta_zero", "llama", set("rope_theta", 0), cfg, "\"rope_theta\""},
      {"rope_theta_negative", "qwen2", set("rope_theta", -10000.0), cfg, "\"rope_theta\""},
      {"gpt2_heads_zero", "gpt2", set("n_head", 0), cfg, "\"n_head\""},
      {"gpt2_embd_not_divisible", "gpt2", set("n_embd", 66), cfg, "\"n_embd\": 66 is not divisible by n_head 4"},
      {"gpt2_ln_eps_zero", "gpt2", set("layer_norm_epsilon", 0.0), cfg, "\"layer_norm_epsilon\""},
      {"gpt2_positions_negative", "gpt2", set("n_positions", -1), cfg, "\"n_positions\""},
      {"gpt2_inner_zero", "gpt2", set("n_inner", 0), cfg, "\"n_inner\""},
      {"sliding_window_negative", "mistral", set("sliding_window", -1), cfg, "\"sliding_window\""},
      {"softcap_negative", "gemma2", set("final_logit_softcapping", -30.0), cfg, "\"final_logit_softcapping\""},
      {"rope_scaling_factor_zero", "llama", set("rope_scaling", json{{"rope_type", "linear"}, {"factor", 0}}), cfg,
       "\"rope_scaling.factor\""},
      {"rope_scaling_llama3_freqs", "llama",
       set("rope_scaling", json{{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 4}, {"high_freq_factor", 4}}),
       cfg, "\"rope_scaling.high_freq_factor\""},
      {"rope_scaling_not_object", "llama", set("rope_scaling", "linear"), cfg, "\"rope_scaling\""},
      {"eos_out_of_vocab", "llama", set("eos_token_id", 320), cfg, "\"eos_token_id\""},
      {"huge_size", "llama", set("intermediate_size", int64_t(1) << 40), cfg, "\"intermediate_size\""},
      // config.json: JSON types
      {"hidden_string", "llama", set("hidden_size", "64"), cfg, "\"hidden_size\": expected an integer"},
      {"hidden_float", "llama", config_replace("\"hidden_size\": 64", "\"hidden_size\": 64.0"), cfg,
       "\"hidden_size\": expected an integer"},
      {"heads_fraction", "llama", set("num_attention_heads", 4.5), cfg, "\"num_attention_heads\": expected an integer"},
      {"layers_bool", "llama", set("num_hidden_layers", true), cfg, "\"num_hidden_layers\": expected an integer"},
      {"vocab_uint64", "llama", config_replace("\"vocab_size\": 320", "\"vocab_size\": 18446744073709551615"), cfg,
       "\"vocab_size\""},
      {"vocab_overflow", "llama", config_replace("\"vocab_size\": 320", "\"vocab_size\": 1e400"), cfg, "config.json"},
      {"eps_string", "gpt2", set("layer_norm_epsilon", "1e-5"), cfg, "\"layer_norm_epsilon\": expected a number"},
      {"tie_string", "qwen2", set("tie_word_embeddings", "yes"), cfg, "\"tie_word_embeddings\": expected true or false"},
      {"missing_hidden", "llama", erase("hidden_size"), cfg, "missing required key \"hidden_size\""},
      // config.json: model_type / architectures / the file itself
      {"unknown_model_type", "llama", set("model_type", "mamba"), cfg, "unknown model_type \"mamba\""},
      {"missing_model_type", "gpt2", erase("model_type"), cfg, "missing required key \"model_type\""},
      {"model_type_number", "llama", set("model_type", 7), cfg, "\"model_type\""},
      {"arch_classifier", "llama", set("architectures", json::array({"LlamaForSequenceClassification"})), cfg,
       "\"architectures\""},
      {"arch_other_family", "llama", set("architectures", json::array({"GPT2LMHeadModel"})), cfg,
       "GPT2LMHeadModel is the class of model_type \"gpt2\""},
      {"arch_not_list", "gemma", set("architectures", "GemmaForCausalLM"), cfg, "\"architectures\""},
      {"config_array", "llama", config_text("[1, 2, 3]"), cfg, "expected a JSON object"},
      {"config_truncated", "llama", config_text("{\"model_type\": \"llama\", \"hidden_"), cfg, "malformed JSON"},
      {"config_empty", "gemma2", config_text(""), cfg, "malformed JSON"},
      {"config_missing", "llama", [](const std::string& d) { fs::remove(d + "/config.json"); }, cfg, "not found"},
      // config.json consistent in itself but not with the weights
      {"tied_false_no_lm_head", "qwen2", set("tie_word_embeddings", false), st, "\"tie_word_embeddings\": true"},
      {"vocab_mismatch", "llama", set("vocab_size", 321), st, "\"model.embed_tokens.weight\" has shape [320, 64], expected [321, 64]"},
      {"head_dim_mismatch", "mistral", set("head_dim", 32), st, "\"model.layers.0.self_attn.q_proj.weight\" has shape [64, 64], expected [128, 64]"},
      {"more_layers", "gpt2", set("n_layer", 3), st, "missing tensor \"transformer.h.2.ln_1.weight\""},
      {"fewer_layers", "gemma2", set("num_hidden_layers", 1), st, "unexpected tensor \"model.layers.1."},
      {"intermediate_mismatch", "gemma", set("intermediate_size", 100), st, "\"model.layers.0.mlp.gate_proj.weight\""},
      // model.safetensors: the file
      {"st_4_bytes", "llama", bytes_edit([](std::string& b) { b.resize(4); }), st, "shorter than the 8-byte header length"},
      {"st_empty", "qwen2", bytes_edit([](std::string& b) { b.clear(); }), st, "shorter than the 8-byte header length"},
      {"st_cut_in_header", "llama", bytes_edit([](std::string& b) { b.resize(100); }), st, "runs past the end of the file"},
      {"st_cut_in_data", "gpt2", bytes_edit([](std::string& b) { b.resize(b.size() / 2); }), st, "past the data section"},
      {"st_length_huge", "llama", bytes_edit([](std::string& b) { b.replace(0, 8, le64(uint64_t(1) << 40)); }), st,
       "runs past the end of the file"},
      {"st_length_all_ones", "gemma", bytes_edit([](std::string& b) { b.replace(0, 8, std::string(8, '\xff')); }), st,
       "runs past the end of the file"},
      {"st_header_not_json", "llama", bytes_edit([](std::string& b) { b[8] = 'x'; }), st, "header is not valid JSON"},
      {"st_header_array", "llama",
       bytes_edit([](std::string& b) { b = with_header("[1,2,3]", b.substr(8 + header_len(b))); }), st,
       "header JSON is not an object"},
      {"st_header_bad_utf8", "mistral", bytes_edit([](std::string& b) {
         auto p = b.find("model.norm.weight");
         b[p] = '\xff';
       }),
       st, "not valid UTF-8"},
      {"st_dtype_unknown", "llama", header_edit([](json& h) { h["model.norm.weight"]["dtype"] = "F99"; }), st,
       "unknown dtype \"F99\""},
      {"st_dtype_int", "llama", header_edit([](json& h) { h["model.norm.weight"]["dtype"] = "I32"; }), st,
       "\"model.norm.weight\" has dtype I32"},
      {"st_shape_negative", "qwen2", header_edit([](json& h) { h["model.norm.weight"]["shape"] = {-64}; }), st,
       "shape entries must be non-negative integers"},
      {"st_shape_float", "llama", header_edit([](json& h) { h["model.norm.weight"]["shape"] = {64.0}; }), st,
       "shape entries must be non-negative integers"},
      {"st_shape_overflow", "llama",
       header_edit([](json& h) { h["model.norm.weight"]["shape"] = {uint64_t(1) << 62, uint64_t(1) << 62}; }), st,
       "absurdly large"},
      {"st_shape_zero_times_huge", "llama",
       header_edit([](json& h) { h["model.norm.weight"]["shape"] = {0, uint64_t(1) << 63}; }), st, "absurdly large"},
      {"st_shape_bytes_mismatch", "gpt2",
       header_edit([](json& h) { h["transformer.ln_f.bias"]["shape"] = {65}; }), st, "needs 260 bytes"},
      {"st_shape_reshaped", "llama",
       header_edit([](json& h) { h["model.layers.0.self_attn.q_proj.weight"]["shape"] = {32, 128}; }), st,
       "\"model.layers.0.self_attn.q_proj.weight\" has shape [32, 128], expected [64, 64]"},
      {"st_offsets_strings", "llama",
       header_edit([](json& h) { h["model.norm.weight"]["data_offsets"] = {"0", "256"}; }), st,
       "data_offsets must be [begin, end] non-negative integers"},
      {"st_offsets_one", "gemma2", header_edit([](json& h) { h["model.norm.weight"]["data_offsets"] = {0}; }), st,
       "\"data_offsets\" must be [begin, end]"},
      {"st_offsets_missing", "llama", header_edit([](json& h) { h["model.norm.weight"].erase("data_offsets"); }), st,
       "\"data_offsets\" must be [begin, end]"},
      {"st_offsets_reversed", "llama",
       header_edit([](json& h) {
         auto o = h["model.norm.weight"]["data_offsets"];
         h["model.norm.weight"]["data_offsets"] = {o[1], o[0]};
       }),
       st, "are reversed"},
      {"st_offsets_outside", "llama",
       header_edit([](json& h) {
         uint64_t end = 0;
         for (auto& [k, v] : h.items())
           if (k != "__metadata__") end = std::max(end, v["data_offsets"][1].get<uint64_t>());
         h["model.norm.weight"]["data_offsets"] = {end, end + 256};
       }),
       st, "past the data section"},
      {"st_overlap", "llama",
       header_edit([](json& h) {
         h["model.layers.0.input_layernorm.weight"]["data_offsets"] =
             h["model.layers.1.input_layernorm.weight"]["data_offsets"];
       }),
       st, "overlap"},
      {"st_missing_tensor", "gpt2", header_edit([](json& h) { h.erase("transformer.h.1.mlp.c_fc.bias"); }), st,
       "missing tensor \"transformer.h.1.mlp.c_fc.bias\""},
      {"st_entry_not_object", "llama", header_edit([](json& h) { h["model.norm.weight"] = 5; }), st,
       "entry is not an object"},
      {"st_metadata_not_strings", "llama", header_edit([](json& h) { h["__metadata__"] = {{"format", 1}}; }), st,
       "__metadata__"},
      {"st_is_directory", "llama",
       [](const std::string& d) {
         fs::remove(d + "/model.safetensors");
         fs::create_directories(d + "/model.safetensors");
       },
       st, "not a regular file"},
      {"st_missing", "qwen2", [](const std::string& d) { fs::remove(d + "/model.safetensors"); }, "",
       "no model.safetensors"},
      {"index_malformed", "llama",
       [](const std::string& d) {
         fs::remove(d + "/model.safetensors");
         write(d + "/model.safetensors.index.json", "{\"weight_map\": ");
       },
       "model.safetensors.index.json", "malformed JSON"},
      {"index_escaping_shard", "llama",
       [](const std::string& d) {
         write(d + "/model.safetensors.index.json",
               json{{"weight_map", {{"model.norm.weight", "../model.safetensors"}}}}.dump());
       },
       "model.safetensors.index.json", "must be a plain file name"},
      {"index_not_object", "llama",
       [](const std::string& d) { write(d + "/model.safetensors.index.json", "[\"model.safetensors\"]"); },
       "model.safetensors.index.json", "\"weight_map\""},
  };
  return c;
}

std::string logprobs_input() {
  static std::string path;
  if (path.empty()) {
    path = tmpdir("ids") + "/ids.jsonl";
    write(path, "{\"input_ids\": [1, 2, 3, 4]}\n");
  }
  return path;
}

}  // namespace

// The unmodified copies load: the sweep's failures come from the mutations.
TEST(BadInput, UnmodifiedCopiesLoad) {
  for (std::string fam : {"llama", "qwen2", "mistral", "gemma", "gemma2", "gpt2"}) {
    const std::string d = copy_model(fam, tmpdir("ok_" + fam));
    EXPECT_EQ(error_of([&] { CausalLM::from_pretrained(d); }), "") << fam;
    EXPECT_EQ(error_of([&] { model_info_json(d); }), "") << fam;
    CliRun r = run_cli({"logprobs", "--model", d, "--input", logprobs_input()});
    EXPECT_TRUE(r.exited && r.code == 0) << fam << ": " << describe(r);
    EXPECT_NE(r.out.find("token_logprobs"), std::string::npos) << fam;
    r = run_cli({"info", d});
    EXPECT_TRUE(r.exited && r.code == 0) << fam << ": " << describe(r);
  }
}

TEST(BadInput, MalformedModelDirectoriesGiveErrorsNamingTheFile) {
  auto cases = model_cases();
  ASSERT_GE(cases.size(), 30u);
  int checked = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string d = copy_model(c.family, tmpdir("case_" + c.name));
    c.mutate(d);
    const std::string file = c.file.empty() ? d : d + "/" + c.file;
    // the library: prefopt::Error naming the file, the key / tensor, and a hint
    for (auto* what : {"from_pretrained", "model_info_json"}) {
      std::string e;
      try {
        if (std::string(what) == "from_pretrained") CausalLM::from_pretrained(d);
        else model_info_json(d);
      } catch (const Error& err) {
        e = err.what();
      } catch (const std::exception& err) {
        ADD_FAILURE() << what << " threw a non-prefopt exception: " << err.what();
        continue;
      }
      EXPECT_NE(e, "") << what << " accepted the malformed directory";
      EXPECT_NE(e.find(file), std::string::npos) << what << ": the message does not name " << file << ":\n" << e;
      EXPECT_NE(e.find(c.needle), std::string::npos) << what << ": no \"" << c.needle << "\" in:\n" << e;
      EXPECT_NE(e.find("HINT"), std::string::npos) << what << ": no HINT in:\n" << e;
    }
    // the program: exit 2 (not a signal, not 0, not an internal error) and the file in stderr
    // both commands at once (the sweep's time is mostly process start-up)
    const std::vector<std::vector<std::string>> commands = {{"logprobs", "--model", d, "--input", logprobs_input()},
                                                            {"info", d}};
    std::vector<Pending> running;
    for (auto& args : commands) running.push_back(spawn_cli(args));
    for (size_t k = 0; k < commands.size(); ++k) {
      const auto& args = commands[k];
      CliRun r = wait_cli(running[k]);
      EXPECT_TRUE(r.exited && r.code == 2) << args[0] << ": " << describe(r);
      EXPECT_NE(r.err.find(file), std::string::npos) << args[0] << ": stderr does not name " << file << ":\n" << r.err;
      EXPECT_NE(r.err.find(c.needle), std::string::npos) << args[0] << ": no \"" << c.needle << "\" in:\n" << r.err;
      EXPECT_EQ(r.out, "") << args[0];
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

// A header length above 100 MB is refused before anything is read (a sparse file).
TEST(BadInput, AbsurdHeaderLengthIsRefused) {
  const std::string d = copy_model("llama", tmpdir("huge_header"));
  const std::string p = d + "/model.safetensors";
  std::string b = read_file(p);
  b.replace(0, 8, le64(uint64_t(150) << 20));
  write(p, b);
  fs::resize_file(p, uint64_t(200) << 20);
  auto e = error_of([&] { CausalLM::from_pretrained(d); });
  EXPECT_NE(e.find("exceeds the 100 MB limit"), std::string::npos) << e;
  EXPECT_NE(e.find(p), std::string::npos) << e;
  CliRun r = run_cli({"info", d});
  EXPECT_TRUE(r.exited && r.code == 2) << describe(r);
  EXPECT_NE(r.err.find("exceeds the 100 MB limit"), std::string::npos) << r.err;
}

// config.json checks in isolation: the bounds are exact (a negative control for each).
TEST(BadInput, ConfigBoundsAreExact) {
  auto base = json::parse(read_file(kData + "/models/llama/config.json"));
  auto parse = [&](const std::function<void(json&)>& fn) {
    json j = base;
    fn(j);
    return error_of([&] { parse_config(j, "cfg.json"); });
  };
  EXPECT_EQ(parse([](json&) {}), "");
  EXPECT_EQ(parse([](json& j) { j["num_key_value_heads"] = 4; }), "");
  EXPECT_EQ(parse([](json& j) { j["num_key_value_heads"] = 1; }), "");
  EXPECT_NE(parse([](json& j) { j["num_key_value_heads"] = 8; }), "");  // more kv heads than heads
  EXPECT_EQ(parse([](json& j) { j["head_dim"] = 32; }), "");            // given head_dim: no divisibility rule
  EXPECT_EQ(parse([](json& j) {
              j["hidden_size"] = 66;
              j["head_dim"] = 16;
            }),
            "");
  EXPECT_EQ(parse([](json& j) { j["pad_token_id"] = -1; }), "");  // old configs: -1 = no pad token
  EXPECT_EQ(parse([](json& j) { j["eos_token_id"] = json::array({1, 2}); }), "");
  EXPECT_NE(parse([](json& j) { j["eos_token_id"] = json::array({1, "2"}); }), "");
  EXPECT_EQ(parse([](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 1},
                                                     {"high_freq_factor", 4}, {"original_max_position_embeddings", 8192}}; }),
            "");
  EXPECT_EQ(parse([](json& j) { j["architectures"] = json::array({"LlamaForCausalLM", "SomethingElse"}); }), "");
  EXPECT_EQ(parse([](json& j) { j.erase("architectures"); }), "");
  // message anatomy: file, key, expected, found, hint
  auto e = parse([](json& j) { j["num_attention_heads"] = 0; });
  EXPECT_NE(e.find("cfg.json: key \"num_attention_heads\": expected a positive integer, found 0"), std::string::npos)
      << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  e = parse([](json& j) { j["hidden_size"] = 64.0; });
  EXPECT_NE(e.find("found 64.0 (a floating-point number)"), std::string::npos) << e;
  // the parsed values are the file's
  ModelConfig c = parse_config(base, "cfg.json");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(expected_tensors(c).size(), 21u);  // the shared llama checkpoint holds 21 tensors
}

// Tokenizer files: truncated / garbled tokenizer.json, tokenizer_config.json of the wrong type.
TEST(BadInput, MalformedTokenizerFilesNameTheFile) {
  const std::string d = copy_model("llama", tmpdir("tok"));
  Tokenizer tok0 = train_bpe({"the cat sat on the mat. the dog ran to the cat!"}, 280, {"<eos>"});
  tok0.save_pretrained(d);
  const std::string tj = d + "/tokenizer.json", tc = d + "/tokenizer_config.json", sm = d + "/special_tokens_map.json";
  const std::string good_tj = read_file(tj), good_tc = read_file(tc);
  EXPECT_EQ(error_of([&] { Tokenizer::load(d); }), "");
  auto garble = [&](const std::function<void(json&)>& fn) {
    json j = json::parse(good_tj);
    fn(j);
    write(tj, j.dump());
  };
  struct TokCase {
    std::string name;
    std::function<void()> mutate;
    std::string file, needle;
  };
  std::vector<TokCase> cases = {
      {"truncated", [&] { write(tj, good_tj.substr(0, good_tj.size() / 2)); }, tj, "not valid JSON"},
      {"empty", [&] { write(tj, ""); }, tj, "not valid JSON"},
      {"array", [&] { write(tj, "[]"); }, tj, "expected a JSON object"},
      {"vocab_array", [&] { garble([](json& j) { j["model"]["vocab"] = json::array({"a", "b"}); }); }, tj,
       "\"model.vocab\" must be an object"},
      {"vocab_negative_id", [&] { garble([](json& j) { j["model"]["vocab"]["zzz"] = -5; }); }, tj,
       "expected a token id"},
      {"vocab_string_id", [&] { garble([](json& j) { j["model"]["vocab"]["zzz"] = "7"; }); }, tj, "expected a token id"},
      {"merges_object", [&] { garble([](json& j) { j["model"]["merges"] = json::object(); }); }, tj,
       "\"model.merges\" must be an array"},
      {"merge_number", [&] { garble([](json& j) { j["model"]["merges"][0] = 5; }); }, tj, "unexpected structure"},
      {"added_negative_id", [&] {
         garble([](json& j) { j["added_tokens"] = json::array({{{"id", -3}, {"content", "<x>"}}}); });
       },
       tj, "\"id\" must be a token id"},
      {"pre_tokenizer_garbled", [&] {
         garble([](json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", 5}}; });
       },
       tj, tj},
      {"config_array", [&] { write(tc, "[1, 2]"); }, tc, "expected a JSON object, found array"},
      {"config_string", [&] { write(tc, "\"tokenizer\""); }, tc, "expected a JSON object, found string"},
      {"config_truncated", [&] { write(tc, good_tc.substr(0, good_tc.size() / 2)); }, tc, "not valid JSON"},
      {"config_bad_decoder_key", [&] {
         write(tc, json{{"added_tokens_decoder", {{"abc", {{"content", "<x>"}}}}}}.dump());
       },
       tc, "added_tokens_decoder key \"abc\""},
      {"config_class_number", [&] { write(tc, json{{"tokenizer_class", 5}}.dump()); }, tc, "unexpected structure"},
      {"special_map_number", [&] { write(sm, "42"); }, sm, "expected a JSON object, found number"},
  };
  const std::string text_file = d + "/text.jsonl";
  write(text_file, "{\"text\": \"the cat\"}\n");
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    write(tj, good_tj);
    write(tc, good_tc);
    tok0.save_pretrained(d);
    c.mutate();
    std::string e;
    try {
      Tokenizer::load(d);
    } catch (const Error& err) {
      e = err.what();
    } catch (const std::exception& err) {
      ADD_FAILURE() << "non-prefopt exception: " << err.what();
      continue;
    }
    EXPECT_NE(e.find(c.file), std::string::npos) << e;
    EXPECT_NE(e.find(c.needle), std::string::npos) << e;
    CliRun r = run_cli({"tokenize", "--tokenizer", d, "--input", text_file});
    EXPECT_TRUE(r.exited && r.code == 2) << describe(r);
    EXPECT_NE(r.err.find(c.file), std::string::npos) << r.err;
  }
}

// Output paths that cannot be written: exit 2, and nothing half-written.
TEST(BadInput, UnwritableOutputPaths) {
  const std::string d = tmpdir("outputs");
  const std::string model = copy_model("llama", d + "/model");
  const std::string data = d + "/dpo.jsonl";
  write(data, "{\"prompt_input_ids\": [1, 2, 3], \"chosen_input_ids\": [4, 5], \"rejected_input_ids\": [6, 7]}\n"
              "{\"prompt_input_ids\": [1, 2], \"chosen_input_ids\": [8, 9], \"rejected_input_ids\": [10, 11]}\n");
  const std::string a_file = d + "/a_file";
  write(a_file, "keep me\n");
  for (const std::string& out : {a_file, a_file + "/sub"}) {
    SCOPED_TRACE(out);
    CliRun r = run_cli({"train", "--method", "dpo", "--model", model, "--data", data, "--output_dir", out, "--max_steps",
                     "1", "--per_device_train_batch_size", "2"});
    EXPECT_TRUE(r.exited && r.code == 2) << describe(r);
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
    EXPECT_EQ(read_file(a_file), "keep me\n");
  }
  // generate --output: a directory, and a path below a regular file
  Tokenizer tok = train_bpe({"the cat sat on the mat. the dog ran to the cat!"}, 280, {"<eos>"});
  tok.save_pretrained(model);
  const std::string prompts = d + "/prompts.jsonl";
  write(prompts, "{\"prompt\": \"the cat\"}\n");
  const std::string out_dir = d + "/out_dir";
  fs::create_directories(out_dir);
  for (const std::string& out : {out_dir, a_file + "/out.jsonl"}) {
    SCOPED_TRACE(out);
    CliRun r = run_cli({"generate", "--model", model, "--prompts", prompts, "--n", "1", "--max-new-tokens", "2",
                     "--chat-template", "plain", "--output", out});
    EXPECT_TRUE(r.exited && r.code == 2) << describe(r);
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
  }
  EXPECT_TRUE(fs::is_empty(out_dir));
  EXPECT_EQ(read_file(a_file), "keep me\n");
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++entries;
  EXPECT_EQ(entries, 5u) << "a temp file was left behind in " << d;  // model, dpo.jsonl, a_file, prompts, out_dir
}

// Malformed JSONL rows for grade and passk: exit 2 naming file:line.
TEST(BadInput, MalformedJsonlRowsNameFileAndLine) {
  const std::string d = tmpdir("jsonl");
  struct JCase {
    std::vector<std::string> args;
    std::string file, content, where;
  };
  const std::string g = d + "/grade.jsonl", p = d + "/passk.jsonl";
  std::vector<JCase> cases = {
      {{"grade", "--kind", "gsm8k", "--input", g}, g,
       "{\"prediction\": \"#### 4\", \"answer\": \"4\"}\n{\"prediction\": \"#### 4\", \"answer\": \n", g + ":2"},
      {{"grade", "--kind", "math", "--input", g}, g,
       "{\"prediction\": \"\\\\boxed{4}\", \"answer\": \"4\"}\n[1, 2]\n", g + ":2"},
      {{"grade", "--kind", "gsm8k", "--input", g}, g,
       "{\"prediction\": \"#### 4\", \"answer\": \"4\"}\n\n{\"prediction\": 5, \"answer\": \"4\"}\n", g + ":3"},
      {{"passk", p, "--out", ""}, p,
       "{\"task_id\": \"a\", \"passed\": true}\n{\"task_id\": \"a\", \"passed\": tru\n", p + ":2"},
      {{"passk", p, "--out", ""}, p, "{\"task_id\": \"a\", \"passed\": true}\n{\"task_id\": \"a\"}\n", p + ":2"},
      {{"passk", p, "--out", ""}, p,
       "{\"task_id\": \"a\", \"passed\": true}\n{\"task_id\": \"a\", \"passed\": true}\n{\"passed\": \"yes\", \"task_id\": 3}\n",
       p + ":3"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.content);
    write(c.file, c.content);
    CliRun r = run_cli(c.args);
    EXPECT_TRUE(r.exited && r.code == 2) << describe(r);
    EXPECT_NE(r.err.find(c.where), std::string::npos) << r.err;
  }
}
