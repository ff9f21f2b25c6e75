// `voxbridge status`: the live calls of a running voxbridge, from its HTTP API's /status.
#pragma once

namespace voxbridge::app {

/// argv[0] is "status". Returns the process exit code.
int status_main(int argc, const char* const* argv);

}  // namespace voxbridge::app
