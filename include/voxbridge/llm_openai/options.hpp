// An OpenAI-compatible model as configured ([openai-NAME]), as plain data: config fills it,
// run_turn (openai.hpp) uses it.
#pragma once

#include <chrono>
#include <string>

namespace voxbridge::llm_openai {

struct OpenAiOptions {
  std::string name;                                    ///< the [openai-NAME] section
  std::string base_url = "http://127.0.0.1:11434/v1";  ///< up to /chat/completions
  std::string model = "llama3.2";
  std::string api_key;  ///< sent as "Authorization: Bearer ..." when set
  std::string system_prompt =
      "You are a friendly phone assistant. Answer in one or two short spoken sentences, "
      "without lists or markup.";
  double temperature = 0.7;
  std::string ca_file;  ///< HTTPS: CA bundle (empty = the system's)
  std::chrono::milliseconds connect_timeout{5000};
  /// Longest wait for the response headers and then for each piece of the stream.
  std::chrono::milliseconds stall_timeout{15000};

  bool operator==(const OpenAiOptions&) const = default;
};

}  // namespace voxbridge::llm_openai
