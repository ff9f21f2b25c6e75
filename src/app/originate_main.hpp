// `voxbridge originate ...`: one outbound call through the control path (see the .cpp).
#pragma once

namespace voxbridge::app {

/// argv[0] is "originate". Returns the process exit code.
int originate_main(int argc, const char* const* argv);

}  // namespace voxbridge::app
