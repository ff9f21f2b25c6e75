// voxbridge-load: an AudioSocket load generator that behaves like Asterisk's dialplan app on
// many calls at once and measures what the server sends back. See bench/README.md.
#include <boost/asio/ip/address.hpp>
#include <iostream>

#include "controller.hpp"

int main(int argc, char** argv) {
  using namespace voxbridge::loadgen;
  std::string error;
  const auto options = parse_options(argc, argv, error);
  if (!options) {
    if (error.empty()) {
      std::cout << usage();
      return 0;
    }
    std::cerr << "voxbridge-load: " << error << "\n" << usage();
    return 2;
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(options->host, ec);
  if (ec) {
    std::cerr << "voxbridge-load: --to: '" << options->host << "' is not an IP address\n";
    return 2;
  }
  Controller controller(*options, {address, options->port});
  const RunResult result = controller.run();
  print_table(std::cout, result);
  if (!options->json_path.empty() && !write_json(options->json_path, result, error)) {
    std::cerr << "voxbridge-load: " << error << "\n";
    return 2;
  }
  if (!options->stamps_path.empty() && !write_stamps(options->stamps_path, result, error)) {
    std::cerr << "voxbridge-load: " << error << "\n";
    return 2;
  }
  if (result.totals.total_failures() > 0) {
    std::cerr << "voxbridge-load: " << result.totals.total_failures() << " connection failure(s)\n";
    return 1;
  }
  return 0;
}
