// Data files in the layouts users have: one JSON array instead of JSONL, LLaMA-Factory's
// sharegpt / alpaca / KTO rows (checked against the TRL files derived from the same
// demo data), and the per-token loss masks of pre-tokenized rows read back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "data/dataset.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kData = PREFOPT_SHARED_DATA;

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_formats_" + name + "." + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_same_rows(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.rows.size(), b.rows.size());
  for (size_t i = 0; i < a.rows.size(); ++i) {
    EXPECT_EQ(a.rows[i].prompt, b.rows[i].prompt) << i;
    EXPECT_EQ(a.rows[i].label, b.rows[i].label) << i;
    ASSERT_EQ(a.rows[i].completions.size(), b.rows[i].completions.size());
    for (size_t k = 0; k < a.rows[i].completions.size(); ++k) {
      EXPECT_EQ(a.rows[i].completions[k].ids, b.rows[i].completions[k].ids) << i << "/" << k;
      EXPECT_EQ(a.rows[i].completions[k].mask, b.rows[i].completions[k].mask) << i << "/" << k;
    }
  }
}

struct Qwen {
  Tokenizer tok = Tokenizer::load(kData + "/tokenizers/qwen2");
  ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);  // its tokenizer_config.json's Jinja template
};

}  // namespace

TEST(Formats, LlamaFactoryDpoEqualsTrlDerivedFile) {
  Qwen q;
  DataOptions o;
  o.max_length = 4096, o.max_prompt_length = 4096;
  Dataset lf = load_dataset(kData + "/preference/llamafactory_dpo_en_demo.json", DataKind::Paired, &q.tok, &q.tmpl, o);
  Dataset trl = load_dataset(kData + "/preference/dpo_en_demo.trl.jsonl", DataKind::Paired, &q.tok, &q.tmpl, o);
  EXPECT_EQ(lf.rows.size() + lf.skipped, 300u);
  expect_same_rows(lf, trl);
  // The system turns of the sharegpt file made it into the prompts.
  EXPECT_EQ(q.tmpl.format(), ChatFormat::Jinja);
}

TEST(Formats, LlamaFactoryKtoEqualsTrlDerivedFile) {
  Qwen q;
  DataOptions o;
  o.max_length = 4096, o.max_prompt_length = 4096;
  Dataset lf = load_dataset(kData + "/preference/llamafactory_kto_en_demo.json", DataKind::Unpaired, &q.tok, &q.tmpl, o);
  Dataset trl = load_dataset(kData + "/preference/kto_en_demo.trl.jsonl", DataKind::Unpaired, &q.tok, &q.tmpl, o);
  EXPECT_EQ(lf.rows.size() + lf.skipped, 300u);
  size_t pos = 0;
  for (auto& r : lf.rows) pos += r.label == 1;
  EXPECT_EQ(pos, 150u);  // 150 true / 150 false (MANIFEST)
  expect_same_rows(lf, trl);
}

TEST(Formats, AlpacaAndSharegptRowsMapToTrlRows) {
  Qwen q;
  const std::string d = tmpdir("alpaca");
  write(d + "/lf.json", R"([
  {"instruction": "Add", "input": "2+2", "system": "Be brief.", "history": [["hi", "hello"]],
   "chosen": "4", "rejected": "5"},
  {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "q"},
                     {"from": "function_call", "value": "{\"name\": \"f\"}"}, {"from": "observation", "value": "42"},
                     {"from": "human", "value": "and?"}],
   "chosen": {"from": "gpt", "value": "yes"}, "rejected": {"from": "gpt", "value": "no"}}
])");
  json trl1 = {{"prompt",
                {{{"role", "system"}, {"content", "Be brief."}},
                 {{"role", "user"}, {"content", "hi"}},
                 {{"role", "assistant"}, {"content", "hello"}},
                 {{"role", "user"}, {"content", "Add\n2+2"}}}},
               {"chosen", {{{"role", "assistant"}, {"content", "4"}}}},
               {"rejected", {{{"role", "assistant"}, {"content", "5"}}}}};
  json trl2 = {{"prompt",
                {{{"role", "system"}, {"content", "S"}},
                 {{"role", "user"}, {"content", "q"}},
                 {{"role", "assistant"}, {"content", "{\"name\": \"f\"}"}},
                 {{"role", "tool"}, {"content", "42"}},
                 {{"role", "user"}, {"content", "and?"}}}},
               {"chosen", {{{"role", "assistant"}, {"content", "yes"}}}},
               {"rejected", {{{"role", "assistant"}, {"content", "no"}}}}};
  write_jsonl(d + "/trl.jsonl", {trl1, trl2});
  DataOptions o;
  expect_same_rows(load_dataset(d + "/lf.json", DataKind::Paired, &q.tok, &q.tmpl, o),
                   load_dataset(d + "/trl.jsonl", DataKind::Paired, &q.tok, &q.tmpl, o));
  // An unknown speaker names the element's line (the second element starts on line 4).
  write(d + "/bad.json", "[\n {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}], \"chosen\": \"a\", \"rejected\": \"b\"},\n\n"
                         " {\"conversations\": [{\"from\": \"robot\", \"value\": \"q\"}], \"chosen\": \"a\", \"rejected\": \"b\"}\n]\n");
  std::string e = error_of([&] { load_dataset(d + "/bad.json", DataKind::Paired, &q.tok, &q.tmpl, o); });
  EXPECT_NE(e.find("bad.json:4"), std::string::npos) << e;
  EXPECT_NE(e.find("robot"), std::string::npos) << e;
}

