// Running the skillgrid CLI (or any command line) from a test and capturing what it printed.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace skillgrid::cli_test {

/// Result of a command line.
struct CommandResult {
  int status = -1;     ///< exit status (-1 if it did not exit normally)
  std::string output;  ///< stdout and stderr together
};

/// Runs `command` through the shell and captures its output.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace skillgrid::cli_test
