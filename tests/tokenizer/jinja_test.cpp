// Jinja engine: (1) the 72 shared chat-template vectors (../shared/data/chat_templates, rendered
// by Jinja2 the transformers way), count asserted; (2) small templates and two full chat
// templates written here (a Llama-3.1-style template with the "Cutting Knowledge Date" system
// block and tool calls, a Qwen2.5-style template with <tool_call> blocks), each compared byte
// for byte with Jinja2 run as an oracle (python3 tests/tokenizer/jinja_oracle.py, the same
// environment as transformers); (3) hand-checked values that need no oracle.
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/jinja.h"

using namespace prefopt;
using oj = nlohmann::ordered_json;

static const std::string kVectors = PREFOPT_SHARED_DATA "/chat_templates/vectors.jsonl";

static std::string oracle_script() { return std::string(PREFOPT_SOURCE_DIR) + "/tests/tokenizer/jinja_oracle.py"; }

// strftime_now fixed at 2026-07-26 00:00:00 (a Sunday), as the vectors and the oracle.
static jinja::Options fixed_clock() {
  jinja::Options o;
  o.strftime_now = [](const std::string& fmt) {
    std::tm tm{};
    tm.tm_year = 2026 - 1900, tm.tm_mon = 6, tm.tm_mday = 26, tm.tm_wday = 0, tm.tm_yday = 206;
    char buf[256];
    size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    return std::string(buf, n);
  };
  return o;
}

struct Outcome {
  bool error = false;
  std::string text;  // or the error kind
};

static Outcome ours(const std::string& tmpl, const oj& vars) {
  try {
    return {false, jinja::Template(tmpl).render(vars, fixed_clock()).text};
  } catch (const jinja::RenderError& e) {
    return {true, e.kind()};
  } catch (const Error& e) {
    return {true, std::string("Error: ") + e.what()};
  }
}

// Renders every case with Jinja2; empty when python3 + jinja2 are unavailable.
static std::vector<Outcome> oracle(const std::vector<std::pair<std::string, oj>>& cases) {
  if (std::system("python3 -c 'import jinja2' >/dev/null 2>&1") != 0) return {};
  std::string dir = "/tmp/prefopt_jinja_test_" + std::to_string(getpid());
  make_dirs(dir);
  oj arr = oj::array();
  for (auto& [t, v] : cases) arr.push_back({{"template", t}, {"vars", v}});
  atomic_write(dir + "/cases.json", arr.dump());
  std::string cmd = "python3 " + oracle_script() + " " + dir + "/cases.json > " + dir + "/out.json";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  oj res = oj::parse(read_file(dir + "/out.json"));
  std::vector<Outcome> out;
  for (auto& r : res)
    out.push_back(r.contains("error") ? Outcome{true, r["error"].get<std::string>()}
                                      : Outcome{false, r["text"].get<std::string>()});
  std::remove((dir + "/cases.json").c_str());
  std::remove((dir + "/out.json").c_str());
  rmdir(dir.c_str());
  return out;
}

static void check_against_oracle(const std::vector<std::pair<std::string, oj>>& cases, size_t min_errors) {
  auto want = oracle(cases);
  if (want.empty()) GTEST_SKIP() << "python3 with jinja2 (Debian python3-jinja2) is needed as the oracle";
  ASSERT_EQ(want.size(), cases.size());
  size_t errors = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    Outcome got = ours(cases[i].first, cases[i].second);
    errors += want[i].error;
    if (want[i].error) {
      EXPECT_TRUE(got.error) << "case " << i << ": Jinja2 fails (" << want[i].text << ") but we render "
                             << oj(got.text).dump() << "\n template: " << cases[i].first;
      if (got.error && got.text.rfind("Error: ", 0) != 0 && want[i].text != "TemplateError") {
        // engine errors: the same kind of failure (undefined vs type vs syntax)
        EXPECT_TRUE(got.text == want[i].text || (want[i].text == "TemplateSyntaxError" && got.text.rfind("Error", 0) == 0))
            << "case " << i << ": " << got.text << " vs " << want[i].text;
      }
      if (want[i].text == "TemplateError") EXPECT_EQ(got.text, "TemplateError") << "case " << i;
    } else {
      EXPECT_FALSE(got.error) << "case " << i << ": " << got.text << "\n template: " << cases[i].first;
      EXPECT_EQ(got.text, want[i].text) << "case " << i << "\n template: " << cases[i].first;
    }
  }
  EXPECT_GE(errors, min_errors);  // the error cases really are errors for Jinja2
}

