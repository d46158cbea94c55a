// prefopt CLI: one register_* function per area; main.cpp calls them all.
// Each adds its subcommands to the app and sets their callbacks. Callbacks
// throw prefopt::Error on bad input; main() catches once and exits with 2.
#pragma once
namespace CLI {
class App;
}
namespace prefopt::cli {
void register_info(CLI::App& app);      // info           (cmd_info.cpp)
void register_model(CLI::App& app);     // logprobs, merge-lora, convert (cmd_model.cpp)
void register_generate(CLI::App& app);  // generate (sampling)  (cmd_generate.cpp)
void register_tokenize(CLI::App& app);  // tokenize       (cmd_tokenize.cpp)
void register_apply_chat_template(CLI::App& app);  // apply-chat-template (cmd_tokenize.cpp)
void register_train(CLI::App& app);     // train, bench   (cmd_train.cpp)
void register_sandbox(CLI::App& app);   // eval-code     (cmd_sandbox.cpp)
void register_verify(CLI::App& app);    // grade, passk, pairs (cmd_verify.cpp)
void register_pipeline(CLI::App& app);  // demo, iterate  (cmd_pipeline.cpp)
void register_t2i(CLI::App& app);       // t2i-pretrain, t2i-demo (cmd_t2i.cpp)
}  // namespace prefopt::cli
