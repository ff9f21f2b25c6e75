// Boost.JSON, compiled once for the whole program (header-only mode): every component that
// reads or writes JSON (the OpenAI-compatible LLM, the ARI client) links vb_json.
#include <boost/json/src.hpp>