TEST(Jinja, SharedVectorsAll72) {
  std::ifstream f(kVectors);
  ASSERT_TRUE(f.good()) << kVectors;
  std::string line;
  size_t n = 0, errors = 0, passed = 0;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    oj v = oj::parse(line);
    ++n;
    oj vars = oj::object();
    for (auto& [k, x] : v["special_tokens"].items()) vars[k] = x;
    for (auto& [k, x] : v["kwargs"].items()) vars[k] = x;
    vars["messages"] = v["messages"];
    vars["tools"] = v["tools"];
    vars["documents"] = nullptr;
    vars["add_generation_prompt"] = v["add_generation_prompt"];
    std::string id = v["template_id"].get<std::string>() + "/" + v["case_id"].get<std::string>();
    Outcome got = ours(v["template"].get<std::string>(), vars);
    if (v["error"].get<bool>()) {
      ++errors;
      EXPECT_TRUE(got.error) << id << " renders " << oj(got.text).dump() << " but must fail: " << v["message"];
      std::string msg = v["message"].get<std::string>();
      std::string kind = msg.substr(0, msg.find(':'));
      EXPECT_EQ(got.text, kind) << id;
      passed += got.error && got.text == kind;
    } else {
      EXPECT_FALSE(got.error) << id << ": " << got.text;
      EXPECT_EQ(got.text, v["expected"].get<std::string>()) << id;
      passed += !got.error && got.text == v["expected"].get<std::string>();
    }
  }
  EXPECT_EQ(n, 72u);
  EXPECT_EQ(errors, 19u);
  EXPECT_EQ(passed, 72u);
}