TEST(Formats, JsonArrayEqualsJsonlWithElementLines) {
  const std::string d = tmpdir("array");
  std::vector<json> rows;
  for (int i = 0; i < 5; ++i)
    rows.push_back({{"prompt_input_ids", {1, 2, 3 + i}}, {"chosen_input_ids", {4, 5}}, {"rejected_input_ids", {6 + i}}});
  write_jsonl(d + "/a.jsonl", rows);
  std::string arr = "\xEF\xBB\xBF[\n";  // with a byte-order mark, as some editors write
  for (size_t i = 0; i < rows.size(); ++i) arr += "  " + rows[i].dump(2) + (i + 1 < rows.size() ? ",\n" : "\n");
  arr += "]\n";
  write(d + "/a.json", arr);
  DataOptions o;
  Dataset a = load_dataset(d + "/a.json", DataKind::Paired, nullptr, nullptr, o, 320);
  Dataset b = load_dataset(d + "/a.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  expect_same_rows(a, b);
  // Each element's line is where it starts: element k starts on line 2 + k * (lines per element).
  const std::string first = rows[0].dump(2);
  const size_t per = std::count(first.begin(), first.end(), '\n') + 1;
  for (size_t k = 0; k < a.rows.size(); ++k) EXPECT_EQ(a.rows[k].line, 2 + k * per) << k;
  std::vector<size_t> lines;
  for_each_jsonl(d + "/a.json", [&](const json&, size_t l) { lines.push_back(l); });
  EXPECT_EQ(lines.size(), 5u);
  // Malformed arrays: unclosed, trailing text, empty element, bad JSON inside, an element
  // with a bad field — each an Error naming the file and the line.
  struct Bad {
    std::string text, want;
  } bad[] = {{"[\n{\"a\": 1},\n{\"a\": 2}\n", "not closed"},
             {"[{\"a\": 1}]\n{\"b\": 2}\n", ":2: text after the end"},
             {"[\n{\"a\": 1},\n,\n{\"a\": 2}]", ":3: empty element"},
             {"[\n{\"a\": 1},\n{\"a\": tru}\n]", ":3: malformed JSON"},
             {"[\n{\"a\": 1e400}\n]", ":2: unreadable JSON value"},
             {"[\n\"text\", \"more\"\n]", ":2: expected a JSON object"}};
  for (auto& x : bad) {
    write(d + "/bad.json", x.text);
    std::string e = error_of([&] { read_jsonl(d + "/bad.json"); });
    if (x.want.find("expected a JSON object") != std::string::npos)
      e = error_of([&] { load_dataset(d + "/bad.json", DataKind::Paired, nullptr, nullptr, o, 320); });
    EXPECT_NE(e.find("bad.json"), std::string::npos) << x.text << " -> " << e;
    EXPECT_NE(e.find(x.want), std::string::npos) << x.text << " -> " << e;
  }
  // JSONL: a number out of double range is a user error naming the line, not a crash.
  write(d + "/big.jsonl", "{\"a\": 1}\n{\"a\": 1e400}\n");
  std::string e = error_of([&] { read_jsonl(d + "/big.jsonl"); });
  EXPECT_NE(e.find("big.jsonl:2"), std::string::npos) << e;
}

TEST(Formats, LossMasksOfPretokenizedRowsAreReadBack) {
  const std::string d = tmpdir("masks");
  json paired = {{"prompt_input_ids", {1, 2}},
                 {"chosen_input_ids", {3, 4, 5, 6}},
                 {"chosen_loss_mask", {1, 0, 0, 1}},  // a tool observation in the middle
                 {"rejected_input_ids", {7, 8}},
                 {"rejected_loss_mask", {true, false}}};
  json unpaired = {{"prompt_input_ids", {1}}, {"completion_input_ids", {3, 4, 5}},
                   {"completion_loss_mask", {0, 1, 1}}, {"label", true}};
  json nomask = {{"prompt_input_ids", {1}}, {"chosen_input_ids", {3, 4}}, {"rejected_input_ids", {5}}};
  write_jsonl(d + "/p.jsonl", {paired, nomask});
  write_jsonl(d + "/u.jsonl", {unpaired});
  DataOptions o;
  Dataset p = load_dataset(d + "/p.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0].completions[0].mask, (std::vector<uint8_t>{1, 0, 0, 1}));
  EXPECT_EQ(p.rows[0].completions[1].mask, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(p.rows[1].completions[0].mask, (std::vector<uint8_t>{1, 1}));  // no field: every token scored
  Dataset u = load_dataset(d + "/u.jsonl", DataKind::Unpaired, nullptr, nullptr, o, 320);
  EXPECT_EQ(u.rows[0].completions[0].mask, (std::vector<uint8_t>{0, 1, 1}));
  // Wrong length, a value that is not 0/1: errors naming line and field.
  json wrong = paired;
  wrong["chosen_loss_mask"] = {1, 0};
  json two = paired;
  two["rejected_loss_mask"] = {1, 2};
  write_jsonl(d + "/w.jsonl", {paired, wrong});
  std::string e = error_of([&] { load_dataset(d + "/w.jsonl", DataKind::Paired, nullptr, nullptr, o, 320); });
  EXPECT_NE(e.find("w.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("chosen_loss_mask"), std::string::npos) << e;
  write_jsonl(d + "/t.jsonl", {two});
  e = error_of([&] { load_dataset(d + "/t.jsonl", DataKind::Paired, nullptr, nullptr, o, 320); });
  EXPECT_NE(e.find("t.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("rejected_loss_mask"), std::string::npos) << e;
  // A completion whose mask scores nothing is a counted skip, as after truncation.
  json none = paired;
  none["rejected_loss_mask"] = {0, 0};
  write_jsonl(d + "/n.jsonl", {paired, none});
  Dataset n = load_dataset(d + "/n.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  EXPECT_EQ(n.rows.size(), 1u);
  EXPECT_EQ(n.skipped, 1u);
}
