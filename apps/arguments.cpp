// Parsing helpers shared by the subcommands' flags.
#include <string>
#include <vector>

#include "apps/commands.h"

namespace skillgrid::apps {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (ch != ' ') {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string FullLevelId(const std::string& name) {
  if (name.rfind("BabyAI-", 0) == 0) return name;
  return "BabyAI-" + name + "-v0";
}

}  // namespace skillgrid::apps