// Small templates: each feature against Jinja2.
TEST(Jinja, OracleSmallTemplates) {
  oj msgs = oj::parse(R"([{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": "Hi “there” é 😀"},
                          {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}])");
  oj d = oj::parse(R"({"b": 1, "a": [1, 2.5, "x", null, true], "c": {"z": "<&>'\"", "y": "é\n\t"}})");
  oj base = {{"messages", msgs}, {"d", d}, {"n", 7}, {"f", 2.5}, {"s", "  Hello World  "}, {"empty", ""},
             {"nothing", nullptr}, {"flag", true}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
  std::vector<std::pair<std::string, oj>> c = {
      // whitespace control, trim_blocks, lstrip_blocks
      {"a\n  {% if true %}\n  b\n  {% endif %}\nc\n", base},
      {"a  {%- if true -%}  b  {%- endif -%}  c", base},
      {"x {{- ' y ' -}} z\n{{ 'w' }}  \n  {# c #}\n  v", base},
      {"{% for m in messages %}\n    {{ m.role }}\n{% endfor %}\n", base},
      {"  {%+ if true %}k{% endif +%}\nq", base},
      {"{% raw %}{{ not rendered }}{% endraw %}\n{{ n }}", base},
      {"line1\n{{ n }}\n{% if n %}\n\n{% endif %}\nend\n\n", base},
      // loops
      {"{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.length }}"
       "{{ '|first' if loop.first }}{{ '|last' if loop.last }};{% endfor %}", base},
      {"{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content }}{{ ',' if not loop.last }}{% endfor %}", base},
      {"{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}", base},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", base},
      {"{% for x in [] %}x{% else %}empty{% endfor %}{% for x in nothing_here %}y{% endfor %}", base},
      {"{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }}{{ loop.cycle('-', '+') }}{% endfor %}", base},
      {"{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined }}>{{ loop.nextitem.role if loop.nextitem is defined else 'END' }} {% endfor %}", base},
      // set, scoping, namespace
      {"{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", base},
      {"{% set ns = namespace(total=0, seen=false) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% set ns.seen = true %}{% endfor %}{{ ns.total }} {{ ns.seen }}", base},
      {"{% set block %}  inner {{ n }}\n{% endset %}[{{ block }}]{% set a, b = 1, 'two' %}{{ a }}{{ b }}", base},
      {"{% set sys = messages[0].content | trim %}{% set rest = messages[1:] %}{{ sys }}|{{ rest | length }}|{{ rest[-1].content }}", base},
      // macros
      {"{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(name='C', punct='.') }}", base},
      {"{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:{{ render(x) }},{% endfor %}{% elif v is string %}'{{ v }}'{% elif v is iterable %}[{% for x in v %}{{ render(x) }}{% endfor %}]{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(d) }}", base},
      // literals, slicing, operators
      {"{{ [1, 2, 3][::-1] }} {{ 'hello'[1:3] }} {{ 'hello'[-1] }} {{ messages[::2] | map(attribute='role') | join(',') }} {{ (1, 'a') }} {{ {'k': [1, {'j': none}]} }}", base},
      {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0 }} {{ 3 * 'ab' }}", base},
      {"{{ 1 < 2 < 3 }} {{ 'a' in 'cat' }} {{ 'x' not in d }} {{ 'b' in d }} {{ 2 in [1, 2] }} {{ none is none }} {{ n == 7.0 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ 'a' < 'b' }}", base},
      {"{{ 'a' ~ 1 ~ none ~ true ~ undefined_thing ~ 2.0 }}|{{ 'x' + 'y' }}|{{ [1] + [2] }}|{{ n ~ '' }}", base},
      {"{{ 'yes' if flag else 'no' }} {{ 'y' if not flag else 'n' }} {{ 'a' if false }}| {{ flag and 'both' }} {{ empty or 'fallback' }} {{ nothing or 0 }}", base},
      {"{{ -n }} {{ -f }} {{ not n }} {{ not empty }} {{ n is divisibleby 7 }} {{ n is divisibleby(3) }} {{ n is even }} {{ -n|abs }}", base},
      // python string methods
      {"{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}", base},
      {"{{ s.startswith('  He') }} {{ s.endswith('d') }} {{ 'abc'.startswith(('x', 'a')) }} {{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ s.lower() }} {{ s.upper() }} {{ 'hello wORLD'.title() }} {{ 'hello WORLD'.capitalize() }}", base},
      {"{{ 'a-b-c'.rsplit('-', 1) }} {{ 'x\\ny\\n'.splitlines() }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('bc') }} {{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format(1, 'two') }} {{ 'abc'.upper().lower() }}", base},
      {"{{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list | length }} {{ d['c']['z'] }} {{ d.c.y | length }}", base},
      // filters
      {"{{ s | trim }}|{{ s | length }}|{{ messages | count }}|{{ s | upper }}|{{ s | lower }}|{{ 'hello' | capitalize }}|{{ 'a b' | title }}|{{ s | replace('o', '0') }}|{{ 'é😀x' | length }}", base},
      {"{{ messages | first | tojson }}|{{ (messages | last).content }}|{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) | join('') }}|{{ ['b', 'A', 'a'] | unique | list }}|{{ [1, 2, 3] | sum }}|{{ [4, 9] | max }}|{{ 'abc' | list }}", base},
      {"{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' / ') }}|{{ messages | rejectattr('role', 'eq', 'user') | list | length }}|{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}", base},
      {"{{ messages | selectattr('name', 'defined') | list | length }} {{ messages | selectattr('content') | list | length }} {{ [' a ', 'b '] | map('trim') | join(',') }} {{ ['a', 'b'] | map('upper') | list }}", base},
      {"{{ nothing_here | default('dflt') }} {{ empty | default('dflt') }} {{ empty | default('dflt', true) }} {{ empty | d('x', boolean=true) }} {{ nothing | default('n') }}", base},
      {"{{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'abc' | int }} {{ 'abc' | int(5) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 3 | float }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 7 | round }}", base},
      {"{{ d | tojson }}\n{{ d | tojson(indent=2) }}\n{{ msgs_missing | default([]) | tojson }}\n{{ 'é\\u0001\"' | tojson }}\n{{ [1.0, 1e-7, 3] | tojson(indent=4) }}", base},
      {"{{ d.c | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ {} | tojson }} {{ [] | tojson(indent=2) }}", base},
      {"{{ d | string }} {{ 1 | string }} {{ none | string }} {{ true | string }} {{ d.a }} {{ d.a | string | length }} {{ '<b>' | e }} {{ '<b>' | safe }}", base},
      {"{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'one two, three' | wordcount }}", base},
      {"{{ d | items | list | length }} {% for k, v in d | items %}{{ k }}{% endfor %} {{ d | dictsort | first }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ '%s-%d' | format('a', 3) }}", base},
      {"{% filter upper %}shout {{ n }}{% endfilter %} {% with x = 5, y = 6 %}{{ x * y }}{% endwith %}", base},
      // tests
      {"{{ n is number }} {{ f is number }} {{ flag is number }} {{ n is integer }} {{ flag is integer }} {{ f is float }} {{ s is string }} {{ d is mapping }} {{ messages is sequence }} {{ s is iterable }} {{ n is iterable }} {{ nothing is none }} {{ flag is boolean }} {{ flag is true }} {{ flag is false }} {{ undefined_x is undefined }} {{ n is defined }} {{ n is not defined }} {{ 2 is in [1, 2] }} {{ n is eq 7 }} {{ n is gt 3 }} {{ 'abc' is lower }}", base},
      // undefined semantics
      {"[{{ nothing_here }}][{{ nothing_here is defined }}][{% if nothing_here %}t{% else %}f{% endif %}][{{ d.missing }}][{{ messages[99] }}][{{ nothing_here | length }}][{{ 'x' in nothing_here }}]", base},
      {"{{ nothing.attr }}|{{ nothing['k'] }}|{{ d.missing is defined }}|{{ none_list | default([]) | length }}", base},
      // globals
      {"{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b='x') | tojson }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %A %B') }}", base},
      {"{{ bos_token }}{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{{ eos_token }}{% endfor %}", base},
      // errors (each must fail in both engines)
      {"{{ nothing_here + 1 }}", base},
      {"{{ 'a' + nothing_here }}", base},
      {"{{ nothing_here.attr }}", base},
      {"{{ d.missing.deeper }}", base},
      {"{{ 'a' + 1 }}", base},
      {"{{ n + 'a' }}", base},
      {"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}", base},
      {"{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}ok", base},
      {"{{ nothing_here() }}", base},
      {"{% for x in n %}{{ x }}{% endfor %}", base},
      {"{{ n < 'a' }}", base},
      {"{{ nothing_here - 1 }}", base},
      {"{{ 1 / 0 }}", base},
      {"{{ d | tojson }}{{ nothing_here | tojson }}", base},
  };
  ASSERT_GE(c.size(), 40u);
  check_against_oracle(c, 14);
}

