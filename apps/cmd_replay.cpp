// `skillgrid replay`: conformance check against episodes recorded from the reference.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "apps/commands.h"
#include "envs/conformance.h"

namespace skillgrid::apps {

std::string DefaultTracesPath() {
  const std::string built = std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl";
  if (std::ifstream(built).good()) return built;
  return "../shared/conformance/babyai_public.jsonl";
}

namespace {

struct ReplayOptions {
  std::string traces;   // .jsonl file of recorded episodes
  int max_failures = 20;  // failing episodes printed in full
  bool quiet = false;     // only the final count
};

int RunReplay(const ReplayOptions& opt) {
  std::ifstream in(opt.traces);
  if (!in) {
    std::cerr << "skillgrid replay: error: cannot open traces file '" << opt.traces << "'\n";
    return 2;
  }
  std::string line;
  int passed = 0, failed = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const envs::TraceVerdict v = envs::ReplayTraceLine(line);
    if (v.passed) {
      ++passed;
      continue;
    }
    ++failed;
    if (!opt.quiet && failed <= opt.max_failures) {
      std::cout << "FAIL line " << line_no << ": " << v.Describe() << "\n";
    }
  }
  if (failed > opt.max_failures && !opt.quiet) {
    std::cout << "(" << failed - opt.max_failures << " more failures not shown)\n";
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace

void AddReplayCommand(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<ReplayOptions>();
  opt->traces = DefaultTracesPath();
  CLI::App* cmd = app.add_subcommand(
      "replay",
      "Replay episodes recorded from the reference Python Minigrid and compare every step's "
      "observation, direction, reward and flags. Prints each failing episode and ends with "
      "'N passed, M failed'; exits non-zero if any failed.");
  cmd->add_option("--traces", opt->traces, "JSON-lines file of recorded episodes")
      ->capture_default_str();
  cmd->add_option("--max-failures", opt->max_failures, "failing episodes to print in full")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", opt->quiet, "print only the final count");
  cmd->callback([opt, exit_code] { *exit_code = RunReplay(*opt); });
}

}  // namespace skillgrid::apps