// A Llama-3.1-style template: system block with "Cutting Knowledge Date" and "Today Date",
// tools (JSON) in the first user message, tool calls as JSON, "ipython" tool results.
static const char* kLlama31Style = R"JINJA({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, respond with a JSON for a function call " }}
    {{- "with its proper arguments.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)JINJA";

// A Qwen2.5-style template: default system prompt, tools in <tools></tools>, tool calls in
// <tool_call> blocks, consecutive tool results grouped in one user turn.
static const char* kQwen25Style = R"JINJA({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)JINJA";

static oj conversations() {
  return oj::parse(R"([
    {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true},
    {"messages": [{"role": "system", "content": " Be terse. "}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4"}], "add_generation_prompt": false},
    {"messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": "Weather in Paris, “today”?"},
                  {"role": "assistant", "tool_calls": [{"id": "abc123XYZ", "type": "function",
                     "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "days": 1}}}]},
                  {"role": "tool", "tool_call_id": "abc123XYZ", "name": "get_weather", "content": "{\"temp\": 21.5}"},
                  {"role": "tool", "tool_call_id": "abc123XYZ", "name": "get_weather", "content": "{\"rain\": false}"},
                  {"role": "assistant", "content": "21.5 °C and dry."}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                               "required": ["city"]}}}],
     "add_generation_prompt": false},
    {"messages": [{"role": "user", "content": "Two calls"},
                  {"role": "assistant", "content": "", "tool_calls": [
                     {"type": "function", "function": {"name": "a", "arguments": {"x": 1}}},
                     {"type": "function", "function": {"name": "b", "arguments": {"y": [1, 2]}}}]}],
     "tools": [{"type": "function", "function": {"name": "a", "parameters": {}}}],
     "add_generation_prompt": true},
    {"messages": [{"role": "user", "content": "custom date"}], "date_string": "01 Jan 2025", "tools_in_user_message": false,
     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "add_generation_prompt": true}
  ])");
}

TEST(Jinja, OracleRealTemplates) {
  std::vector<std::pair<std::string, oj>> c;
  for (const char* t : {kLlama31Style, kQwen25Style}) {
    for (auto conv : conversations()) {
      oj vars = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}, {"tools", nullptr}, {"documents", nullptr}};
      for (auto& [k, v] : conv.items()) vars[k] = v;
      c.emplace_back(t, vars);
    }
  }
  check_against_oracle(c, 1);  // Llama-3.1 style rejects the parallel tool calls
  // Hand-checked pieces that do not depend on the oracle.
  oj conv = conversations()[1];
  conv["bos_token"] = "<|begin_of_text|>";
  std::string l = jinja::Template(kLlama31Style).render(conv, fixed_clock()).text;
  EXPECT_EQ(l, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
               "Today Date: 26 Jul 2026\n\nBe terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>");
  oj tc = conversations()[2];
  std::string q = jinja::Template(kQwen25Style).render(tc, fixed_clock()).text;
  EXPECT_NE(q.find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\", \"days\": 1}}\n</tool_call><|im_end|>\n"),
            std::string::npos)
      << q;
  EXPECT_NE(q.find("<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n<tool_response>\n{\"rain\": false}\n</tool_response><|im_end|>\n"),
            std::string::npos)
      << q;
}

// Values checked by hand (no oracle): printing, whitespace rules, undefined and errors.
TEST(Jinja, HandChecked) {
  oj v = {{"m", {{"b", 1}, {"a", "é"}}}, {"xs", {1, 2, 3}}};
  auto r = [&](const std::string& t) { return jinja::Template(t).render(v).text; };
  EXPECT_EQ(r("{{ 1 + 2 }} {{ 7 / 2 }} {{ 2.0 }} {{ none }} {{ true }} {{ [1, 'a'] }}"), "3 3.5 2.0 None True [1, 'a']");
  EXPECT_EQ(r("{{ m | tojson }}"), "{\"b\": 1, \"a\": \"é\"}");  // input order, raw UTF-8
  EXPECT_EQ(r("{{ m | tojson(indent=2) }}"), "{\n  \"b\": 1,\n  \"a\": \"é\"\n}");
  EXPECT_EQ(r("a\n  {% if true %}\n  b\n  {% endif %}\nc\n"), "a\n  b\nc");  // trim+lstrip, final newline dropped
  EXPECT_EQ(r("{% for x in xs %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}"), "1,2,3");
  EXPECT_EQ(r("{{ xs[1:] }}{{ xs[::-1] }}"), "[2, 3][3, 2, 1]");
  EXPECT_EQ(r("[{{ undefined_name }}]{{ undefined_name is defined }}"), "[]False");
  auto out = jinja::Template("a{% generation %}bc{% endgeneration %}d{% generation %}é{% endgeneration %}").render(v);
  EXPECT_EQ(out.text, "abcdé");
  ASSERT_EQ(out.generation.size(), 2u);
  EXPECT_EQ(out.generation[0], std::make_pair(size_t(1), size_t(3)));
  EXPECT_EQ(out.generation[1], std::make_pair(size_t(4), size_t(6)));
  EXPECT_TRUE(jinja::Template("{% generation %}x{% endgeneration %}").has_generation_tag());
  try {
    jinja::Template("line1\n{{ raise_exception('bad roles') }}").render(v);
    FAIL() << "no error";
  } catch (const jinja::RenderError& e) {
    EXPECT_EQ(e.kind(), "TemplateError");
    EXPECT_EQ(e.message(), "bad roles");
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  try {
    jinja::Template("{{ 'a' + undefined_name }}").render(v);
    FAIL() << "no error";
  } catch (const jinja::RenderError& e) {
    EXPECT_EQ(e.kind(), "UndefinedError");
    EXPECT_NE(e.message().find("'undefined_name' is undefined"), std::string::npos) << e.message();
  }
  // Syntax errors are prefopt::Error naming the origin and line, never a crash.
  for (const char* bad : {"{% if x %}", "{{ x ", "{% for %}", "{{ (1 }}", "{% endif %}", "{{ 'abc }}", "{% unknown %}",
                          "{{ x | }}", "{% set = 1 %}", "{% macro m( %}{% endmacro %}", "{{ a.. }}", "{#"}) {
    try {
      jinja::Template t(bad, "tmpl.jinja");
      FAIL() << "parsed: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tmpl.jinja line "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
    }
  }
  // Pathological nesting is an Error, not a stack overflow.
  std::string deep = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_THROW(jinja::Template(deep, "deep"), Error);
  std::string deep_if;
  for (int i = 0; i < 5000; ++i) deep_if += "{% if true %}";
  EXPECT_THROW(jinja::Template(deep_if, "deep"), Error);
  EXPECT_THROW(jinja::Template(std::string(100000, '-') + "{{ " + std::string(100000, '-') + "1 }}", "deep"), Error);
  // Runaway macro recursion is an error too.
  EXPECT_THROW(jinja::Template("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").render(v), jinja::RenderError);
}
